"""`edgenas bench nas`: latency-constrained search on held-out devices, the pick's true accuracy over the best
accuracy of any architecture within the budget (a pick over budget scores 0). By default the held-out devices are
the reference split's validation devices and meta-training uses its meta-training devices. A budget that nothing
is predicted to fit is reported as infeasible for that run, not an abort.

On a space small enough to score whole (NB201) each run is searched twice on the same oracles' answers budget:
with the generator's proposals (the product path) and scoring every architecture each round (`all_cells`), so
the generator has to earn its place. The task may be the table's or `synthetic.UNSEEN_TASK`, an
ImageNet16-120-style task no meta-training saw (seeded by `task_seed`). With a source task, the baseline
`best_source_fit` is the architecture most accurate on the source task among those that truly fit (latency
known exactly, no accuracy query): what the accuracy queries have to beat."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.conditioning import device_descriptors
from ..nas.metatrain import CAPACITY, MetaTrainConfig, default_source_task
from ..nas.search import search
from .harness import Oracle, budgets_for, predictor_for
from .synthetic import UNSEEN_TASK, unseen_task

ARMS = ("generator", "all_cells")  # how the search finds its candidates: proposals, or every architecture


def bench_nas(bench: Benchmark, devices: list[str] | None, budgets: list[str], task: str | None = None,
              source_task: str | None = None, latency_queries: int = 10, accuracy_queries: int = 10,
              seeds: int = 5, meta_train_devices: list[str] | None = None,
              meta_training: MetaTrainConfig = MetaTrainConfig(), task_seed: int = 0,
              log: Callable[[str], None] = lambda _: None) -> dict:
    """Latency-constrained search on held-out devices: the pick's true accuracy over the best accuracy of any
    architecture within budget (a pick over budget scores 0), for each of the arms the space allows. `task`
    defaults to the space's judged task, `source_task` (the table column searches know in advance; '' for none)
    to its source task unless that is the judged one; models meta-trained here learn their accuracy prior from
    the space's source task, or from the capacity proxy where that is the judged task."""
    task = task or bench.space.judged_task
    if task is None:
        raise EdgenasError(f"{bench.source} has no accuracy column that space '{bench.space.name}' judges by; pass "
                           f"--task with one of: {', '.join([*bench.tasks, UNSEEN_TASK])}")
    if source_task is None:
        source_task = bench.space.source_task if bench.space.source_task != task else None
    source_task = source_task or None
    prior_task = default_source_task(bench)
    prior_task = CAPACITY if prior_task == task else prior_task
    if task not in bench.accuracy and task != UNSEEN_TASK:
        raise EdgenasError(f"task '{task}' is not a column of {bench.source}/accuracy.csv; known: "
                           f"{', '.join([*bench.tasks, UNSEEN_TASK])}")
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
        if not np.isfinite(bench.latency[d]).all():  # a column edgenas measured itself (--store)
            raise EdgenasError(f"device '{d}' has latencies for {np.isfinite(bench.latency[d]).sum()} of the "
                               f"{len(bench.archs)} architectures; bench nas judges a pick against every one, so it "
                               f"holds out a column of the table")
        budgets_for(bench.latency[d], budgets)  # every budget readable before anything is meta-trained
    allowed = list(meta_train_devices or split.get("meta_train", ()) or bench.devices)
    x = bench.encodings()
    truth_acc = unseen_task(bench, task_seed) if task == UNSEEN_TASK else bench.accuracy[task]
    arms = ARMS if bench.space.enumerable else ARMS[:1]
    runs, transfer = [], []
    meta_train_seconds: dict[str, float] = {}  # per held-out device, of the models it used; 0: the shipped ones
    trainings: dict[tuple[str, ...], tuple] = {}  # one meta-training per set of devices (the split's: one in all)
    for d in devices:
        key = tuple(a for a in allowed if a != d)
        if key not in trainings:
            trainings[key] = predictor_for(bench, d, allowed, log, meta_training, prior_task)
        trained, seconds = trainings[key]
        meta_train_seconds[d] = round(seconds, 1)
        source = bench.accuracy[source_task] if source_task and source_task != task else trained.accuracy.predict(x)
        truth_lat = bench.latency[d]
        for budget in budgets_for(truth_lat, budgets):
            fits = truth_lat <= budget
            best = float(np.nanmax(truth_acc[fits])) if fits.any() else float("nan")
            if source_task and source_task != task and fits.any():
                known = np.where(fits, np.nan_to_num(bench.accuracy[source_task], nan=-np.inf), -np.inf)
                transfer.append(float(truth_acc[int(np.argmax(known))] / best))
            for arm in arms:
                for seed in range(seeds):
                    runs.append(_run(x, trained, d, budget, best, truth_lat, truth_acc, task, source, latency_queries,
                                     accuracy_queries, seed, arm, bench.archs))
                mean = np.mean([r["ratio"] for r in runs[-seeds:]])
                log(f"{d} budget {budget:.3f} ms, {arm}: ratio {mean:.4f}")
    summary = {arm: _summary([r for r in runs if r["arm"] == arm]) for arm in arms}
    return {"task": task, "task_seed": task_seed if task == UNSEEN_TASK else None, "source_task": source_task,
            "prior_task": prior_task,
            "seeds": seeds, "meta_train_seconds": meta_train_seconds, "latency_queries": latency_queries,
            "accuracy_queries": accuracy_queries, **summary["generator"], "arms": summary,
            "baselines": {"best_source_fit": float(np.mean(transfer)) if transfer else None}, "runs": runs}


def _summary(runs: list[dict]) -> dict:
    return {"mean_ratio": float(np.mean([r["ratio"] for r in runs])),
            "violations": int(sum(r["violation"] for r in runs)),
            "infeasible": int(sum(r["infeasible"] is not None for r in runs)),
            "verified": int(sum(r["verified"] for r in runs)), "runs_count": len(runs),
            "seconds_per_search": round(float(np.mean([r["seconds"] for r in runs])), 3)}


def _run(x: np.ndarray, trained, device: str, budget: float, best: float, truth_lat: np.ndarray,
         truth_acc: np.ndarray, task: str, source: np.ndarray, latency_queries: int, accuracy_queries: int, seed: int,
         arm: str, archs: list[str]) -> dict:
    """One search on one held-out device under one budget, scored against the best architecture that fits."""
    lat_oracle = Oracle(truth_lat, latency_queries, device)
    acc_oracle = Oracle(truth_acc, accuracy_queries, task)
    run = {"device": device, "budget_ms": budget, "seed": seed, "arm": arm, "oracle_accuracy": best}
    start = time.perf_counter()
    try:
        result = search(x, trained, device_descriptors(device), budget, lat_oracle, latency_queries, source,
                        acc_oracle, accuracy_queries, seed=seed, score_all=arm == "all_cells")
    except EdgenasError as e:  # nothing measured or predicted fits: said, and scored as a miss
        return {**run, "seconds": round(time.perf_counter() - start, 3), "pick": None, "latency_ms": None,
                "accuracy": None, "ratio": 0.0, "violation": False,
                "infeasible": str(e), "verified": False, "latency_queries": len(lat_oracle.asked),
                "accuracy_queries": len(acc_oracle.asked)}
    run["seconds"] = round(time.perf_counter() - start, 3)
    pick = result.pick
    violation = bool(truth_lat[pick] > budget)
    return {**run, "pick": archs[pick], "latency_ms": float(truth_lat[pick]), "accuracy": float(truth_acc[pick]),
            "ratio": 0.0 if violation else float(truth_acc[pick] / best), "violation": violation, "infeasible": None,
            "verified": result.verified, "latency_queries": len(lat_oracle.asked),
            "accuracy_queries": len(acc_oracle.asked)}


def table(result: dict) -> str:
    """`bench_nas`'s result as the table the CLI prints."""
    task = result["task"] + (f" (seed {result['task_seed']})" if result["task_seed"] is not None else "")
    lines = [f"{task}, source task {result['source_task'] or 'none'}, {result['latency_queries']} latency + "
             f"{result['accuracy_queries']} accuracy queries, {result['seeds']} seeds, accuracy prior from "
             f"{result['prior_task']}",
             f"{'device':<15} {'arm':<10} {'budget ms':>9} {'pick ms':>8} {'acc':>6} {'oracle':>6} {'ratio':>7} "
             f"{'over':>4}"]
    for r in result["runs"]:
        if r["infeasible"]:
            lines.append(f"{r['device']:<15} {r['arm']:<10} {r['budget_ms']:9.3f} {'infeasible':>8}: "
                         f"{r['infeasible']}")
            continue
        lines.append(f"{r['device']:<15} {r['arm']:<10} {r['budget_ms']:9.3f} {r['latency_ms']:8.3f} "
                     f"{r['accuracy']:6.2f} {r['oracle_accuracy']:6.2f} {r['ratio']:7.4f} "
                     f"{'yes' if r['violation'] else '':>4}")
    for arm, s in result["arms"].items():
        lines.append(f"{arm}: mean ratio {s['mean_ratio']:.4f}, violations {s['violations']}, infeasible "
                     f"{s['infeasible']}, verified {s['verified']} of {s['runs_count']}, "
                     f"{s['seconds_per_search']:.2f} s per search")
    if result["baselines"]["best_source_fit"] is not None:
        lines.append(f"baseline best_source_fit (the most accurate on {result['source_task']} of those that truly "
                     f"fit): mean ratio {result['baselines']['best_source_fit']:.4f}")
    return "\n".join(lines)
