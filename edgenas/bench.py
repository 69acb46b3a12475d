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


def predictor_for(bench: Benchmark, held_out: str, allowed: list[str], log: Callable[[str], None]) -> Trained:
    """The shipped checkpoint if it is allowed for this held-out device, else a model meta-trained here."""
    if SHIPPED.exists():
        shipped = Trained.load(SHIPPED)
        if set(shipped.devices) <= set(allowed) and held_out not in shipped.devices:
            return shipped
    devices = [d for d in allowed if d != held_out]
    log(f"meta-training on {len(devices)} devices without {held_out} (the shipped checkpoint saw it or a "
        f"device not allowed)")
    return meta_train(bench, devices)


def bench_latency(bench: Benchmark, devices: list[str], support: int = 10, seeds: int = 5,
                  meta_train_devices: list[str] | None = None,
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
        trained = predictor_for(bench, d, allowed, log)
        others = [o for o in trained.devices if o != d]
        rows = {"edgenas": [], "flops": [], "ridge_onehot": [], "linear_combination": []}
        for seed in range(seeds):
            oracle = Oracle(bench.latency[d], support, d)
            picks = np.random.default_rng(seed).choice(len(x), size=support, replace=False)
            measured = np.array([oracle(i) for i in picks])
            truth = bench.latency[d]
            pred = trained.model.predict(device_descriptors(d), x[picks], measured, x)
            rows["edgenas"].append(_spearman(pred, truth))
            rows["flops"].append(_spearman(flops, truth))
            rows["ridge_onehot"].append(_spearman(_ridge(x, picks, measured, alpha=1.0), truth))
            table = np.log(np.stack([bench.latency[o] for o in others], 1))
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
