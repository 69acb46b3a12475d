"""The per-kernel profile of a compiled library (`profile_kernels`): each kernel called alone on buffers of its
shapes, timed with TVM's time evaluator, and its share of the sum over one inference (time per call x calls).
TVM 0.27's Relax VM has no per-operator profiler any more; this is what stands in for it. The buffers hold
random floats (integers: zeros, so that an index is always in range); kernels run in the same thread pool as a
whole inference. What the sum misses of the end-to-end latency is the VM's own work (allocation, calls).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.compile import KernelSignature
from ..runtimes.tvm import configure_tvm_threads

REPEATS = 5
MIN_REPEAT_MS = 5


def profile_kernels(library: str | Path, signatures: tuple[KernelSignature, ...], threads: int,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Each kernel of `library` (built for this machine) with its calls per inference, best time per call (us,
    over REPEATS repeats of at least MIN_REPEAT_MS) and share of the kernels' sum, the largest share first."""
    import tvm

    configure_tvm_threads(threads)
    loaded = tvm.runtime.load_module(str(library))
    # the kernels live in the module the VM executable imports; its time evaluator finds them by name there
    lib = next((m for m in loaded.imports if signatures and m.implements_function(signatures[0].name)), loaded)
    device = tvm.cpu()
    rng = np.random.default_rng(seed)
    rows = []
    for sig in signatures:
        args = [tvm.runtime.tensor(rng.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f"
                                   else np.zeros(shape, dtype), device) for shape, dtype in sig.buffers]
        timer = lib.time_evaluator(sig.name, device, number=1, repeat=REPEATS, min_repeat_ms=MIN_REPEAT_MS)
        us = 1e6 * float(min(timer(*args).results))
        rows.append({"kernel": sig.name, "calls": sig.calls, "us_per_call": round(us, 3)})
    total = sum(r["us_per_call"] * r["calls"] for r in rows) or 1.0
    for r in rows:
        r["share"] = round(r["us_per_call"] * r["calls"] / total, 4)
    return sorted(rows, key=lambda r: -r["share"])
