"""`edgenas bench latency`: few-shot latency prediction on held-out devices, Spearman over every architecture
of the table, with baselines on the same support sets."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.conditioning import device_descriptors
from ..nas.metatrain import MetaTrainConfig
from .harness import Oracle, latency_predictor_for, ridge, spearman


def bench_latency(bench: Benchmark, devices: list[str], support: int = 10, seeds: int = 5,
                  meta_train_devices: list[str] | None = None, meta_training: MetaTrainConfig = MetaTrainConfig(),
                  log: Callable[[str], None] = lambda _: None) -> dict:
    """Spearman rank correlation of predicted vs true latency over every architecture of each held-out
    device, from `support` oracle queries, mean over seeds; with baselines on the same support sets. Where
    the shipped checkpoint may not be used, only the latency predictor is meta-trained (what is scored)."""
    for d in devices:
        if d not in bench.latency:
            raise EdgenasError(f"device '{d}' is not a column of {bench.source}/latency_ms.csv; known: "
                               f"{', '.join(bench.devices)}")
    allowed = meta_train_devices or bench.devices
    x = bench.encodings()
    flops = np.array([bench.space.costs(a).flops for a in bench.archs], dtype=float)
    result = {"support": support, "seeds": seeds, "devices": {}}
    for d in devices:
        model, trained_on, seconds = latency_predictor_for(bench, d, allowed, log, meta_training)
        truth = bench.latency[d]
        table = np.log(np.stack([bench.latency[o] for o in trained_on if o != d], 1))
        flops_rho = spearman(flops, truth)  # needs no support set: the same every seed
        rows = {"edgenas": [], "flops": [], "ridge_onehot": [], "linear_combination": []}
        for seed in range(seeds):
            oracle = Oracle(truth, support, d)
            picks = np.random.default_rng(seed).choice(len(x), size=support, replace=False)
            measured = np.array([oracle(i) for i in picks])
            pred = model.predict(device_descriptors(d), x[picks], measured, x)
            rows["edgenas"].append(spearman(pred, truth))
            rows["flops"].append(flops_rho)
            rows["ridge_onehot"].append(spearman(ridge(x, picks, measured, alpha=1.0), truth))
            rows["linear_combination"].append(spearman(ridge(table, picks, np.log(measured), alpha=1.0), truth))
        entry = {"spearman": float(np.mean(rows["edgenas"])), "per_seed": rows["edgenas"],
                 "meta_train_devices": trained_on, "meta_train_seconds": round(seconds, 1),
                 "baselines": {k: float(np.mean(v)) for k, v in rows.items() if k != "edgenas"}}
        result["devices"][d] = entry
        log(f"{d}: spearman {entry['spearman']:.4f}")
    result["mean_spearman"] = float(np.mean([e["spearman"] for e in result["devices"].values()]))
    result["mean_baselines"] = {k: float(np.mean([e["baselines"][k] for e in result["devices"].values()]))
                                for k in ("flops", "ridge_onehot", "linear_combination")}
    return result




def table(result: dict) -> str:
    """`bench_latency`'s result as the table the CLI prints."""
    lines = [f"Spearman, K={result['support']} support measurements, mean over {result['seeds']} seeds",
             f"{'device':<16} {'edgenas':>8} {'FLOPs':>8} {'ridge':>8} {'lin.comb':>9}"]
    rows = list(result["devices"].items()) + [("mean", {"spearman": result["mean_spearman"],
                                                        "baselines": result["mean_baselines"]})]
    for name, e in rows:
        b = e["baselines"]
        lines.append(f"{name:<16} {e['spearman']:8.4f} {b['flops']:8.4f} {b['ridge_onehot']:8.4f} "
                     f"{b['linear_combination']:9.4f}")
    return "\n".join(lines)
