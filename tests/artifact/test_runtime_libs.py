"""fetch_runtime_libs: refuses machines without wheels; a filled cache folder is used without downloading."""
from __future__ import annotations

import pytest

from edgenas.artifact.runtime_libs import fetch_runtime_libs
from edgenas.errors import EdgenasError


def test_unknown_machine():
    with pytest.raises(EdgenasError, match="no TVM runtime wheels for machine 'riscv64'; choose one of aarch64, x86_64"):
        fetch_runtime_libs("riscv64")


def test_cached_libraries_are_reused(tmp_path):
    import tvm
    import tvm_ffi

    folder = tmp_path / "aarch64-runtime" / f"tvm-{tvm.__version__}-ffi-{tvm_ffi.__version__}"
    folder.mkdir(parents=True)
    for name in ("libtvm_runtime.so", "libtvm_ffi.so"):
        (folder / name).write_bytes(b"\x7fELF")
    assert fetch_runtime_libs("aarch64", cache_dir=tmp_path) == folder
