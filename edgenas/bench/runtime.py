"""`edgenas bench runtime`: the same networks through every runtime on this machine, timed fairly.

Each architecture is built once (the network, its ONNX export and the TVM library compiled with the
target's tuning database), then run by TVM, onnxruntime and PyTorch eager with the same thread count; their
repeats are interleaved (`measure.timing.time_interleaved`), so load on the machine falls on all runtimes alike.
Every runtime's output is checked against PyTorch's before its time counts. Ratios are against onnxruntime.
With the [mobile] extra, LiteRT (the .tflite conversion, XNNPACK, same threads) runs beside them.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import host, mobile
from ..compiler.export import check_output, tensors
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.machine import exclusive
from ..measure.timing import Timing, time_interleaved
from ..pipeline.build import build, model_file
from ..runtimes import RUNTIMES, Session
from ..spaces import DEFAULT_SPACE, get_space


def bench_runtime(profile: str | Profile = "host", archs: list[str] | None = None, count: int = 6,
                  space: str = DEFAULT_SPACE, timing: Timing = Timing(), seed: int = 0,
                  log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time `archs` (default: `count` architectures at evenly spaced FLOPs quantiles of the space) on the
    tuned TVM library, onnxruntime and PyTorch eager; return per-architecture rows and the median ratios."""
    prof = as_profile(profile)
    target = prof.resolved_target()
    if not target.runs_here:
        raise EdgenasError(f"profile '{prof.name}' builds {target.machine}/{target.device} code, which cannot run on "
                           f"this machine; bench runtime compares runtimes here, use --target host")
    sp = get_space(space, batch=prof.batch)
    archs = [sp.canonical(a) for a in archs] if archs else spread_by_flops(sp, count, seed)
    threads = int(target.tvm.get("num-cores") or 0) or host.cores()
    rows, tuning_db = [], None
    with tempfile.TemporaryDirectory(prefix="edgenas-bench-") as tmp:
        for k, arch in enumerate(archs):
            work = Path(tmp) / str(k)
            work.mkdir()
            b = build(prof, arch, work, space=space, seed=seed, tflite=mobile.available())
            row = time_runtimes(b, sp.build(arch, seed=seed).eval(), threads, timing)
            row.update(arch=arch, mflops=round(sp.costs(arch).flops / 1e6, 3), tuned_kernels=len(b.library.tuned),
                       fallback_kernels=len(b.library.fallback))
            rows.append(row)
            tuning_db = b.library.tuning_db
            log(f"[{k + 1}/{len(archs)}] " + "  ".join(f"{n} {r['p50_ms']:.3f} ms"
                                                      for n, r in row["runtimes"].items()))
    ratios = [r["runtimes"]["tvm"]["ratio_vs_onnxruntime"] for r in rows]
    eager = [r["runtimes"]["pytorch"]["ratio_vs_onnxruntime"] for r in rows]
    lite = [r["runtimes"]["litert"]["ratio_vs_onnxruntime"] for r in rows if "litert" in r["runtimes"]]
    return {"profile": prof.name, "batch": prof.batch, "target": target.tvm, "threads": threads, "space": space,
            "archs": rows, "median_ratio_tvm_vs_onnxruntime": float(np.median(ratios)),
            "max_ratio_tvm_vs_onnxruntime": float(np.max(ratios)),
            "median_ratio_pytorch_vs_onnxruntime": float(np.median(eager)),
            "median_ratio_litert_vs_onnxruntime": float(np.median(lite)) if lite else None,
            "litert": None if lite else mobile.MISSING,
            "tuning_db": str(tuning_db) if tuning_db else None}


def table(result: dict[str, Any]) -> str:
    """`bench_runtime`'s result as the table the CLI prints: per architecture and runtime the median, its
    spread (marked `!` where it stayed wider than the stability limit) and the ratio to onnxruntime."""
    names = list(result["archs"][0]["runtimes"])
    lines = [f"p50 ms (spread = IQR/median), batch {result['batch']}, {result['threads']} threads, "
             f"ratio = p50 / onnxruntime's; tuning database: {result['tuning_db'] or 'none'}",
             f"{'MFLOPs':>8} {'tuned':>6}  " + "  ".join(f"{n:>21}" for n in names) + "  arch"]
    for row in result["archs"]:
        cells = [f"{r['p50_ms']:7.3f} {r['spread']:5.1%}{' ' if r['stable'] else '!'} x{r['ratio_vs_onnxruntime']:.2f}"
                 for r in row["runtimes"].values()]
        tuned = f"{row['tuned_kernels']}/{row['tuned_kernels'] + row['fallback_kernels']}"
        lines.append(f"{row['mflops']:8.1f} {tuned:>6}  " + "  ".join(f"{c:>21}" for c in cells) + f"  {row['arch']}")
    if any(not r["stable"] for row in result["archs"] for r in row["runtimes"].values()):
        lines.append("! spread stayed wide (the machine was busy): those medians are less certain; run again")
    lite = result["median_ratio_litert_vs_onnxruntime"]
    lines.append(f"median ratio tvm/onnxruntime {result['median_ratio_tvm_vs_onnxruntime']:.3f} "
                 f"(max {result['max_ratio_tvm_vs_onnxruntime']:.3f}); pytorch/onnxruntime "
                 f"{result['median_ratio_pytorch_vs_onnxruntime']:.3f}"
                 + (f"; litert/onnxruntime {lite:.3f}" if lite is not None else f"\n{result['litert']}"))
    return "\n".join(lines)


def spread_by_flops(sp, count: int, seed: int = 0) -> list[str]:
    """`count` architectures of different cost: the ones nearest to evenly spaced FLOPs quantiles (from
    the 5th to the 95th percentile) of the space's non-degenerate architectures (of 2,000 drawn with `seed`
    where the space is too large to list), ties broken by `seed`."""
    if count < 1:
        raise EdgenasError(f"--archs must be at least 1, got {count}")
    archs = [a for a in sp.enumerate() if not sp.is_degenerate(a)] if sp.enumerable else sp.sample(2000, seed)
    rng = np.random.default_rng(seed)
    flops = np.array([sp.costs(a).flops for a in archs]) + rng.uniform(0, 1e-3, len(archs))
    order = np.argsort(flops)
    picks = [order[int(round(q * (len(order) - 1)))] for q in np.linspace(0.05, 0.95, count)]
    return [archs[i] for i in picks]


def time_runtimes(b, model, threads: int, timing: Timing) -> dict[str, Any]:
    """One architecture's row: each runtime's interleaved statistics, output error and ratio."""
    import torch

    x = b.onnx.reference_input
    with torch.no_grad():
        expected = tensors(model(torch.from_numpy(x)))

    def session(name: str) -> Session:
        return RUNTIMES[name].open(model_file(b, name), x, threads)

    sessions = {"tvm": session("tvm"), "onnxruntime": session("onnxruntime"),
                "pytorch": pytorch_session(model, x, threads), **({"litert": session("litert")} if b.tflite else {})}
    errors = {n: check_output(f"{n} ({b.arch})", s.outputs, expected) for n, s in sessions.items()}
    with exclusive():
        stats = time_interleaved({n: s.run for n, s in sessions.items()}, timing)
    base = stats["onnxruntime"].p50_ms
    return {"runtimes": {n: {**stats[n].as_dict(), "version": sessions[n].version,
                             "max_abs_error_vs_pytorch": errors[n],
                             "ratio_vs_onnxruntime": round(stats[n].p50_ms / base, 4)} for n in sessions}}


def pytorch_session(model, x: np.ndarray, threads: int) -> Session:
    """PyTorch eager, inference mode, `threads` intra-op threads: the network as its author runs it."""
    import torch

    torch.set_num_threads(threads)
    inp = torch.from_numpy(x)
    with torch.inference_mode():
        outputs = tensors(model(inp))

    def run(n: int) -> float:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for _ in range(n):
                model(inp)
            return (time.perf_counter() - t0) / n

    return Session(run, outputs, torch.__version__)
