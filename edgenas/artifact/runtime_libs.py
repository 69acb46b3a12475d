"""TVM's C++ runtime libraries for another machine: `fetch_runtime_libs(machine)` downloads the manylinux wheels
of the installed apache-tvm and apache-tvm-ffi versions for that instruction set (pip download) and unpacks
libtvm_runtime.so and libtvm_ffi.so into the edgenas cache, `~/.cache/edgenas/<machine>-runtime/<versions>/`,
for linking and running a program such as examples/cpp on (or under an emulator for) that machine.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import EdgenasError

PLATFORMS = {"aarch64": "manylinux_2_28_aarch64", "x86_64": "manylinux_2_28_x86_64"}
LIBRARIES = {"apache-tvm": "tvm/lib/libtvm_runtime.so", "apache-tvm-ffi": "tvm_ffi/lib/libtvm_ffi.so"}


def fetch_runtime_libs(machine: str = "aarch64", cache_dir: str | Path | None = None) -> Path:
    """The folder holding libtvm_runtime.so and libtvm_ffi.so for `machine`, downloaded on first use."""
    import platformdirs
    import tvm
    import tvm_ffi

    if machine not in PLATFORMS:
        raise EdgenasError(f"no TVM runtime wheels for machine '{machine}'; choose one of {', '.join(PLATFORMS)}")
    versions = {"apache-tvm": tvm.__version__, "apache-tvm-ffi": tvm_ffi.__version__}
    root = Path(cache_dir or platformdirs.user_cache_dir("edgenas")) / f"{machine}-runtime"
    folder = root / f"tvm-{versions['apache-tvm']}-ffi-{versions['apache-tvm-ffi']}"
    if all((folder / Path(member).name).is_file() for member in LIBRARIES.values()):
        return folder
    with tempfile.TemporaryDirectory(prefix="edgenas-wheels-") as tmp:
        pins = [f"{name}=={version}" for name, version in versions.items()]
        run = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                              "--platform", PLATFORMS[machine], "--dest", tmp, *pins], capture_output=True, text=True)
        if run.returncode != 0:
            errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")] or [run.stderr.strip()]
            raise EdgenasError(f"cannot download the {machine} wheels of {' and '.join(pins)} ({errors[-1]}); "
                               f"connect to PyPI, or unpack {' and '.join(LIBRARIES.values())} from them into {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        for name, member in LIBRARIES.items():
            wheel = next(Path(tmp).glob(f"{name.replace('-', '_')}-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                partial = folder / (Path(member).name + ".partial")  # never leave a truncated library behind
                partial.write_bytes(z.read(member))
                partial.replace(folder / Path(member).name)
    return folder
