"""Synthetic devices unlike any column of a benchmark table, generated from seeded recipes, for judging whether a
few measurements teach the predictor a device that no meta-training device resembles:

- `random_ops`: every operation type runs at its own random speed: a layer costs its FLOPs times a random
  per-FLOP cost of its operation type, plus a random per-layer overhead of that type (both log-normal), so the
  ranking of operations is unlike any real device's;
- `roofline`: a network takes max(FLOPs / peak, bytes moved / bandwidth) plus an overhead, with the peak and
  the bandwidth drawn so that both compute- and memory-bound networks occur;
- `npu_fallback`: an accelerator runs most operation types cheaply (per FLOP and per layer, at random), but a
  random third of the operation types fall back to a CPU ten to thirty times slower and pay a transfer each time.

Each latency carries 2 % multiplicative noise. The same seed gives the same devices.

`unseen_task` makes an accuracy task unlike the table's, ImageNet16-120-style (more classes, fewer pixels): its
score is the table's cifar100 accuracy, standardised, plus a preference for capacity (log FLOPs) and a random
preference per operation type, plus noise; mapped to top-1 accuracies of about 0-40 %. Its Spearman with
cifar100 is 0.90-0.96 over seeds (NB201's real ImageNet16-120 is closer to cifar100: the synthetic task is the
harder test).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.latency import per_choice

RECIPES = ("random_ops", "roofline", "npu_fallback")
UNSEEN_TASK = "synthetic_imagenet16"  # the task name `bench nas --task` knows for `unseen_task`


def synthetic_devices(bench: Benchmark, seed: int = 0) -> dict[str, np.ndarray]:
    """`synthetic_<recipe>` -> latency (ms) of every architecture of the table, one device per recipe."""
    rng = np.random.default_rng(seed)
    x = bench.encodings().astype(np.float64)
    costs = [bench.space.costs(a) for a in bench.archs]
    flops = np.array([c.flops for c in costs], dtype=float)
    moved = np.array([4 * c.params + 2 * c.peak_activation_bytes for c in costs], dtype=float)
    choice_kind = np.concatenate([np.arange(d) for d in bench.space.decisions])  # the operation type of each choice
    kinds = max(bench.space.decisions)
    choice_flops = per_choice(x, flops)
    per_flop, overhead = rng.lognormal(0.0, 1.0, kinds), rng.lognormal(0.0, 1.0, kinds) / 2
    work = choice_flops / np.median(choice_flops[choice_flops > 0])
    choice_cost = work * per_flop[choice_kind] + overhead[choice_kind]
    compute, memory = flops / np.median(flops), moved / np.median(moved) * rng.lognormal(0.0, 0.5)
    falls_back = rng.permutation(kinds)[:max(1, kinds // 3)]
    npu = work * rng.lognormal(-1.0, 0.5, kinds)[choice_kind] + rng.lognormal(-3.0, 0.5, kinds)[choice_kind]
    cpu = np.where(np.isin(choice_kind, falls_back), rng.uniform(10, 30) * npu + rng.uniform(0.5, 2.0), 0.0)
    clean = {"random_ops": x @ choice_cost + 2 * choice_cost.mean(),
             "roofline": np.maximum(compute, memory) + 0.05,
             "npu_fallback": x @ (npu + cpu) + 0.1}
    return {f"synthetic_{name}": ms * (1 + 0.02 * rng.standard_normal(len(ms))) for name, ms in clean.items()}


def unseen_task(bench: Benchmark, seed: int = 0) -> np.ndarray:
    """Top-1 accuracy (%) of every architecture of the table on a synthetic ImageNet16-120-style task (NaN where
    the table has no cifar100 accuracy), seeded."""
    if "cifar100" not in bench.accuracy:
        raise EdgenasError(f"the synthetic task '{UNSEEN_TASK}' is derived from cifar100 accuracies, which "
                           f"{bench.source}/accuracy.csv lacks; pick --task among: {', '.join(bench.tasks) or 'none'}")
    rng = np.random.default_rng(seed)
    base = bench.accuracy["cifar100"]
    ok = np.isfinite(base)
    x = bench.encodings().astype(np.float64)
    flops = np.array([bench.space.costs(a).flops for a in bench.archs], dtype=float)
    kinds = np.concatenate([np.arange(d) for d in bench.space.decisions])

    def standard(v: np.ndarray) -> np.ndarray:
        return (v - v[ok].mean()) / v[ok].std()

    preference = rng.standard_normal(max(bench.space.decisions))[kinds]
    score = standard(np.where(ok, base, 0.0)) + 0.3 * standard(np.log(flops + 0.01 * np.median(flops))) + \
        0.2 * standard(x @ preference) + 0.1 * rng.standard_normal(len(x))
    return np.where(ok, 47.0 * norm.cdf(standard(score)) ** 2, np.nan)
