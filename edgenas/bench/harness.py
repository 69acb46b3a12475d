"""What the benchmarks against ground-truth tables share, following the protocol of each benchmark's README.

The method sees a held-out device only through an `Oracle` that answers at most K queries; it never reads
the column. Held-out devices are never among the meta-training devices: a run uses the shipped checkpoint
when its devices are all allowed and none is held out, and meta-trains on the allowed devices otherwise.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import spearmanr

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.checkpoint import Trained
from ..nas.latency import LatencyPredictor
from ..nas.metatrain import MetaTrainConfig, default_source_task, meta_train, meta_train_latency


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
                  config: MetaTrainConfig = MetaTrainConfig(), accuracy_task: str | None = None
                  ) -> tuple[Trained, float]:
    """The shipped checkpoint if it is allowed for this held-out device and learnt its accuracy prior from
    `accuracy_task` (default: the space's source task), else models meta-trained here; and the seconds
    meta-training took (0 for the shipped one)."""
    accuracy_task = accuracy_task or default_source_task(bench)
    shipped = _shipped_for(bench, held_out, allowed)
    if shipped is not None and shipped.accuracy_task == accuracy_task:
        return shipped, 0.0
    start = time.perf_counter()
    trained = meta_train(bench, _meta_train_devices(held_out, allowed, log), config, accuracy_task=accuracy_task)
    return trained, time.perf_counter() - start


def latency_predictor_for(bench: Benchmark, held_out: str, allowed: list[str], log: Callable[[str], None],
                          config: MetaTrainConfig = MetaTrainConfig(),
                          seed: int = 0) -> tuple[LatencyPredictor, list[str], float]:
    """As `predictor_for`, for the latency predictor alone (nothing else is meta-trained), meta-trained with
    `seed`: the model, its meta-training devices and the seconds meta-training took (0: the shipped one)."""
    shipped = _shipped_for(bench, held_out, allowed)
    if shipped is not None:
        return shipped.model, shipped.devices, 0.0
    start = time.perf_counter()
    devices = _meta_train_devices(held_out, allowed, log)
    return meta_train_latency(bench, devices, config, seed), devices, time.perf_counter() - start


def _shipped_for(bench: Benchmark, held_out: str, allowed: list[str]) -> Trained | None:
    if bench.space.checkpoint is None or not bench.space.checkpoint.exists():
        return None
    shipped = Trained.load(bench.space.checkpoint, bench.space.name)
    return shipped if set(shipped.devices) <= set(allowed) and held_out not in shipped.devices else None


def _meta_train_devices(held_out: str, allowed: list[str], log: Callable[[str], None]) -> list[str]:
    devices = [d for d in allowed if d != held_out]
    log(f"meta-training on {len(devices)} devices without {held_out} (the shipped checkpoint saw it or a "
        f"device not allowed)")
    return devices


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def ridge(features: np.ndarray, picks: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
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
