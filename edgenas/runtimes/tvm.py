"""The `tvm` runtime: a library `edgenas compile` built, run by the Relax VM with TVM's thread pool; also the
session that a fleet's worker opens on an RPC device (`vm_session`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .. import host
from ..errors import EdgenasError
from .registry import Session, register_runtime


@register_runtime("tvm", file="model.so", deployable=True, remote=True)
def tvm_session(path: Path, x: np.ndarray, threads: int) -> Session:
    import tvm

    configure_tvm_threads(threads)
    try:
        lib = tvm.runtime.load_module(str(path))
    except Exception as e:  # noqa: BLE001  (TVM raises its own error types for unloadable files)
        raise EdgenasError(f"TVM cannot load {path}: {str(e).splitlines()[0]}; was it built for this "
                           f"machine ({host.machine()})?") from None
    return vm_session(lib, tvm.cpu(), x)


def vm_session(lib, dev, x: np.ndarray) -> Session:
    """A session of the Relax VM in `lib` on `dev` (here, or a device of an RPC session) for input `x`."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(lib, dev)
    arg = tvm.runtime.tensor(x, dev)
    result = vm["main"](arg)  # a tensor, or an array of them for a model with several outputs
    outputs = (result.numpy(),) if hasattr(result, "numpy") else tuple(t.numpy() for t in result)
    evaluators: dict[int, Callable] = {}

    def run(n: int) -> float:
        if n not in evaluators:
            evaluators[n] = vm.time_evaluator("main", dev, number=n, repeat=1)
        return float(evaluators[n](arg).mean)

    return Session(run, outputs, tvm.__version__)


def configure_tvm_threads(threads: int) -> None:
    """Give TVM's thread pool in this process `threads` threads. Mode -3: every pool thread may run on any
    allowed core. The default mode pins the calling thread to one core, which then also confines every
    runtime measured after it in this process."""
    import tvm

    allowed = [str(c) for c in sorted(os.sched_getaffinity(0))]
    tvm.get_global_func("runtime.config_threadpool")(-3, threads, allowed)
