"""The `litert` runtime: a .tflite model on the LiteRT interpreter (the [mobile] extra, `edgenas.mobile`) with
the XNNPACK delegate it applies by default: what phones deploy."""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np

from ..errors import EdgenasError
from ..mobile import captured_output, interpreter
from .registry import Session, register_runtime


@register_runtime("litert", file="model.tflite", deployable=True)
def litert_session(path: Path, x: np.ndarray, threads: int) -> Session:
    """A session with `threads` threads; the version says whether the graph was delegated (a DELEGATE node)."""
    interpreter_class = interpreter()
    try:
        with captured_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            it = interpreter_class(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgenasError(f"LiteRT cannot load {path}: {str(e).strip().splitlines()[0]}; is it a .tflite "
                           f"model?") from None
    # The execution graph: the delegate replaces the nodes it runs by one DELEGATE node. (No reference to the
    # graph may outlive this line: the interpreter refuses to run while one exists.)
    delegated = any(it._interpreter.NodeName(i) == "DELEGATE" for i in range(it._interpreter.NumNodes()))
    delegate = "XNNPACK" if delegated else "no delegate"
    inp = it.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        raise EdgenasError(f"{path} takes input {list(inp['shape'])}, not {list(x.shape)}; rebuild it for this shape")
    it.set_tensor(inp["index"], x)
    it.invoke()
    outputs = tuple(it.get_tensor(out["index"]).copy() for out in it.get_output_details())

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            it.invoke()
        return (time.perf_counter() - t0) / n

    module = interpreter_class.__module__.partition(".")[0]
    return Session(run, outputs, f"{module} {_version(module)} ({delegate})")


def _version(module: str) -> str:
    try:
        return importlib.metadata.version(module.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
