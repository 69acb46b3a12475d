"""Few-shot search: the architecture that fits a latency (and memory) budget with the best accuracy.

The loop spends a measurement budget well: a small reference set spread over the predicted latency range
calibrates the device, then each round re-conditions the latency predictor on everything measured so far,
ranks the architectures predicted to fit by predicted accuracy, and measures the best one not yet
measured (acquisition near the budget, where the decision is made). Accuracy measurements on the user's
task, where available, go to the same candidates and update the accuracy model. The answer is the best
architecture measured to fit, else the best predicted to fit with a safety margin.

Scoring is exhaustive over the space's architectures when the space can be enumerated (NB201: 15,625).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import EdgenasError
from .predictor import LatencyPredictor


class AccuracyModel:
    """Accuracy on the target task from (architecture, accuracy) pairs: Bayesian ridge regression on the
    source task's accuracy (prior knowledge, coefficient near 1) and the encoding (small corrections)."""

    def __init__(self, x: np.ndarray, source: np.ndarray | None):
        src = np.zeros(len(x)) if source is None else (source - source.mean()) / (source.std() + 1e-9)
        self.features = np.c_[src, np.ones(len(x)), x]
        self.prior_precision = np.r_[1e-2, 1e-4, np.full(x.shape[1], 4.0)]
        self.source = src

    def predict(self, picks: list[int], values: list[float]) -> np.ndarray:
        if not picks:
            return self.source.copy()  # ranks of the source task
        f, y = self.features[picks], np.asarray(values, float)
        scale = y.std() + 1.0
        prior = np.zeros(f.shape[1])
        prior[0], prior[1] = scale, y.mean()
        a = f.T @ f + np.diag(self.prior_precision)
        w = np.linalg.solve(a, f.T @ y + self.prior_precision * prior)
        return self.features @ w


@dataclass
class Candidate:
    index: int
    predicted_ms: float | None  # None when nothing was measured yet (predictions are only relative then)
    measured_ms: float | None = None
    predicted_accuracy: float | None = None
    measured_accuracy: float | None = None


@dataclass
class SearchResult:
    pick: int
    verified: bool  # measured to fit the budget
    candidates: list[Candidate] = field(default_factory=list)  # every architecture measured, in order


def search(x: np.ndarray, predictor: LatencyPredictor, descriptors: np.ndarray, budget_ms: float,
           measure_latency: Callable[[int], float], latency_queries: int,
           measure_accuracy: Callable[[int], float] | None = None, accuracy_queries: int = 0,
           source_accuracy: np.ndarray | None = None, allowed: np.ndarray | None = None,
           support: tuple[list[int], list[float]] = ([], []), reference: int = 3, margin: float = 0.05,
           explore: float = 0.3, seed: int = 0) -> SearchResult:
    """Find the architecture (row of `x`) with the best expected accuracy whose latency fits `budget_ms`.

    `allowed` masks architectures that break other hard constraints (memory); `support` holds latencies
    already measured on the device (index, ms), e.g. from the store. A candidate is worth measuring while
    its predicted latency minus `explore` predictive standard deviations fits; an unverified answer must be
    predicted `margin` under the budget.
    """
    if latency_queries < 1 and not support[0]:
        raise EdgenasError("the search needs at least one latency measurement or a stored one; raise the "
                           "measurement budget")
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(x), bool) if allowed is None else allowed
    if not allowed.any():
        raise EdgenasError("no architecture meets the memory budget; raise --memory-mb")
    lat_idx, lat_ms = list(support[0]), list(support[1])
    accuracy = AccuracyModel(x, source_accuracy)
    measured: dict[int, Candidate] = {}

    def predict_latency(with_std: bool = False):
        return predictor.predict(descriptors, x[lat_idx], np.asarray(lat_ms), x, with_std=with_std)

    def record(i: int, predicted: float | None) -> None:
        ms = measure_latency(i)
        lat_idx.append(i)
        lat_ms.append(ms)
        measured[i] = Candidate(i, predicted, measured_ms=ms)

    # 1. reference set: spread over the predicted latency range, so the device's scale is known
    if not lat_idx:
        prior = predict_latency()
        order = np.argsort(prior)
        for part in np.array_split(order, min(reference, latency_queries)):
            record(int(rng.choice(part)), None)
    lat_left = latency_queries - len(measured)
    acc_left = accuracy_queries if measure_accuracy else 0
    known_acc: dict[int, float] = {}
    # 2. acquisition, one latency and one accuracy measurement a round, each on the best-ranked candidate
    #    that lacks it; every answer re-conditions the models before the next choice
    while True:
        lat, std = predict_latency(with_std=True)
        score = accuracy.predict(list(known_acc), list(known_acc.values()))
        for i, value in known_acc.items():
            score[i] = value
        # worth measuring: plausibly within budget (`explore` predictive stds); a measurement decides
        fits = allowed & (lat - explore * std <= budget_ms)
        for i, c in measured.items():  # a measurement overrides the prediction
            fits[i] = allowed[i] and c.measured_ms <= budget_ms
        ranked = [int(i) for i in np.argsort(-np.where(fits, score, -np.inf)) if fits[i]]
        if not ranked or (lat_left <= 0 and acc_left <= 0):
            break
        progressed = False
        need_acc = [i for i in ranked if i not in known_acc]
        if acc_left > 0 and need_acc:
            known_acc[need_acc[0]] = measure_accuracy(need_acc[0])
            acc_left -= 1
            progressed = True
        need_lat = [i for i in ranked if i not in measured]
        if lat_left > 0 and need_lat:
            i = need_lat[0]
            record(i, float(lat[i]))
            lat_left -= 1
            progressed = True
        if not progressed:
            break
    # 3. the answer: the best verified fit (measured accuracy where known), else the best predicted fit
    for c in measured.values():
        c.predicted_accuracy = float(score[c.index])
        c.measured_accuracy = known_acc.get(c.index)
    verified = [c for c in measured.values() if c.measured_ms <= budget_ms and allowed[c.index]]
    if verified:
        best = max(verified, key=lambda c: score[c.index])
        return SearchResult(best.index, True, list(measured.values()))
    safe = [i for i in ranked if i not in measured and lat[i] <= budget_ms * (1 - margin)]
    if not safe:
        raise EdgenasError(f"no architecture is predicted to fit {budget_ms:g} ms on this device; raise the "
                           f"latency budget")
    return SearchResult(safe[0], False, list(measured.values()))
