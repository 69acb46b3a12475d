"""Synthetic devices unlike any column of a benchmark table, generated from seeded recipes, for judging whether a
few measurements teach the predictor a device that no meta-training device resembles:

- `random_ops`: every choice of every decision costs a random amount (log-normal), plus a fixed overhead;
- `roofline`: a network takes max(FLOPs / peak, bytes moved / bandwidth) plus an overhead, with the peak and
  the bandwidth drawn so that both compute- and memory-bound networks occur;
- `npu_fallback`: an accelerator runs most operations cheaply, but a random third of the operation types fall
  back to a CPU ten to thirty times slower and pay a transfer each time.

Each latency carries 2 % multiplicative noise. The same seed gives the same devices.
"""
from __future__ import annotations

import numpy as np

from ..nas.benchmark import Benchmark

RECIPES = ("random_ops", "roofline", "npu_fallback")


def synthetic_devices(bench: Benchmark, seed: int = 0) -> dict[str, np.ndarray]:
    """`synthetic_<recipe>` -> latency (ms) of every architecture of the table, one device per recipe."""
    rng = np.random.default_rng(seed)
    x = bench.encodings().astype(np.float64)
    costs = [bench.space.costs(a) for a in bench.archs]
    flops = np.array([c.flops for c in costs], dtype=float)
    moved = np.array([4 * c.params + 2 * c.peak_activation_bytes for c in costs], dtype=float)
    per_choice = rng.lognormal(0.0, 1.0, x.shape[1])
    compute, memory = flops / np.median(flops), moved / np.median(moved) * rng.lognormal(0.0, 0.5)
    choice_kind = np.tile(np.arange(bench.space.decisions[0]), len(bench.space.decisions))  # the operation type
    falls_back = rng.permutation(bench.space.decisions[0])[:max(1, bench.space.decisions[0] // 3)]
    npu = rng.lognormal(-1.0, 0.5, x.shape[1])
    cpu = np.where(np.isin(choice_kind, falls_back), rng.uniform(10, 30) * npu + rng.uniform(0.5, 2.0), 0.0)
    clean = {"random_ops": x @ per_choice + per_choice.mean(),
             "roofline": np.maximum(compute, memory) + 0.05,
             "npu_fallback": x @ (npu + cpu) + 0.1}
    return {f"synthetic_{name}": ms * (1 + 0.02 * rng.standard_normal(len(ms))) for name, ms in clean.items()}
