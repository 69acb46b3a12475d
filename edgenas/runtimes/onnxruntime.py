"""The `onnxruntime` runtime: the exported model.onnx on onnxruntime's CPU provider, every graph optimisation
on; the reference edgenas checks exports against and compares TVM with."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .registry import Session, register_runtime


@register_runtime("onnxruntime", file="model.onnx")
def onnxruntime_session(path: Path, x: np.ndarray, threads: int) -> Session:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: x}
    outputs = tuple(session.run(None, feed))

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            session.run(None, feed)
        return (time.perf_counter() - t0) / n

    return Session(run, outputs, ort.__version__)
