"""Timing a model session: warm-up, calibrated batches, repeats until the spread is small, and several sessions
interleaved so that a slow phase of the machine falls on all of them alike.

A session's `run(n)` returns the mean seconds of n back-to-back inferences (see `edgenas.runtimes`); what
comes back is a `Stats` over the repeats, flagged unstable when their spread stays wide. Where a profile is
timed (here or on an RPC device) is `place.py`'s business.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """How long to time: warm-up, the minimum length of one repeat, and when to stop repeating."""

    warmup_s: float = 0.2
    min_repeat_ms: float = 20.0
    min_repeats: int = 10
    max_repeats: int = 60
    max_seconds: float = 10.0
    max_spread: float = 0.05  # interquartile range / median of the repeats counted as stable


@dataclass(frozen=True)
class Stats:
    p50_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float
    spread: float
    repeats: int
    number: int  # inferences per repeat
    stable: bool
    samples_ms: tuple[float, ...] = field(default=(), repr=False)  # each repeat's mean, in the order taken

    @classmethod
    def of(cls, samples_ms: list[float], number: int, max_spread: float) -> "Stats":
        a = np.asarray(samples_ms)
        p25, p50, p75, p90 = np.percentile(a, [25, 50, 75, 90])
        spread = float((p75 - p25) / p50) if p50 > 0 else 0.0
        return cls(float(p50), float(p90), float(a.min()), float(a.mean()), float(a.std()), spread, len(a), number,
                   spread <= max_spread, tuple(float(v) for v in a))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of the repeats, in milliseconds."""
        return float(np.percentile(self.samples_ms, q))

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "samples_ms"}


@dataclass(frozen=True)
class Measurement:
    runtime: str
    runtime_version: str
    threads: int
    stats: Stats
    outputs: tuple[np.ndarray, ...]  # the model's outputs for the timed input
    device: str = "local"  # 'local', or the HOST:PORT of the RPC server that timed it
    other_cores: float | None = None  # cores other processes kept busy meanwhile (local timing; `machine.Load`)
    under_load: bool = False  # they were too many: the latency is suspect, and not used as support


# Idle time between two sessions' repeats, longer than any thread pool's spin-wait: measured here with TVM and
# onnxruntime interleaved, 50 ms still left onnxruntime's repeats 16% apart (IQR/median), 200 ms 1%.
HANDOVER_S = 0.2


def time_session(run: Callable[[int], float], timing: Timing) -> Stats:
    return time_interleaved({"": run}, timing)[""]


def time_interleaved(runs: dict[str, Callable[[int], float]], timing: Timing) -> dict[str, Stats]:
    """Time several sessions on the same machine fairly: each is warmed up and calibrated (inferences per
    repeat so one repeat lasts `min_repeat_ms`), then their repeats are taken in turn, round after round, so
    a slow phase of the machine falls on all of them alike. Rounds continue until every session is stable
    (or the time or repeat limit is reached). Between two sessions' repeats the machine is left idle for
    `HANDOVER_S`: thread pools (TVM's, onnxruntime's) keep their workers spinning for milliseconds after a
    call, and those workers would otherwise take the cores of the next session's first inferences."""
    numbers = {}
    for name, run in runs.items():
        start = time.perf_counter()
        warmup = [run(1)]
        while time.perf_counter() - start < timing.warmup_s:
            warmup.append(run(1))
        once = float(np.median(warmup[len(warmup) // 2:]))  # the later, warm half
        numbers[name] = max(1, math.ceil(timing.min_repeat_ms / 1e3 / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    begin = time.perf_counter()
    for repeat in range(1, timing.max_repeats + 1):
        for name, run in runs.items():
            if len(runs) > 1:
                time.sleep(HANDOVER_S)
            samples[name].append(run(numbers[name]) * 1e3)
        if repeat >= timing.min_repeats and (time.perf_counter() - begin > timing.max_seconds * len(runs) or all(
                Stats.of(samples[n], numbers[n], timing.max_spread).stable for n in runs)):
            break
    return {name: Stats.of(samples[name], numbers[name], timing.max_spread) for name in runs}
