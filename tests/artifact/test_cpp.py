"""examples/cpp built with CMake against the TVM runtime of the wheels: its output equals edgenas.load's."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgenas

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp"


def wheel_dirs() -> dict[str, Path]:
    import tvm
    import tvm_ffi

    tvm_dir, ffi_dir = Path(tvm.__file__).parent, Path(tvm_ffi.__file__).parent
    return {"TVM_FFI_INCLUDE_DIR": ffi_dir / "include", "TVM_LIB_DIR": tvm_dir / "lib", "TVM_FFI_LIB_DIR": ffi_dir / "lib"}


def build_example(artifact: Path, build: Path, **options) -> Path:
    """Configure and build examples/cpp for `artifact` in `build`; options are CMake variables."""
    defines = [f"-D{k}={v}" for k, v in {**wheel_dirs(), "EDGENAS_ARTIFACT": artifact, **options}.items()]
    subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(build), *defines], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    return build / "edgenas_run"


@pytest.fixture(scope="module")
def x(small_artifact):
    return np.random.default_rng(1).standard_normal(small_artifact.manifest["inputs"][0]["shape"]).astype(np.float32)


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None, reason="needs cmake and g++")
def test_cpp_example_matches_python(small_artifact, x, tmp_path):
    exe = build_example(small_artifact.directory, tmp_path / "build")
    x.tofile(tmp_path / "input.f32")
    subprocess.run([str(exe), str(small_artifact.directory / "model.so"), str(tmp_path / "input.f32"),
                    str(tmp_path / "output.f32")], check=True)
    output = np.fromfile(tmp_path / "output.f32", np.float32)
    np.testing.assert_allclose(output, edgenas.load(small_artifact.directory).predict(x).ravel(), atol=1e-5, rtol=0)

    x[:, :, :16].tofile(tmp_path / "short.f32")  # a wrong input size is refused, not read past
    run = subprocess.run([str(exe), str(small_artifact.directory / "model.so"), str(tmp_path / "short.f32"),
                          str(tmp_path / "o.f32")], capture_output=True, text=True)
    assert run.returncode == 1 and "short.f32 has 6144 bytes, the model takes 3072 float32 values" in run.stderr


@pytest.fixture(scope="module")
def aarch64_libs():
    from edgenas.errors import EdgenasError

    try:
        return edgenas.fetch_runtime_libs("aarch64")
    except EdgenasError as e:
        pytest.skip(f"the aarch64 TVM runtime wheels cannot be downloaded here: {e}")


@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "aarch64-linux-gnu-g++", "qemu-aarch64")),
                    reason="needs cmake, aarch64-linux-gnu-g++ and qemu-aarch64 (./setup.sh installs them)")
def test_cpp_example_on_aarch64_under_qemu(small_raspi4_artifact, small_artifact, aarch64_libs, x, tmp_path):
    exe = build_example(small_raspi4_artifact.directory, tmp_path / "build", CMAKE_CXX_COMPILER="aarch64-linux-gnu-g++",
                        TVM_LIB_DIR=aarch64_libs, TVM_FFI_LIB_DIR=aarch64_libs)
    x.tofile(tmp_path / "input.f32")
    subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(exe),
                    str(small_raspi4_artifact.directory / "model.so"), str(tmp_path / "input.f32"),
                    str(tmp_path / "output.f32")], check=True, env={**os.environ, "LD_LIBRARY_PATH": str(aarch64_libs)})
    output = np.fromfile(tmp_path / "output.f32", np.float32)
    np.testing.assert_allclose(output, edgenas.load(small_artifact.directory).predict(x).ravel(), atol=1e-4, rtol=0)
