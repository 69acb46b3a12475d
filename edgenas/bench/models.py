"""`edgenas bench models`: public CNNs of five families (`bench.zoo`) taken through the user's-model path as a
team with its own network would: each exported to an ONNX file, `tune --model FILE --budget-minutes M` into one
database (a later model reuses what an earlier one tuned), compiled like `compile --model`, then TVM and
onnxruntime timed on the same model.onnx, their repeats interleaved, same threads. TVM's outputs are checked
against onnxruntime's (relative error: max |difference| / max |onnxruntime's output|) before its time counts.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import host
from ..compiler.export import export_onnx
from ..compiler.tune import tune
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.machine import exclusive
from ..measure.timing import Timing, time_interleaved
from ..pipeline.build import build_model, import_user_model, model_file
from ..runtimes import RUNTIMES
from .zoo import ZOO

RELATIVE_TOLERANCE = 1e-4  # TVM's outputs against onnxruntime's, relative to the largest output


def bench_models(profile: str | Profile = "host", names: list[str] | None = None,
                 input_shape: tuple[int, ...] = (1, 3, 224, 224), budget_minutes: float = 20.0, trials: int = 128,
                 db: str | Path | None = None, timing: Timing = Timing(), seed: int = 0,
                 log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Tune, compile and time each of `names` (default: every network of the zoo) at `input_shape`; per network
    its tuning run, kernels, both runtimes' statistics, TVM's relative output error and the ratio; the median."""
    import torch

    prof = as_profile(profile)
    target = prof.resolved_target()
    if not target.runs_here or target.device != "cpu":
        raise EdgenasError(f"profile '{prof.name}' builds {target.machine}/{target.device} code, which cannot run on "
                           f"this machine's CPU; bench models tunes and times here, use --target host")
    names = list(names or ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        raise EdgenasError(f"no network {', '.join(unknown)} in the zoo; known: {', '.join(ZOO)}")
    threads = int(target.tvm.get("num-cores") or 0) or host.cores()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgenas-bench-models-") as tmp:
        for k, name in enumerate(names):
            work = Path(tmp) / name
            (work / "artifact").mkdir(parents=True)
            torch.manual_seed(seed)
            network, params = ZOO[name][0]().eval(), ZOO[name][1]
            source = work / f"{name}.onnx"
            export_onnx(network, input_shape, source, seed=seed)  # the file the team brings
            log(f"[{k + 1}/{len(names)}] {name}: tune --model {source.name} --budget-minutes {budget_minutes:g}")
            tuned = tune(prof, trials=trials, db=db, budget_minutes=budget_minutes, log=log, model=str(source))
            imported = import_user_model(source, work / "artifact")
            b = build_model(prof, imported, work / "artifact", tuning_db=tuned.database, tflite=False)
            row = _time(b, threads, timing)
            row.update(name=name, params=params, mflops=round(imported[0].cost.flops / 1e6, 1),
                       tune={"seconds": round(tuned.seconds, 1), "trials_run": tuned.trials_run,
                             "tasks": len(tuned.tasks), "already_tuned": sum(t.skipped for t in tuned.tasks)},
                       tuned_kernels=len(b.library.tuned), fallback_kernels=len(b.library.fallback))
            rows.append(row)
            log(f"[{k + 1}/{len(names)}] {name}: tvm {row['runtimes']['tvm']['p50_ms']:.2f} ms, onnxruntime "
                f"{row['runtimes']['onnxruntime']['p50_ms']:.2f} ms, x{row['ratio_tvm_vs_onnxruntime']:.2f}")
    ratios = [r["ratio_tvm_vs_onnxruntime"] for r in rows]
    return {"profile": prof.name, "target": target.tvm, "threads": threads, "input_shape": list(input_shape),
            "budget_minutes": budget_minutes, "database": str(tuned.database), "models": rows,
            "median_ratio_tvm_vs_onnxruntime": float(np.median(ratios)),
            "max_ratio_tvm_vs_onnxruntime": float(np.max(ratios)),
            "max_relative_error": max(r["relative_error"] for r in rows)}


def _time(b, threads: int, timing: Timing) -> dict[str, Any]:
    """TVM and onnxruntime on one built model: TVM's relative error against onnxruntime (refused above
    RELATIVE_TOLERANCE), then their interleaved statistics."""
    x = b.onnx.reference_input
    sessions = {name: RUNTIMES[name].open(model_file(b, name), x, threads) for name in ("tvm", "onnxruntime")}
    errors = [float(np.max(np.abs(t - o)) / max(float(np.max(np.abs(o))), 1e-30))
              for t, o in zip(sessions["tvm"].outputs, sessions["onnxruntime"].outputs, strict=True)]
    if max(errors) > RELATIVE_TOLERANCE:
        raise EdgenasError(f"TVM's output of {b.arch} differs from onnxruntime's by {max(errors):.3g} relative "
                           f"(allowed {RELATIVE_TOLERANCE:g}); report it as a bug")
    with exclusive():
        stats = time_interleaved({n: s.run for n, s in sessions.items()}, timing)
    return {"runtimes": {n: {**stats[n].as_dict(), "version": sessions[n].version} for n in sessions},
            "relative_error": max(errors),
            "ratio_tvm_vs_onnxruntime": round(stats["tvm"].p50_ms / stats["onnxruntime"].p50_ms, 4)}


def table(result: dict[str, Any]) -> str:
    """`bench_models`' result as the CLI prints it."""
    lines = [f"input {result['input_shape']}, {result['threads']} threads, tune --model --budget-minutes "
             f"{result['budget_minutes']:g} each into {result['database']}; p50 ms (spread = IQR/median)",
             f"{'network':16} {'Mparams':>7} {'GFLOPs':>6} {'tuned':>6} {'trials':>6} {'tune s':>6}  "
             f"{'tvm':>15}  {'onnxruntime':>15}  {'ratio':>6}  rel.err"]
    for r in result["models"]:
        t, o = r["runtimes"]["tvm"], r["runtimes"]["onnxruntime"]
        cells = [f"{s['p50_ms']:8.2f} {s['spread']:5.1%}{' ' if s['stable'] else '!'}" for s in (t, o)]
        tuned = f"{r['tuned_kernels']}/{r['tuned_kernels'] + r['fallback_kernels']}"
        lines.append(f"{r['name']:16} {r['params'] / 1e6:7.2f} {r['mflops'] / 1e3:6.2f} {tuned:>6} "
                     f"{r['tune']['trials_run']:6d} {r['tune']['seconds']:6.0f}  {cells[0]:>15}  {cells[1]:>15}  "
                     f"x{r['ratio_tvm_vs_onnxruntime']:5.2f}  {r['relative_error']:.1e}")
    if any(not s["stable"] for r in result["models"] for s in r["runtimes"].values()):
        lines.append("! spread stayed wide (the machine was busy): those medians are less certain; run again")
    lines.append(f"median ratio tvm/onnxruntime {result['median_ratio_tvm_vs_onnxruntime']:.3f} (max "
                 f"{result['max_ratio_tvm_vs_onnxruntime']:.3f}); largest relative output error "
                 f"{result['max_relative_error']:.1e}")
    return "\n".join(lines)
