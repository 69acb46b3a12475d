"""Few-shot search: the architecture that fits a latency (and memory) budget with the best accuracy.

The loop spends a measurement budget well: a small reference set spread over the predicted latency range
calibrates the device, then each round re-conditions the latency predictor (device head) and the task
predictor (task head) on everything measured so far, lets the generator propose architectures for those
heads and the budgets, ranks the proposals predicted to fit by predicted accuracy, and measures the best one
not yet measured (acquisition near the budget, where the decision is made). Accuracy measurements on the
user's task go to the same candidates. The answer is the best architecture measured to fit (in this search or
stored before it), else (nothing measured fits, or nothing can be measured) the best whose calibrated 90 % upper
bound fits: unverified.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import norm

from ..errors import EdgenasError
from .checkpoint import Trained
from .generator import condition_vector
from .latency import Prediction


@dataclass
class Candidate:
    index: int
    predicted_ms: float | None  # None for the reference measurements, taken before any prediction counts
    measured_ms: float | None = None
    predicted_accuracy: float | None = None
    measured_accuracy: float | None = None
    stored: bool = False  # measured before this search (the store's support set)


@dataclass
class SearchResult:
    pick: int
    verified: bool  # measured to fit the budget (in this search, or stored before it: see `stored_ms`)
    candidates: list[Candidate] = field(default_factory=list)  # every architecture measured, in order
    predicted_ms: float | None = None  # an unverified pick's predicted latency and calibrated 90 % interval
    interval_ms: tuple[float, float] | None = None
    stored_ms: float | None = None  # a pick verified by a stored measurement: that latency


def search(x: np.ndarray, models: Trained, descriptors: np.ndarray, budget_ms: float,
           measure_latency: Callable[[int], float], latency_queries: int, source_accuracy: np.ndarray,
           measure_accuracy: Callable[[int], float] | None = None, accuracy_queries: int = 0,
           allowed: np.ndarray | None = None, memory_mb: float | None = None,
           support: tuple[list[int], list[float]] = ([], []),
           accuracy_support: tuple[list[int], list[float]] = ([], []), reference: int = 3,
           explore: float = 0.3, proposals: int = 512, min_fits: int = 32, seed: int = 0,
           admit: Callable[[np.ndarray], tuple[float, bool]] | None = None, score_all: bool = False) -> SearchResult:
    """Find the architecture (row of `x`) with the best expected accuracy whose latency fits `budget_ms`.

    `x` holds the encodings of the architectures that can be measured; `source_accuracy` their accuracy on the
    source task (known, or predicted by the accuracy prior). `allowed` masks architectures that break the
    memory budget `memory_mb`; `support` holds latencies already measured on the device (row, ms), e.g. from
    the store; `accuracy_support` accuracies already measured on the task (row, accuracy), e.g. briefly trained
    samples. Each round the generator proposes `proposals` architectures (more, under tighter budgets, until
    `min_fits` of them are plausible fits). A candidate is worth measuring
    while its predicted latency minus `explore` predictive standard deviations fits; an unverified answer's
    calibrated 90 % upper bound must fit. Without measurements or stored ones the answer is zero-shot, from the
    profile's descriptors alone.

    `admit` opens the rows for a space too large to enumerate: each proposed encoding that is not a row of `x`
    is passed to it; it returns that architecture's source-task accuracy and whether it is allowed (and keeps
    the caller's list of architectures in step), and the encoding becomes the next row. Such a search starts
    from a sample and finds everything else through the generator's proposals.

    `score_all` skips the generator: every allowed row is a candidate each round (what `bench nas` compares the
    generator with on a space small enough to score whole).
    """
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(x), bool) if allowed is None else allowed
    if not allowed.any():
        raise EdgenasError("no architecture meets the memory budget; raise --memory-mb")
    x = np.asarray(x, np.float32)
    source_accuracy = np.asarray(source_accuracy, np.float64)
    rows = {row.tobytes(): i for i, row in enumerate(x)}
    offsets = np.r_[0, np.cumsum(models.generator.decisions)]
    lat_idx, lat_ms = list(support[0]), list(support[1])
    measured: dict[int, Candidate] = {}
    known_ms: dict[int, float] = dict(zip(lat_idx, lat_ms))  # every latency measured, before or during the search
    known_acc: dict[int, float] = dict(zip(accuracy_support[0], accuracy_support[1]))

    def record(i: int, predicted: float | None) -> None:
        ms = measure_latency(i)
        lat_idx.append(i)
        lat_ms.append(ms)
        measured[i] = Candidate(i, predicted, measured_ms=ms)
        known_ms[i] = ms

    def propose(latency_head: np.ndarray, unit: float, task_head: np.ndarray) -> tuple[np.ndarray, Prediction]:
        """The generator's proposals for the current heads and budgets, plus everything measured, with their
        predicted latencies. When few proposals are predicted to fit (heads unlike any seen in meta-training,
        e.g. after stale or surprising measurements), the generator is asked again under a budget halved each
        time, so the candidates always reach down to what the predictor says fits."""
        nonlocal x, source_accuracy, allowed
        if score_all:
            cand = np.flatnonzero(allowed)
            return cand, models.model.predict(descriptors, x[lat_idx], np.asarray(lat_ms), x[cand])
        found = set(measured) | set(known_acc)
        for halvings in range(8):
            cond = condition_vector(latency_head, task_head, budget_ms / unit / 2 ** halvings, memory_mb)
            new = []
            for choices in models.generator.beam(cond, proposals):
                encoding = np.zeros(x.shape[1], np.float32)
                encoding[offsets[:-1] + np.asarray(choices)] = 1.0
                key = encoding.tobytes()
                if key not in rows and admit is not None:
                    rows[key] = len(x) + len(new)
                    new.append((encoding, *admit(encoding)))
                if key in rows:
                    found.add(rows[key])
            if new:
                x = np.vstack([x, [e for e, _, _ in new]])
                source_accuracy = np.r_[source_accuracy, [a for _, a, _ in new]]
                allowed = np.r_[allowed, [ok for _, _, ok in new]]
            cand = np.array(sorted(i for i in found if allowed[i]), dtype=int)
            predicted = models.model.predict(descriptors, x[lat_idx], np.asarray(lat_ms), x[cand])
            if (predicted.ms - explore * predicted.std <= budget_ms).sum() >= min_fits:
                break
        return cand, predicted

    # 1. reference set: spread over the predicted latency range of a random sample, so the device's scale
    #    is known
    if not lat_idx and latency_queries > 0:
        pool = rng.choice(np.flatnonzero(allowed), size=min(2000, int(allowed.sum())), replace=False)
        prior = models.model.predict(descriptors, x[:0], np.zeros(0), x[pool]).ms
        for part in np.array_split(pool[np.argsort(prior)], min(reference, latency_queries)):
            record(int(rng.choice(part)), None)
    lat_left = latency_queries - len(measured)
    acc_left = accuracy_queries if measure_accuracy else 0
    # 2. acquisition, one latency and one accuracy measurement a round, each on the best-ranked candidate
    #    that lacks it; every answer re-conditions the heads before the next proposals
    while True:
        head, unit = models.model.head(descriptors, x[lat_idx], np.asarray(lat_ms))
        task_head = models.task.head(source_accuracy, x, list(known_acc), list(known_acc.values()))
        cand, predicted = propose(head, unit, task_head)
        lat, std = predicted.ms, predicted.std
        score = models.task.predict(source_accuracy, x, list(known_acc), list(known_acc.values()), rows=cand)
        score = np.array([known_acc.get(i, s) for i, s in zip(cand, score)])
        # worth measuring: plausibly within budget (`explore` predictive stds); a measurement decides
        fits = lat - explore * std <= budget_ms
        fits = np.array([known_ms[i] <= budget_ms if i in known_ms else f for i, f in zip(cand, fits)])
        order = [k for k in np.argsort(-score) if fits[k]]
        ranked = [int(cand[k]) for k in order]
        if not ranked or (lat_left <= 0 and acc_left <= 0):
            break
        progressed = False
        need_acc = [i for i in ranked if i not in known_acc]
        if acc_left > 0 and need_acc:
            known_acc[need_acc[0]] = measure_accuracy(need_acc[0])
            acc_left -= 1
            progressed = True
        # latency: the expected gain in accuracy over the best verified fit, P(fits) x improvement
        is_measured = np.array([i in known_ms for i in cand])
        verified = is_measured & fits
        incumbent = score[verified].max() if verified.any() else score.min()
        gain = norm.cdf((budget_ms - lat) / np.maximum(std, 1e-9)) * np.clip(score - incumbent, 0, None)
        gain[is_measured] = -1.0
        k = int(np.argmax(gain))
        if lat_left > 0 and gain[k] > 0:
            record(int(cand[k]), float(lat[k]))
            lat_left -= 1
            progressed = True
        if not progressed:
            break
    # 3. the answer: the best verified fit (measured accuracy where known), else the best predicted fit
    by_row = dict(zip(cand.tolist(), score))
    for c in measured.values():
        c.predicted_accuracy = float(by_row.get(c.index, np.nan))
        c.measured_accuracy = known_acc.get(c.index)
    verified = [c for c in measured.values() if c.measured_ms <= budget_ms and allowed[c.index]]
    verified += [Candidate(i, None, measured_ms=ms, stored=True) for i, ms in zip(support[0], support[1])
                 if ms <= budget_ms and allowed[i] and i not in measured]
    if verified:
        best = max(verified, key=lambda c: by_row.get(c.index, -np.inf))
        return SearchResult(best.index, True, list(measured.values()),
                            stored_ms=best.measured_ms if best.stored else None)
    position = {int(i): k for k, i in enumerate(cand)}
    safe = [i for i in ranked if i not in known_ms and predicted.high[position[i]] <= budget_ms]
    if not safe:
        fastest = float(predicted.high.min()) if len(cand) else float("nan")
        raise EdgenasError(f"no architecture is predicted to fit {budget_ms:g} ms on this device with 90 % "
                           f"confidence (the lowest upper bound is {fastest:.3g} ms); raise the latency budget or "
                           f"measure on the device")
    k = position[safe[0]]
    return SearchResult(safe[0], False, list(measured.values()), float(predicted.ms[k]),
                        (float(predicted.low[k]), float(predicted.high[k])))
