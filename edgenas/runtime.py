"""Run an artifact in Python: `load(artifact_dir)` checks the directory `edgenas compile` wrote (manifest.json,
the SHA-256 of model.so, the library's instruction set) and returns a `Model` whose `predict` runs model.so in
TVM's Relax VM on this machine's CPU, refusing inputs of the wrong shape or dtype with one-line errors.

    model = edgenas.load("out/host")
    logits = model.predict(np.zeros(model.inputs[0].shape, np.float32))
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import host
from .errors import EdgenasError

LIBRARY = "model.so"
TFLITE = "model.tflite"  # beside it where the profile ships LiteRT


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str


class Model:
    """A loaded artifact: its specification (`inputs`, `outputs`, `arch`, `target`) and `predict`."""

    def __init__(self, directory: Path, manifest: dict[str, Any], inputs: list[TensorSpec],
                 outputs: list[TensorSpec], vm, device):
        self.directory = directory
        self.manifest = manifest
        self.arch: str = manifest["arch"]
        self.target: dict[str, Any] = manifest["target"]
        self.inputs = inputs
        self.outputs = outputs
        self._vm = vm
        self._device = device

    def predict(self, array: np.ndarray) -> np.ndarray:
        """Run the network on `array` (exactly the input's shape and dtype) and return its output."""
        import tvm

        spec = self.inputs[0]
        if not isinstance(array, np.ndarray):
            raise EdgenasError(f"input is a {type(array).__name__}, the model takes a numpy array; pass "
                               f"np.asarray(x, dtype=np.{spec.dtype})")
        if array.shape != spec.shape:
            raise EdgenasError(f"input has shape {array.shape}, the model takes {spec.shape}; reshape or resize "
                               f"the input (the shape is fixed at compile time)")
        if array.dtype != np.dtype(spec.dtype):
            raise EdgenasError(f"input has dtype {array.dtype}, the model takes {spec.dtype}; convert it with "
                               f"array.astype(np.{spec.dtype})")
        out = self._vm["main"](tvm.runtime.tensor(np.ascontiguousarray(array), self._device))
        return out.numpy()


def load(artifact_dir: str | Path) -> Model:
    """Check and load the artifact in `artifact_dir` for running on this machine's CPU."""
    import tvm
    from tvm import relax

    from .measure import configure_tvm_threads

    directory = Path(artifact_dir)
    if not directory.is_dir():
        raise EdgenasError(f"artifact directory {directory} does not exist; pass the directory that "
                           f"`edgenas compile -o DIR` wrote")
    manifest, inputs, outputs = _manifest(directory)
    library = checked_library(directory, manifest["files"].get(LIBRARY))
    target = manifest["target"]
    if target["machine"] != host.machine() or target["device"] != "cpu":
        raise EdgenasError(f"{library} was built for {target['machine']}/{target['device']} (target "
                           f"'{target['name']}'), this machine runs {host.machine()}/cpu; run it on that device, "
                           f"or compile for this machine with --target host")
    configure_tvm_threads(host.cores())
    try:
        lib = tvm.runtime.load_module(str(library))
        device = tvm.cpu()
        vm = relax.VirtualMachine(lib, device)
    except Exception as e:  # noqa: BLE001  (TVM raises its own error types for unloadable libraries)
        raise EdgenasError(f"TVM cannot load {library}: {str(e).splitlines()[0]}; compile the artifact again "
                           f"with `edgenas compile`") from None
    return Model(directory, manifest, inputs, outputs, vm, device)


def checked_library(directory: Path, digest: str | None) -> Path:
    """The artifact's library, after checking that it is there and is the file its manifest's `digest` names."""
    library = directory / LIBRARY
    if not library.is_file():
        raise EdgenasError(f"{library} is missing; compile the artifact again with `edgenas compile`")
    if sha256(library) != digest:
        raise EdgenasError(f"{library} does not match the SHA-256 in manifest.json (the file was changed or "
                           f"truncated); compile the artifact again with `edgenas compile`")
    return library


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _manifest(directory: Path) -> tuple[dict[str, Any], list[TensorSpec], list[TensorSpec]]:
    """manifest.json of `directory`, checked, with its input and output specifications."""
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgenasError(f"{path} is missing; pass a directory that `edgenas compile -o DIR` wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgenasError(f"{path} is not readable JSON ({e}); compile the artifact again with "
                           f"`edgenas compile`") from None
    missing = [k for k in ("arch", "target", "inputs", "outputs", "files") if k not in manifest] \
        if isinstance(manifest, dict) else ["all"]
    if missing:
        raise EdgenasError(f"{path} lacks {', '.join(missing)}; compile the artifact again with `edgenas compile`")
    try:
        inputs, outputs = ([TensorSpec(str(t["name"]), tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]).name)
                            for t in manifest[kind]] for kind in ("inputs", "outputs"))
        if not all(isinstance(manifest["target"][k], str) for k in ("name", "machine", "device")) \
                or not isinstance(manifest["files"], dict):
            raise TypeError("target name, machine and device must be strings, files a map of SHA-256s")
    except (KeyError, TypeError, ValueError) as e:
        raise EdgenasError(f"{path} has a malformed target or input/output entry ({type(e).__name__}: {e}); "
                           f"compile the artifact again with `edgenas compile`") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise EdgenasError(f"{path} names {len(inputs)} inputs and {len(outputs)} outputs; edgenas.load runs "
                           f"networks with one input and one output")
    return manifest, inputs, outputs
