"""`edgenas bench latency`: few-shot latency prediction on held-out devices, as the benchmark's README defines it:
Spearman between predicted and true latency over every architecture of the table (for a column edgenas measured
itself, `--store`, over the architectures it measured), for each number K of support measurements, mean over
support seeds and, where edgenas meta-trains, over meta-training seeds; with baselines on the same support sets,
in the same run.

By default the held-out devices are the validation devices of the space's reference split and meta-training
uses its meta-training devices; given devices are held out of meta-training one at a time (leave-one-out).
Baselines: FLOPs (needs no support), ridge regression on the encoding, a linear combination of the
meta-training devices' log-latencies (ridge, its regulariser chosen per K on the split's validation devices),
and the nearest device (the meta-training column whose latencies rank the support set most alike).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import EdgenasError
from ..nas.benchmark import Benchmark
from ..nas.conditioning import descriptor_vector, device_descriptors
from ..nas.metatrain import MetaTrainConfig
from .harness import Oracle, latency_predictor_for, ridge, spearman
from .synthetic import synthetic_devices

SUPPORTS = (0, 3, 5, 10, 20, 50)
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)  # the linear combination's regularisers, chosen on validation devices
BASELINES = ("flops", "ridge_onehot", "linear_combination", "nearest_device")
ABLATIONS = ("zeroed_set_encoder", "zeroed_descriptors", "no_support_update")


def bench_latency(bench: Benchmark, devices: list[str] | None = None, supports: tuple[int, ...] = SUPPORTS,
                  seeds: int = 5, meta_seeds: int = 3, meta_train_devices: list[str] | None = None,
                  meta_training: MetaTrainConfig = MetaTrainConfig(), synthetic: bool = True, synthetic_seed: int = 0,
                  log: Callable[[str], None] = lambda _: None) -> dict:
    """Spearman of predicted vs true latency on each held-out device for each K in `supports` (mean over
    `seeds` support sets, and over `meta_seeds` meta-trainings where edgenas meta-trains), with the baselines;
    with `synthetic`, the same on the devices of `synthetic.RECIPES` (seeded by `synthetic_seed`). Only the
    latency predictor is meta-trained (what is scored)."""
    split = bench.space.reference_split
    devices = list(devices or split.get("validation", ()))
    allowed = list(meta_train_devices or split.get("meta_train", ()) or bench.devices)
    validation = [d for d in split.get("validation", ()) if d in bench.latency] or devices
    if not devices:
        raise EdgenasError(f"space '{bench.space.name}' has no reference split; name the held-out devices with "
                           f"--devices")
    for d in dict.fromkeys([*devices, *allowed, *validation]):
        if d not in bench.latency:
            raise EdgenasError(f"device '{d}' is not a column of {bench.source}/latency_ms.csv; known: "
                               f"{', '.join(bench.devices)}")
    if any(not 0 <= k <= len(bench.archs) for k in supports):
        raise EdgenasError(f"--support takes numbers of measurements between 0 and {len(bench.archs)}")
    x = bench.encodings()
    flops = np.array([bench.space.costs(a).flops for a in bench.archs], dtype=float)
    scored = list(dict.fromkeys([*devices, *validation]))  # validation devices also choose the regulariser
    models: dict[tuple[tuple[str, ...], int], tuple] = {}
    took = {"seconds": 0.0, "shipped": False}

    def score(name: str, truth: np.ndarray) -> dict[int, dict]:
        """Every K on one held-out device: with the models of each meta-training seed (or the shipped one),
        trained on the allowed devices but this one (a synthetic device is none of them)."""
        trained = []
        for m in range(meta_seeds):
            key = (tuple(a for a in allowed if a != name), m)
            if key not in models:
                models[key] = latency_predictor_for(bench, name, allowed, log, meta_training, seed=m)
                took["seconds"] += models[key][2]
            model, trained_on, seconds = models[key]
            trained.append(model)
            if seconds == 0.0:  # the shipped checkpoint: one model, no meta-training seeds to vary
                took["shipped"] = True
                break
        known = np.isfinite(truth)  # all of the table's; of a column edgenas measured itself, what it measured
        if max(supports) >= known.sum():
            raise EdgenasError(f"device '{name}' has latencies for {known.sum()} architectures; --support takes at "
                               f"most {known.sum() - 1} of them (the rest are scored)")
        table = np.log(np.stack([bench.latency[o][known] for o in trained_on if o != name], 1))
        table = table[:, np.isfinite(table).all(0)]  # the baselines read the columns known on all those rows
        row = {k: _score(x[known], flops[known], truth[known], device_descriptors(name), table, trained, k, seeds, name)
               for k in supports}
        log(f"{name}: " + ", ".join(f"K={k} {np.mean(row[k]['edgenas']):.4f}" for k in supports))
        return row

    rows = {d: score(d, bench.latency[d]) for d in scored}
    synthetic_rows = {name: score(name, truth)
                      for name, truth in (synthetic_devices(bench, synthetic_seed).items() if synthetic else ())}
    by_support, by_synthetic = {}, {name: {} for name in synthetic_rows}
    for k in supports:
        alpha = ALPHAS[0] if k < 2 else max(ALPHAS, key=lambda a: np.mean(
            [np.mean(rows[d][k]["linear_combination"][a]) for d in validation]))
        per_device = {d: _summary(rows[d][k], alpha) for d in devices}
        means = np.mean([np.mean(np.array(rows[d][k]["edgenas"]), axis=0) for d in devices], axis=0)
        by_support[str(k)] = {
            "edgenas": float(means.mean()), "edgenas_std": float(means.std()), "devices": per_device,
            "baselines": {b: _mean([per_device[d]["baselines"][b] for d in devices]) for b in BASELINES},
            "coverage_90": float(np.mean([per_device[d]["coverage_90"] for d in devices])),
            "ablations": {a: float(np.mean([per_device[d]["ablations"][a] for d in devices])) for a in ABLATIONS},
            "linear_combination_alpha": alpha if k >= 2 else None}
        for name, r in synthetic_rows.items():
            by_synthetic[name][str(k)] = _summary(r[k], alpha)
    reference = bool(split) and devices == list(split["validation"]) and allowed == list(split["meta_train"])
    return {"space": bench.space.name, "split": "reference" if reference else "given",
            "devices": devices, "meta_train_devices": allowed, "validation_devices": validation,
            "supports": list(supports), "seeds": seeds, "meta_seeds": 1 if took["shipped"] else meta_seeds,
            "shipped_checkpoint": took["shipped"], "meta_train_seconds": round(took["seconds"], 1),
            "by_support": by_support,
            "synthetic_seed": synthetic_seed if synthetic else None, "synthetic": by_synthetic}


def _summary(r: dict, alpha: float) -> dict:
    """One device at one K: edgenas mean and std over meta-training seeds, the coverage of its 90 % interval, each
    baseline's mean and each ablation's."""
    per_meta = np.mean(np.array(r["edgenas"]), axis=0)  # mean over support seeds, per meta-training seed
    base = {"flops": r["flops"], "ridge_onehot": r["ridge_onehot"],
            "linear_combination": r["linear_combination"][alpha], "nearest_device": r["nearest_device"]}
    return {"edgenas": float(per_meta.mean()), "edgenas_std": float(per_meta.std()),
            "coverage_90": float(np.mean(r["coverage"])),
            "baselines": {b: _mean(v) for b, v in base.items()},
            "ablations": {a: float(np.mean(r[a])) for a in ABLATIONS}}


def _score(x: np.ndarray, flops: np.ndarray, truth: np.ndarray, descriptors: np.ndarray, table: np.ndarray,
           models: list, k: int, seeds: int, d: str) -> dict:
    """Spearman of edgenas (per support seed, per model) and of each baseline (per support seed) for K = k on the
    device `d` whose true latencies are `truth`; `table` holds the meta-training devices' log-latencies."""
    out = {"edgenas": [], "flops": [], "ridge_onehot": [], "linear_combination": {a: [] for a in ALPHAS},
           "nearest_device": [], "coverage": [], **{a: [] for a in ABLATIONS}}
    flops_rho = spearman(flops, truth)  # needs no support set: the same every seed
    # without the support update the head is the generated prior: its ranking is K = 0's whatever K is
    prior = [spearman(m.predict(descriptors, x[:0], np.zeros(0), x).ms, truth) for m in models]
    unread = [m.without_set_encoder() for m in models]
    for seed in range(seeds):
        oracle = Oracle(truth, k, d)
        picks = np.random.default_rng(seed).choice(len(x), size=k, replace=False)
        measured = np.array([oracle(i) for i in picks])
        predictions = [m.predict(descriptors, x[picks], measured, x) for m in models]
        out["edgenas"].append([spearman(p.ms, truth) for p in predictions])
        out["coverage"].append([float(np.mean((truth >= p.low) & (truth <= p.high))) for p in predictions])
        out["zeroed_set_encoder"].append([spearman(m.predict(descriptors, x[picks], measured, x).ms, truth)
                                          for m in unread])
        out["zeroed_descriptors"].append([spearman(m.predict(descriptor_vector(None), x[picks], measured, x).ms,
                                                   truth) for m in models])
        out["no_support_update"].append(prior)
        out["flops"].append(flops_rho)
        few = k < 2  # a regression or a ranking needs two measurements
        out["ridge_onehot"].append(np.nan if few else spearman(ridge(x, picks, measured, alpha=1.0), truth))
        for a in ALPHAS:
            out["linear_combination"][a].append(np.nan if few else spearman(ridge(table, picks, np.log(measured), a),
                                                                            truth))
        if few:
            out["nearest_device"].append(np.nan)
        else:
            nearest = max(range(table.shape[1]), key=lambda j: _rank_agreement(table[picks, j], measured))
            out["nearest_device"].append(spearman(table[:, nearest], truth))
    return out


def _rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    rho = spearman(a, b)
    return -np.inf if np.isnan(rho) else rho


def _mean(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return None if np.isnan(values).all() else float(np.nanmean(values))


def table(result: dict) -> str:
    """`bench_latency`'s result as the tables the CLI prints: the K-sweep of the means over the held-out devices,
    then each device (the synthetic ones last) at each K."""
    fmt = lambda v: "     -" if v is None else f"{v:6.4f}"  # noqa: E731
    source = "the shipped checkpoint" if result["shipped_checkpoint"] else \
        f"{result['meta_seeds']} meta-training seeds, {result['meta_train_seconds']:.0f} s of meta-training"
    lines = [f"Spearman over all architectures of {result['space']}, {result['split']} split: held out "
             f"{', '.join(result['devices'])}; meta-trained on {', '.join(result['meta_train_devices'])} "
             f"({source}); mean over {result['seeds']} support seeds",
             f"{'K':>3}  {'edgenas':>15}  {'FLOPs':>6}  {'ridge':>6}  {'lin.comb':>8}  {'nearest':>7}  "
             f"{'90% cover':>9}"]
    for k, r in result["by_support"].items():
        b = r["baselines"]
        lines.append(f"{k:>3}  {r['edgenas']:7.4f} ± {r['edgenas_std']:5.4f}  {fmt(b['flops'])}  "
                     f"{fmt(b['ridge_onehot'])}  {fmt(b['linear_combination']):>8}  {fmt(b['nearest_device']):>7}  "
                     f"{r['coverage_90']:9.3f}")
    lines.append("ablations (same runs): the full model; its set encoder reading no pairs; the profile's "
                 "descriptors masked; no support update (the generated prior alone)")
    lines.append(f"{'K':>3}  {'full':>7}  {'-set enc':>8}  {'-descr':>7}  {'-update':>7}")
    for k, r in result["by_support"].items():
        a = r["ablations"]
        lines.append(f"{k:>3}  {r['edgenas']:7.4f}  {a['zeroed_set_encoder']:8.4f}  {a['zeroed_descriptors']:7.4f}  "
                     f"{a['no_support_update']:7.4f}")
    lines.append(f"{'device':<22} {'K':>3}  {'edgenas':>15}  {'FLOPs':>6}  {'ridge':>6}  {'lin.comb':>8}  "
                 f"{'nearest':>7}")
    rows = [(d, k, e) for k, r in result["by_support"].items() for d, e in r["devices"].items()]
    rows += [(name, k, e) for name, by_k in result["synthetic"].items() for k, e in by_k.items()]
    for d, k, e in rows:
        b = e["baselines"]
        lines.append(f"{d:<22} {k:>3}  {e['edgenas']:7.4f} ± {e['edgenas_std']:5.4f}  {fmt(b['flops'])}  "
                     f"{fmt(b['ridge_onehot'])}  {fmt(b['linear_combination']):>8}  {fmt(b['nearest_device']):>7}")
    return "\n".join(lines)
