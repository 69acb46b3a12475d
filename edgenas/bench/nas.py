"""`edgenas bench nas`: latency-constrained search on held-out devices, the pick's true accuracy over the best
accuracy of any architecture within the budget (a pick over budget scores 0). By default the held-out devices are
the reference split's validation devices and meta-training uses its meta-training devices. A budget that nothing
is predicted to fit is reported as infeasible for that run, not an abort."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.conditioning import device_descriptors
from ..nas.metatrain import MetaTrainConfig
from ..nas.search import search
from .harness import Oracle, budgets_for, predictor_for


def bench_nas(bench: Benchmark, devices: list[str] | None, budgets: list[str], task: str = "cifar100",
              source_task: str | None = "cifar10", latency_queries: int = 10, accuracy_queries: int = 10,
              seeds: int = 5, meta_train_devices: list[str] | None = None,
              meta_training: MetaTrainConfig = MetaTrainConfig(),
              log: Callable[[str], None] = lambda _: None) -> dict:
    """Latency-constrained search on held-out devices: the pick's true accuracy over the best accuracy of any
    architecture within budget (a pick over budget scores 0)."""
    if task not in bench.accuracy:
        raise EdgenasError(f"task '{task}' is not a column of {bench.source}/accuracy.csv; known: "
                           f"{', '.join(bench.tasks)}")
    if source_task and source_task not in bench.accuracy:
        raise EdgenasError(f"source task '{source_task}' is not a column of accuracy.csv; known: "
                           f"{', '.join(bench.tasks)}")
    split = bench.space.reference_split
    devices = list(devices or split.get("validation", ()))
    if not devices:
        raise EdgenasError(f"space '{bench.space.name}' has no reference split; name the held-out devices with "
                           f"--device")
    for d in devices:
        if d not in bench.latency:
            raise EdgenasError(f"device '{d}' is not a column of {bench.source}/latency_ms.csv")
        budgets_for(bench.latency[d], budgets)  # every budget readable before anything is meta-trained
    allowed = list(meta_train_devices or split.get("meta_train", ()) or bench.devices)
    x = bench.encodings()
    truth_acc = bench.accuracy[task]
    runs = []
    meta_train_seconds: dict[str, float] = {}  # per held-out device, of the models it used; 0: the shipped ones
    trainings: dict[tuple[str, ...], tuple] = {}  # one meta-training per set of devices (the split's: one in all)
    for d in devices:
        key = tuple(a for a in allowed if a != d)
        if key not in trainings:
            trainings[key] = predictor_for(bench, d, allowed, log, meta_training)
        trained, seconds = trainings[key]
        meta_train_seconds[d] = round(seconds, 1)
        source = bench.accuracy[source_task] if source_task and source_task != task else trained.accuracy.predict(x)
        truth_lat = bench.latency[d]
        for budget in budgets_for(truth_lat, budgets):
            fits = truth_lat <= budget
            best = float(truth_acc[fits].max()) if fits.any() else float("nan")
            for seed in range(seeds):
                lat_oracle = Oracle(truth_lat, latency_queries, d)
                acc_oracle = Oracle(truth_acc, accuracy_queries, task)
                try:
                    result = search(x, trained, device_descriptors(d), budget, lat_oracle, latency_queries, source,
                                    acc_oracle, accuracy_queries, seed=seed)
                except EdgenasError as e:  # nothing measured or predicted fits: said, and scored as a miss
                    runs.append({"device": d, "budget_ms": budget, "seed": seed, "pick": None, "latency_ms": None,
                                 "accuracy": None, "oracle_accuracy": best, "ratio": 0.0, "violation": False,
                                 "infeasible": str(e), "verified": False, "latency_queries": len(lat_oracle.asked),
                                 "accuracy_queries": len(acc_oracle.asked)})
                    continue
                pick = result.pick
                violation = bool(truth_lat[pick] > budget)
                ratio = 0.0 if violation else float(truth_acc[pick] / best)
                runs.append({"device": d, "budget_ms": budget, "seed": seed, "pick": bench.archs[pick],
                             "latency_ms": float(truth_lat[pick]), "accuracy": float(truth_acc[pick]),
                             "oracle_accuracy": best, "ratio": ratio, "violation": violation, "infeasible": None,
                             "verified": result.verified, "latency_queries": len(lat_oracle.asked),
                             "accuracy_queries": len(acc_oracle.asked)})
            mean = np.mean([r["ratio"] for r in runs[-seeds:]])
            log(f"{d} budget {budget:.3f} ms: ratio {mean:.4f}")
    return {"task": task, "source_task": source_task, "seeds": seeds, "meta_train_seconds": meta_train_seconds,
            "latency_queries": latency_queries,
            "accuracy_queries": accuracy_queries, "mean_ratio": float(np.mean([r["ratio"] for r in runs])),
            "violations": int(sum(r["violation"] for r in runs)),
            "infeasible": int(sum(r["infeasible"] is not None for r in runs)), "runs": runs}


def table(result: dict) -> str:
    """`bench_nas`'s result as the table the CLI prints."""
    lines = [f"{result['task']}, {result['latency_queries']} latency + {result['accuracy_queries']} accuracy queries, "
             f"{result['seeds']} seeds",
             f"{'device':<15} {'budget ms':>9} {'pick ms':>8} {'acc':>6} {'oracle':>6} {'ratio':>7} {'over':>4}"]
    for r in result["runs"]:
        if r["infeasible"]:
            lines.append(f"{r['device']:<15} {r['budget_ms']:9.3f} {'infeasible':>8}: {r['infeasible']}")
            continue
        lines.append(f"{r['device']:<15} {r['budget_ms']:9.3f} {r['latency_ms']:8.3f} {r['accuracy']:6.2f} "
                     f"{r['oracle_accuracy']:6.2f} {r['ratio']:7.4f} {'yes' if r['violation'] else '':>4}")
    lines.append(f"mean ratio {result['mean_ratio']:.4f}, violations {result['violations']}, infeasible "
                 f"{result['infeasible']} of {len(result['runs'])}")
    return "\n".join(lines)
