"""Run an artifact in Python: `load(artifact_dir)` checks the directory `edgenas compile` wrote (its manifest,
the SHA-256 of every file, the library's instruction set) and returns a `Model` whose `predict` runs model.so
in TVM's Relax VM on this machine's CPU, refusing inputs of the wrong shape or dtype with one-line errors. A
model trained on the user's data also takes data stored as the training data was (e.g. uint8 N x H x W x C
pixels): the preprocessing recorded in the manifest (`stored_input`) is applied first.

    model = edgenas.load("out/host")
    logits = model.predict(np.zeros(model.inputs[0].shape, np.float32))
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import host
from ..data.datasets import preprocess
from ..errors import EdgenasError
from ..runtimes.tvm import configure_tvm_threads
from .manifest import TensorSpec, read


class Model:
    """A loaded artifact: its specification (`inputs`, `outputs`, `arch`, `target`) and `predict`."""

    def __init__(self, directory: Path, manifest: dict[str, Any], inputs: tuple[TensorSpec, ...],
                 outputs: tuple[TensorSpec, ...], vm, device):
        self.directory = directory
        self.manifest = manifest
        self.arch: str = manifest["arch"]
        self.target: dict[str, Any] = manifest["target"]
        self.inputs = inputs
        self.outputs = outputs
        self._vm = vm
        self._device = device

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """How the training data was made into the network's input (dtype, layout, scale, in words); None for a
        network not trained on the user's data."""
        return self.manifest["inputs"][0].get("preprocessing")

    def stored_input(self) -> tuple[tuple[int, ...], str] | None:
        """The shape and dtype of one input stored as the training data was, which `predict` also takes."""
        record, (n, c, h, w) = self.preprocessing, self.inputs[0].shape
        if record is None:
            return None
        return {"NHWC": (n, h, w, c), "NHW": (n, h, w), "NCHW": (n, c, h, w)}[record["layout"]], record["dtype"]

    def predict(self, array: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the network on `array` and return its output (a tuple of them, in `outputs`' order, for a model
        with several). `array` is the network's input (exactly its shape and dtype) or, for a model trained on
        the user's data, data stored as the training data was."""
        import tvm

        spec = self.inputs[0]
        if not isinstance(array, np.ndarray):
            raise EdgenasError(f"input is a {type(array).__name__}, the model takes a numpy array; pass "
                               f"np.asarray(x, dtype=np.{spec.dtype})")
        stored = self.stored_input()
        if stored and (array.shape, array.dtype.name) == stored and (array.shape, array.dtype.name) != \
                (spec.shape, spec.dtype):
            array = preprocess(array, self.preprocessing)
        also = f", or data as stored for training: {stored[0]} {stored[1]}" if stored else ""
        if array.shape != spec.shape:
            raise EdgenasError(f"input has shape {array.shape}, the model takes {spec.shape} {spec.dtype}{also}; "
                               f"reshape or resize the input (the shape is fixed at compile time)")
        if array.dtype != np.dtype(spec.dtype):
            raise EdgenasError(f"input has dtype {array.dtype}, the model takes {spec.dtype}{also}; convert it "
                               f"with array.astype(np.{spec.dtype})")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise EdgenasError(f"input holds {bad} NaN or infinite value(s); the model's output would be meaningless: "
                               f"clean the input (e.g. np.nan_to_num) before predicting")
        out = self._vm["main"](tvm.runtime.tensor(np.ascontiguousarray(array), self._device))
        return out.numpy() if len(self.outputs) == 1 else tuple(t.numpy() for t in out)


def load(artifact_dir: str | Path) -> Model:
    """Check and load the artifact in `artifact_dir` for running on this machine's CPU."""
    import tvm
    from tvm import relax

    manifest = read(artifact_dir)
    library = manifest.library()
    target = manifest.target
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
    return Model(manifest.directory, manifest.data, manifest.inputs, manifest.outputs, vm, device)
