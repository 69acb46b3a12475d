"""Benchmarks against ground-truth tables, following the protocol of the benchmark's README.

The method sees a held-out device only through an `Oracle` that answers at most K queries; it never reads
the column. Held-out devices are never among the meta-training devices: a run uses the shipped checkpoint
when its devices are all allowed and none is held out, and meta-trains on the allowed devices otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import spearmanr

from .benchmark import Benchmark
from .errors import EdgenasError
from .metatrain import SHIPPED, Trained, device_descriptors, meta_train


@dataclass
class Oracle:
    """Answers look-ups of one column, refusing the (budget+1)-th distinct query."""

    values: np.ndarray
    budget: int
    name: str = "device"
    asked: dict[int, float] = field(default_factory=dict)

    def __call__(self, index: int) -> float:
        index = int(index)
        if index not in self.asked:
            if len(self.asked) >= self.budget:
                raise EdgenasError(f"oracle for {self.name}: query {len(self.asked) + 1} refused; the budget is "
                                   f"{self.budget} queries")
            self.asked[index] = float(self.values[index])
        return self.asked[index]


def predictor_for(bench: Benchmark, held_out: str, allowed: list[str], log: Callable[[str], None],
                  steps: int = 1500) -> Trained:
    """The shipped checkpoint if it is allowed for this held-out device, else models meta-trained here."""
    if SHIPPED.exists():
        shipped = Trained.load(SHIPPED)
        if set(shipped.devices) <= set(allowed) and held_out not in shipped.devices:
            return shipped
    devices = [d for d in allowed if d != held_out]
    log(f"meta-training on {len(devices)} devices without {held_out} (the shipped checkpoint saw it or a "
        f"device not allowed)")
    return meta_train(bench, devices, steps=steps)


def bench_latency(bench: Benchmark, devices: list[str], support: int = 10, seeds: int = 5,
                  meta_train_devices: list[str] | None = None, meta_train_steps: int = 1500,
                  log: Callable[[str], None] = lambda _: None) -> dict:
    """Spearman rank correlation of predicted vs true latency over every architecture of each held-out
    device, from `support` oracle queries, mean over seeds; with baselines on the same support sets."""
    for d in devices:
        if d not in bench.latency:
            raise EdgenasError(f"device '{d}' is not a column of {bench.source}/latency_ms.csv; known: "
                               f"{', '.join(bench.devices)}")
    allowed = meta_train_devices or bench.devices
    x = bench.encodings()
    flops = np.array([bench.space.costs(a).flops for a in bench.archs], dtype=float)
    result = {"support": support, "seeds": seeds, "devices": {}}
    for d in devices:
        trained = predictor_for(bench, d, allowed, log, meta_train_steps)
        truth = bench.latency[d]
        table = np.log(np.stack([bench.latency[o] for o in trained.devices if o != d], 1))
        flops_rho = _spearman(flops, truth)  # needs no support set: the same every seed
        rows = {"edgenas": [], "flops": [], "ridge_onehot": [], "linear_combination": []}
        for seed in range(seeds):
            oracle = Oracle(truth, support, d)
            picks = np.random.default_rng(seed).choice(len(x), size=support, replace=False)
            measured = np.array([oracle(i) for i in picks])
            pred = trained.model.predict(device_descriptors(d), x[picks], measured, x)
            rows["edgenas"].append(_spearman(pred, truth))
            rows["flops"].append(flops_rho)
            rows["ridge_onehot"].append(_spearman(_ridge(x, picks, measured, alpha=1.0), truth))
            rows["linear_combination"].append(_spearman(_ridge(table, picks, np.log(measured), alpha=1.0), truth))
        entry = {"spearman": float(np.mean(rows["edgenas"])), "per_seed": rows["edgenas"],
                 "meta_train_devices": trained.devices,
                 "baselines": {k: float(np.mean(v)) for k, v in rows.items() if k != "edgenas"}}
        result["devices"][d] = entry
        log(f"{d}: spearman {entry['spearman']:.4f}")
    result["mean_spearman"] = float(np.mean([e["spearman"] for e in result["devices"].values()]))
    result["mean_baselines"] = {k: float(np.mean([e["baselines"][k] for e in result["devices"].values()]))
                                for k in ("flops", "ridge_onehot", "linear_combination")}
    return result


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def _ridge(features: np.ndarray, picks: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression fitted on the picked rows (standardised columns, unpenalised intercept)."""
    mean, std = features.mean(0), features.std(0) + 1e-9
    z = (features - mean) / std
    zs = z[picks]
    w = np.linalg.solve(zs.T @ zs + alpha * np.eye(z.shape[1]), zs.T @ (y - y.mean()))
    return z @ w + y.mean()


def budgets_for(truth: np.ndarray, spec: list[str]) -> list[float]:
    """Budgets in ms; `pNN` is the NN-th percentile of the device's true latencies (set by the harness)."""
    out = []
    for s in spec:
        try:
            out.append(float(np.percentile(truth, float(s[1:]))) if s.startswith("p") else float(s))
        except ValueError:
            raise EdgenasError(f"budget '{s}' is neither milliseconds nor a percentile like p50") from None
    return out


def bench_nas(bench: Benchmark, devices: list[str], budgets: list[str], task: str = "cifar100",
              source_task: str | None = "cifar10", latency_queries: int = 10, accuracy_queries: int = 10,
              seeds: int = 5, meta_train_devices: list[str] | None = None, meta_train_steps: int = 1500,
              log: Callable[[str], None] = lambda _: None) -> dict:
    """Latency-constrained search on held-out devices: the pick's true accuracy over the best accuracy of any
    architecture within budget (a pick over budget scores 0)."""
    from .search import search

    if task not in bench.accuracy:
        raise EdgenasError(f"task '{task}' is not a column of {bench.source}/accuracy.csv; known: "
                           f"{', '.join(bench.tasks)}")
    if source_task and source_task not in bench.accuracy:
        raise EdgenasError(f"source task '{source_task}' is not a column of accuracy.csv; known: "
                           f"{', '.join(bench.tasks)}")
    allowed = meta_train_devices or bench.devices
    x = bench.encodings()
    truth_acc = bench.accuracy[task]
    runs = []
    for d in devices:
        if d not in bench.latency:
            raise EdgenasError(f"device '{d}' is not a column of {bench.source}/latency_ms.csv")
        trained = predictor_for(bench, d, allowed, log, meta_train_steps)
        source = bench.accuracy[source_task] if source_task and source_task != task else trained.accuracy.predict(x)
        truth_lat = bench.latency[d]
        for budget in budgets_for(truth_lat, budgets):
            fits = truth_lat <= budget
            best = float(truth_acc[fits].max()) if fits.any() else float("nan")
            for seed in range(seeds):
                lat_oracle = Oracle(truth_lat, latency_queries, d)
                acc_oracle = Oracle(truth_acc, accuracy_queries, task)
                result = search(x, trained, device_descriptors(d), budget, lat_oracle, latency_queries, source,
                                acc_oracle, accuracy_queries, seed=seed)
                pick = result.pick
                violation = bool(truth_lat[pick] > budget)
                ratio = 0.0 if violation else float(truth_acc[pick] / best)
                runs.append({"device": d, "budget_ms": budget, "seed": seed, "pick": bench.archs[pick],
                             "latency_ms": float(truth_lat[pick]), "accuracy": float(truth_acc[pick]),
                             "oracle_accuracy": best, "ratio": ratio, "violation": violation,
                             "verified": result.verified, "latency_queries": len(lat_oracle.asked),
                             "accuracy_queries": len(acc_oracle.asked)})
            mean = np.mean([r["ratio"] for r in runs[-seeds:]])
            log(f"{d} budget {budget:.3f} ms: ratio {mean:.4f}")
    return {"task": task, "source_task": source_task, "latency_queries": latency_queries,
            "accuracy_queries": accuracy_queries, "mean_ratio": float(np.mean([r["ratio"] for r in runs])),
            "violations": int(sum(r["violation"] for r in runs)), "runs": runs}
