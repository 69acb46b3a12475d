"""Runtimes, registered by name: each turns a model file into a `Session` on this machine (or, for TVM, on a
device reached over RPC). A runtime is one module of this package, found by its file name, and its
registration carries what the rest of edgenas asks of it: which file of an artifact it runs, whether a device
may deploy it (a profile's `runtime:`), and whether RPC devices can time it.

    session = get_runtime("onnxruntime").open(Path("model.onnx"), x, threads=2)
    session.outputs, session.run(10)  # the outputs for x; mean seconds of 10 back-to-back inferences
"""
import importlib
import pkgutil

from .registry import (
    RUNTIMES,
    Runtime,
    Session,
    deployable,
    get_runtime,
    register_runtime,
)

for _module in pkgutil.iter_modules(__path__):  # each module but the registry registers one runtime
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["RUNTIMES", "Runtime", "Session", "deployable", "get_runtime", "register_runtime"]
