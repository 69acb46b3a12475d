"""Meta-training across the devices of a benchmark: the latency predictor, the accuracy prior and task
predictor on a source task, and the generator distilled from them.

An episode samples a device, a support set of a few architectures and a query set; the loss is the error
of the query predictions made from the support set alone, so the model learns to generate a device's
predictor from a few measurements.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..device.profile import PROFILES
from ..errors import EdgenasError
from .benchmark import Benchmark
from .checkpoint import Trained
from .conditioning import column_profile, descriptor_vector, device_descriptors
from .generator import Generator, condition_vector
from .latency import CALIBRATION_SUPPORTS, FLOOR, Z90, LatencyPredictor, per_choice, unit_kernel
from .predictor import AccuracyPrior, TaskPredictor


def train_accuracy_prior(x: np.ndarray, accuracy: np.ndarray, steps: int = 1500, seed: int = 0) -> AccuracyPrior:
    torch.manual_seed(seed)
    model = AccuracyPrior(x.shape[1])
    ok = np.isfinite(accuracy)
    xt = torch.as_tensor(x[ok], dtype=torch.float32)
    y = torch.as_tensor(accuracy[ok], dtype=torch.float32)
    mean, std = y.mean(), y.std()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = torch.mean((model(xt) - (y - mean) / std) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # fold the standardisation into the last layer: outputs are in accuracy units
        last = model.net[-1]
        last.weight.mul_(std)
        last.bias.mul_(std).add_(mean)
    return model.eval()


MIN_MEASURED = 100  # architectures a latency column needs: episodes of up to 50 support and 50 query rows
CAPACITY = "capacity"  # the source task of a table without accuracies: the capacity proxy


def capacity(bench: Benchmark) -> np.ndarray:
    """A table's stand-in for accuracy where it has none: standardised log FLOPs plus standardised log parameters
    (bigger networks of a space tend to be more accurate), in accuracy-like units around 50."""
    z = np.log(_costs(bench)[:, :2])
    return 50 + 5 * ((z - z.mean(0)) / z.std(0)).sum(1)


@dataclass(frozen=True)
class MetaTrainConfig:
    """How long meta-training runs: `steps` optimiser steps for each model, and the situations (`episodes`)
    the generator is distilled from. Tests and quick benchmarks use a small one."""

    steps: int = 1500
    episodes: int = 4000


def default_source_task(bench: Benchmark) -> str:
    """The space's source task where the table has that accuracy column, else the capacity proxy."""
    return bench.space.source_task if bench.space.source_task in bench.accuracy else CAPACITY


def meta_train(bench: Benchmark, devices: list[str], config: MetaTrainConfig = MetaTrainConfig(), seed: int = 0,
               log: Callable[[str], None] | None = None, accuracy_task: str | None = None) -> Trained:
    """Meta-train everything the search uses from a benchmark: the latency predictor on the latency columns
    `devices`, the accuracy prior and the task predictor on the source task `accuracy_task` (a column of the
    table's accuracies, or `CAPACITY`; default: `default_source_task`), and the generator distilled from both, as
    long as `config` says."""
    accuracy_task = accuracy_task or default_source_task(bench)
    if accuracy_task not in bench.accuracy and accuracy_task != CAPACITY:
        raise EdgenasError(f"source task '{accuracy_task}' is not a column of {bench.source}/accuracy.csv; pass "
                           f"--accuracy-task with one of: {', '.join([*bench.tasks, CAPACITY])}")
    log = log or (lambda _: None)
    steps = config.steps
    _check_devices(bench, devices)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = bench.encodings()
    log("latency predictor")
    model = train_latency_predictor(bench.space.decisions, x, _costs(bench), bench.latency, devices, steps, rng, log)
    source = bench.accuracy[accuracy_task] if accuracy_task != CAPACITY else capacity(bench)
    log(f"accuracy prior and task predictor ({accuracy_task})")
    prior = train_accuracy_prior(x, source, seed=seed)
    task = train_task_predictor(x, source, steps, rng, log)
    log("generator")
    memory = np.array([bench.space.costs(a).memory_mb for a in bench.archs])
    generator = train_generator(bench.space.decisions, x, bench.latency, devices, source, memory, model, task, steps,
                                rng, log, episodes=config.episodes)
    return Trained(model.eval(), list(devices), bench.space.name, prior, accuracy_task, task, generator)


def meta_train_latency(bench: Benchmark, devices: list[str], config: MetaTrainConfig = MetaTrainConfig(),
                       seed: int = 0, log: Callable[[str], None] = lambda _: None) -> LatencyPredictor:
    """Meta-train the latency predictor alone on the latency columns `devices` (what `bench latency` scores):
    the same model `meta_train` makes with the same seed."""
    _check_devices(bench, devices)
    torch.manual_seed(seed)
    log("latency predictor")
    return train_latency_predictor(bench.space.decisions, bench.encodings(), _costs(bench), bench.latency, devices,
                                   config.steps, np.random.default_rng(seed), log)


def _costs(bench: Benchmark) -> np.ndarray:
    """FLOPs, parameters and peak activation bytes (`latency.COSTS`) of every architecture of the table (rows)."""
    return np.array([(c.flops, c.params, c.peak_activation_bytes) for c in map(bench.space.costs, bench.archs)],
                    dtype=float)


def _check_devices(bench: Benchmark, devices: list[str]) -> None:
    unknown = [d for d in devices if d not in bench.latency]
    if unknown:
        raise EdgenasError(f"device '{unknown[0]}' is not a column of {bench.source}/latency_ms.csv; known: "
                           f"{', '.join(bench.devices)}")
    if len(devices) < 2:
        raise EdgenasError("meta-training needs at least 2 devices; pass more with --devices")


def train_latency_predictor(decisions: tuple[int, ...], x: np.ndarray, costs: np.ndarray,
                            latency: dict[str, np.ndarray], devices: list[str], steps: int, rng: np.random.Generator,
                            log: Callable[[str], None], batch: int = 16, max_support: int = 50,
                            queries: int = 256) -> LatencyPredictor:
    """Fit the basis network on the meta-training columns, then meta-train the hypernetwork on episodes: a device
    (its own column, and a quarter of the time every column of its family, hidden from the head, so that it learns to
    predict devices unlike its basis; its descriptors hidden 30 % of the time), a support set of 0..max_support
    architectures (small ones more often), a query set to predict. Loss: Gaussian negative log-likelihood of the
    query latencies plus a pairwise ranking loss. Finally the interval widths are calibrated."""
    model = LatencyPredictor(list(decisions), list(devices))
    desc = np.stack([device_descriptors(d) for d in devices])
    model.descriptors.fit(desc)
    model.column_descriptors.copy_(torch.as_tensor(desc))
    table = np.stack([latency[d] for d in devices], 1)
    _fit_choice_costs(model, x, costs)
    log("  basis: the meta-training devices' latencies as functions of the architecture")
    _fit_basis(model, x, table, steps, log)
    log("  costs: FLOPs, parameters and peak activations as functions of the architecture")
    _fit_costs(model, x, costs, steps, log)
    loo_units = fit_unit(model, desc, table)
    with torch.no_grad():
        phi = model.features(torch.as_tensor(x))
    family = [_family(d) for d in devices]
    hidden = [[j] + ([i for i, f in enumerate(family) if f == family[j] and i != j]
                     if sum(f != family[j] for f in family) else []) for j in range(len(devices))]
    without_profile = descriptor_vector(None)
    valid = [np.flatnonzero(np.isfinite(table[:, j])) for j in range(len(devices))]
    fewest = min(len(v) for v in valid)  # a column measured on few architectures: smaller episodes for all
    if fewest < MIN_MEASURED:
        raise EdgenasError(f"device '{devices[int(np.argmin([len(v) for v in valid]))]}' has latencies for only "
                           f"{fewest} architectures; meta-training needs {MIN_MEASURED} per device, measure more")
    queries = min(queries, fewest // 2)
    max_support = min(max_support, fewest - queries)
    params = [p for name, p in model.named_parameters() if not name.startswith(("basis.", "cost_net."))]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    start = time.perf_counter()
    for step in range(steps):
        model.train()
        dev = rng.integers(len(devices), size=batch)
        k = int(np.exp(rng.uniform(0, np.log(max_support + 2)))) - 1
        masked = [hidden[j] if rng.random() < 0.25 else [j] for j in dev]
        d = desc[dev].copy()
        d[rng.random(batch) < 0.3] = without_profile
        s, q, sy, qy = _episode(rng, valid, table, dev, k, queries)
        unit = sy.mean(1, keepdims=True) if k else qy.mean(1, keepdims=True)
        qy_t = torch.as_tensor(qy / unit, dtype=torch.float32)
        mean, std = model(torch.as_tensor(d), model.column_mask(batch, masked), phi[s],
                          torch.as_tensor(sy / unit, dtype=torch.float32), phi[q])
        nll = torch.mean(0.5 * ((qy_t - mean) / std) ** 2 + torch.log(std))
        i, j = rng.integers(queries, size=(2, queries))
        rank = nn.functional.binary_cross_entropy_with_logits((mean[:, i] - mean[:, j]) / 0.05,
                                                              (qy_t[:, i] > qy_t[:, j]).float())
        _step(opt, sched, model, nll + 0.5 * rank)
        if step % 250 == 0 or step == steps - 1:
            log(f"  step {step:5d}/{steps}  nll {nll.item():.4f}  rank {rank.item():.4f}  "
                f"{time.perf_counter() - start:.0f} s")
    _calibrate(model.eval(), phi, table, desc, loo_units, valid, rng)
    log("  interval calibration: " + ", ".join(f"K={k} x{c:.2f}" for k, c in
                                                zip(CALIBRATION_SUPPORTS, model.calibration.tolist())))
    return model


def _episode(rng: np.random.Generator, valid: list[np.ndarray], table: np.ndarray, dev: np.ndarray, k: int,
             queries: int) -> tuple[np.ndarray, ...]:
    """For each device (column) of `dev`, `k` support and `queries` query rows among its measured ones: the rows
    (B, k), (B, queries) and their latencies."""
    s, q = zip(*(np.split(rng.choice(valid[j], size=k + queries, replace=False), [k]) for j in dev))
    s, q = np.stack(s).astype(int), np.stack(q).astype(int)
    return s, q, table[s, dev[:, None]], table[q, dev[:, None]]


def _family(device: str) -> str:
    """The kind of device a benchmark column is (its profile's), the name's stem without a profile."""
    profile = column_profile(device)
    return PROFILES.get(profile).kind if profile in PROFILES.names() else device.split("_")[0]


def _fit_choice_costs(model: LatencyPredictor, x: np.ndarray, costs: np.ndarray) -> None:
    """FLOPs and parameters of each choice (least squares of the networks' costs, the first two columns of
    `costs`, on the one-hots), in units of the median network's."""
    for buffer, total in zip((model.choice_flops, model.choice_params), (costs[:, 0], costs[:, 1])):
        buffer.copy_(torch.as_tensor(per_choice(x, total) / np.median(total), dtype=torch.float32))


def _fit_basis(model: LatencyPredictor, x: np.ndarray, table: np.ndarray, steps: int,
               log: Callable[[str], None]) -> None:
    """The basis network: each meta-training column's latency, relative to its mean over the table."""
    _fit_relative(model.basis, model.basis_scale, model.basis_offset, x, np.log(table), steps, log, "log-latency")


def _fit_costs(model: LatencyPredictor, x: np.ndarray, costs: np.ndarray, steps: int,
               log: Callable[[str], None]) -> None:
    """The cost network: each of `COSTS` (columns of `costs`), relative to its mean over the table."""
    _fit_relative(model.cost_net, model.cost_scale, model.cost_offset, x, np.log(np.maximum(costs, 1.0)), steps,
                  log, "log-cost")


def _fit_relative(net: nn.Module, scale: torch.Tensor, offset: torch.Tensor, x: np.ndarray, logs: np.ndarray,
                  steps: int, log: Callable[[str], None], what: str, batch: int = 4096) -> None:
    """`net` regresses each column of `logs` (NaN where unmeasured), standardised; `scale` and `offset` are then
    set so that exp(net(x) * scale + offset) averages 1 over the table in each column."""
    mean, std = np.nanmean(logs, 0), np.nanstd(logs, 0) + 1e-9
    target = torch.as_tensor(np.nan_to_num((logs - mean) / std), dtype=torch.float32)
    present = torch.as_tensor(np.isfinite(logs), dtype=torch.float32)
    xt = torch.as_tensor(x)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    generator = torch.Generator().manual_seed(0)
    for step in range(steps):
        rows = torch.randint(len(x), (min(batch, len(x)),), generator=generator)
        loss = torch.sum((net(xt[rows]) - target[rows]) ** 2 * present[rows]) / present[rows].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            log(f"  step {step:5d}/{steps}  mse {loss.item():.5f} (standardised {what})")
    with torch.no_grad():
        out = net(xt) * torch.as_tensor(std, dtype=torch.float32)
        scale.copy_(torch.as_tensor(std, dtype=torch.float32))
        offset.copy_(-torch.log(torch.exp(out).mean(0)))


UNIT_LENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0)  # the residual kernel's length scales to choose among
UNIT_NOISE_SHARES = (0.05, 0.1, 0.25, 0.5)  # and the share of the ridge's error that no device explains


def fit_unit(model: LatencyPredictor, desc: np.ndarray, table: np.ndarray,
              alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The zero-shot unit from each device's unit features (`desc`, rows) to its log mean latency: a ridge fit,
    and a Gaussian process on the ridge's leave-one-device-out residuals whose prior variance is the ridge's
    mean squared error (so a device unlike every basis device keeps the ridge's error), its length and noise share
    chosen by the leave-one-device-out likelihood. Returns each device's left-out prediction of its log unit and
    that prediction's standard deviation (what `_calibrate` scales)."""
    u = model._unit_features(torch.as_tensor(desc)).double().numpy()
    y = np.log(np.nanmean(table, 0))
    penalty = alpha * np.diag(np.r_[np.ones(u.shape[1] - 1), 0.0])

    def ridge(rows: np.ndarray) -> np.ndarray:
        return np.linalg.solve(u[rows].T @ u[rows] + penalty, u[rows].T @ y[rows])

    everything = np.arange(len(y))
    left_out = np.array([u[j] @ ridge(everything[everything != j]) for j in everything])
    residual = y - left_out
    error2 = float(np.mean(residual ** 2))
    best = None
    for length, share in itertools.product(UNIT_LENGTHS, UNIT_NOISE_SHARES):
        kernel = np.array([length, np.sqrt(error2 * (1 - share)), np.sqrt(error2 * share)])
        inverse = np.linalg.inv(unit_kernel(u, u, kernel) + kernel[2] ** 2 * np.eye(len(y)))
        weights = inverse @ residual
        loo_sigma = 1 / np.sqrt(np.diag(inverse))
        loo_error = weights * loo_sigma ** 2  # the residual minus its prediction from the other devices
        likelihood = np.sum(-0.5 * (loo_error / loo_sigma) ** 2 - np.log(loo_sigma))
        if best is None or likelihood > best[0]:
            best = (likelihood, kernel, inverse, weights, y - loo_error, loo_sigma)
    _, kernel, inverse, weights, loo, loo_sigma = best
    model.unit_weights.copy_(torch.as_tensor(ridge(everything)))
    model.unit_kernel.copy_(torch.as_tensor(kernel))
    model.unit_alpha.copy_(torch.as_tensor(weights))
    model.unit_inverse.copy_(torch.as_tensor(inverse))
    model.unit_spread.fill_(float(y.std()))
    return loo, loo_sigma


@torch.no_grad()
def _calibrate(model: LatencyPredictor, phi: torch.Tensor, table: np.ndarray, desc: np.ndarray,
               loo_units: tuple[np.ndarray, np.ndarray], valid: list[np.ndarray], rng: np.random.Generator,
               episodes: int = 8, queries: int = 512) -> None:
    """Scale the interval at each K of CALIBRATION_SUPPORTS so that 90 % of true latencies fall inside it, on
    every meta-training device with its own column hidden (as a new device); at K = 0 the zero-shot unit and its
    uncertainty are the ones predicted with the device left out (`loo_units`: log units and their std)."""
    loo_log_units, loo_sigmas = loo_units
    dev = np.repeat(np.arange(table.shape[1]), episodes)
    mask = model.column_mask(len(dev), [[j] for j in dev])
    queries = min(queries, min(len(v) for v in valid) - max(CALIBRATION_SUPPORTS))
    for c, k in enumerate(CALIBRATION_SUPPORTS):
        s, q, sy, qy = _episode(rng, valid, table, dev, k, queries)
        unit = sy.mean(1, keepdims=True) if k else np.exp(loo_log_units[dev])[:, None]
        mean, std = model(torch.as_tensor(desc[dev]), mask, phi[s], torch.as_tensor(sy / unit, dtype=torch.float32),
                          phi[q])
        mean, std = mean.double().numpy(), std.double().numpy()
        if k:
            z = np.abs(qy / unit - mean) / std
        else:
            positive = np.maximum(mean, FLOOR)
            z = np.abs(np.log(qy / unit / positive)) / model.zero_shot_spread(mean, std, loo_sigmas[dev][:, None])
        model.calibration[c] = float(np.quantile(z, 0.9) / Z90)


def synthetic_tasks(source: np.ndarray, x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` tasks (rows) related to the source task as real tasks are: a random monotone transform of the
    source accuracy, plus per-operation preferences of the task, plus noise; in units of the source task's
    spread around its mean. Architectures without a source accuracy get NaN."""
    ok = np.isfinite(source)
    u = np.where(ok, (source - np.nanmin(source)) / (np.nanmax(source) - np.nanmin(source)), 0.0)
    g = u[None, :] ** np.exp(rng.normal(0, 0.5, (n, 1)))
    g = (g - g[:, ok].mean(1, keepdims=True)) / (g[:, ok].std(1, keepdims=True) + 1e-9) * rng.uniform(0.6, 1.4, (n, 1))
    preference = rng.normal(0, 1, (n, x.shape[1])) * rng.uniform(0, 0.15, (n, 1))
    noise = rng.normal(0, 1, (n, len(x))) * rng.uniform(0.02, 0.2, (n, 1))
    return np.where(ok, g + preference @ x.T + noise, np.nan).astype(np.float32)


def _support_sets(rng: np.random.Generator, best: np.ndarray, pool: np.ndarray, n: int, k: int,
                  replace: bool = False) -> np.ndarray:
    """`n` sets of `k` architectures (rows), drawn as the search draws them: half among the best by the
    source task, half anywhere."""
    return np.stack([np.r_[rng.choice(best, k - k // 2, replace=replace), rng.choice(pool, k // 2, replace=replace)]
                     for _ in range(n)]).astype(int).reshape(n, k)


def train_task_predictor(x: np.ndarray, source: np.ndarray, steps: int, rng: np.random.Generator,
                         log: Callable[[str], None], batch: int = 16, max_support: int = 12,
                         queries: int = 256, tasks: int = 512) -> TaskPredictor:
    """Episodes: a synthetic task, a support set of 0..max_support architectures and a query set, both
    weighted towards the best architectures by the source task, as the search's are."""
    ok = np.flatnonzero(np.isfinite(source))
    z = np.zeros(len(x), np.float32)
    z[ok] = (source[ok] - source[ok].mean()) / source[ok].std()
    best = ok[np.argsort(-source[ok])[:max(len(ok) // 5, 1)]]
    bank = synthetic_tasks(source, x, rng, tasks)
    model = TaskPredictor(x.shape[1])
    xt, zt = torch.as_tensor(x), torch.as_tensor(z)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    for step in range(steps):
        model.train()
        k = int(rng.integers(0, max_support + 1))
        y = bank[rng.integers(tasks, size=batch)]
        s = _support_sets(rng, best, ok, batch, k)
        q = _support_sets(rng, best, ok, batch, queries, replace=True)
        sy, qy = np.take_along_axis(y, s, 1), np.take_along_axis(y, q, 1)
        offset = sy.mean(1, keepdims=True) if k else 0.0
        sy_t = torch.as_tensor(sy - offset)
        pred = model(zt[s], xt[s], sy_t, torch.ones_like(sy_t, dtype=torch.bool), zt[q], xt[q])
        loss = torch.mean((pred - torch.as_tensor(qy - offset)) ** 2)
        _step(opt, sched, model, loss)
        if step % 250 == 0 or step == steps - 1:
            log(f"  step {step:5d}/{steps}  loss {loss.item():.5f}")
    return model.eval()


def train_generator(decisions: tuple[int, ...], x: np.ndarray, latency: dict[str, np.ndarray], devices: list[str],
                    source: np.ndarray, memory: np.ndarray, model: LatencyPredictor, task: TaskPredictor,
                    steps: int, rng: np.random.Generator, log: Callable[[str], None], episodes: int = 4000,
                    chunk: int = 100, top: int = 16, batch: int = 256) -> Generator:
    """Distillation: in random situations (a meta-training device with a support set, a synthetic task with
    a support set, a latency budget between the 3rd and 97th percentile of the predicted latencies, a memory
    budget or none), the predictors rank the architectures that fit; the generator learns to propose the
    best `top` of them, the better ranked with more weight."""
    ok = np.flatnonzero(np.isfinite(source))
    best = ok[np.argsort(-source[ok])[:max(len(ok) // 5, 1)]]
    z = np.zeros(len(x), np.float32)
    z[ok] = (source[ok] - source[ok].mean()) / source[ok].std()
    bank = synthetic_tasks(source, x, rng, 512)
    desc = torch.as_tensor(np.stack([device_descriptors(d) for d in devices]))
    lat = np.stack([latency[d] for d in devices])
    xt, zt = torch.as_tensor(x), torch.as_tensor(z)
    conditions, targets = [], []
    with torch.no_grad():
        lat_features = model.features(xt)
        task_features = task.features(zt, xt)
        for _ in range(episodes // chunk):
            dev = rng.integers(len(devices), size=chunk)
            k = int(rng.integers(3, 21))
            s = np.stack([rng.choice(np.flatnonzero(np.isfinite(lat[d])), k, replace=False) for d in dev])
            sy = np.take_along_axis(lat[dev], s, 1)
            sy = torch.as_tensor(sy / sy.mean(1, keepdims=True), dtype=torch.float32)
            mask = model.column_mask(chunk, [[d] for d in dev])  # each device as a new one: its column hidden
            _, _, lat_heads = model.distribution(desc[dev], mask, lat_features[s], sy, lat_features[:0][None]
                                                 .expand(chunk, 0, -1))
            kt = int(rng.integers(0, 11))
            t = _support_sets(rng, best, ok, chunk, kt)
            ty = np.take_along_axis(bank[rng.integers(len(bank), size=chunk)], t, 1)
            ty = torch.as_tensor(ty - (ty.mean(1, keepdims=True) if kt else 0.0))
            task_heads, _ = task.posterior(zt[t], xt[t], ty, torch.ones_like(ty, dtype=torch.bool))
            predicted = (lat_features @ lat_heads.T).numpy().T  # (chunk, N) relative latencies
            accuracy = (task_features @ task_heads.T).numpy().T
            for j in range(chunk):
                budget = float(np.percentile(predicted[j], rng.uniform(3, 97)))
                memory_mb = float(np.percentile(memory, rng.uniform(10, 100))) if rng.random() < 0.3 else None
                fits = np.flatnonzero((predicted[j] <= budget) & (memory <= (memory_mb or np.inf)) & np.isfinite(z))
                if not len(fits):
                    continue
                conditions.append(condition_vector(lat_heads[j].numpy(), task_heads[j].numpy(), budget, memory_mb))
                targets.append(fits[np.argsort(-accuracy[j, fits])[:top]])
    cond = np.stack(conditions)
    generator = Generator(decisions, cond.shape[1])
    generator.fit_normalisation(cond)
    pairs = np.array([(e, a, np.exp(-r / 4.0)) for e, best_e in enumerate(targets) for r, a in enumerate(best_e)])
    opt = torch.optim.AdamW(generator.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    cond_t = torch.as_tensor(cond)
    for step in range(steps):
        generator.train()
        rows = pairs[rng.integers(len(pairs), size=batch)]
        e, a, w = rows[:, 0].astype(int), rows[:, 1].astype(int), torch.as_tensor(rows[:, 2], dtype=torch.float32)
        loss = -(generator.log_prob(cond_t[e], xt[a]) * w).sum() / w.sum()
        _step(opt, sched, generator, loss)
        if step % 250 == 0 or step == steps - 1:
            log(f"  step {step:5d}/{steps}  nll {loss.item():.4f}")
    return generator.eval()


def _step(opt: torch.optim.Optimizer, sched, model: torch.nn.Module, loss: torch.Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
