"""Meta-training of the latency predictor across devices of a benchmark, and its checkpoint format.

An episode samples a device, a support set of 0..20 architectures and a query set; the loss is the error
of the query predictions made from the support set alone, so the model learns to generate a device's
predictor from a few measurements. Checkpoints are plain tensors and metadata: they load with
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .benchmark import Benchmark
from .conditioning import descriptor_vector
from .errors import EdgenasError
from .predictor import LatencyPredictor
from .profile import PROFILES

SHIPPED = Path(__file__).resolve().parent / "checkpoints" / "nb201.pt"


class AccuracyPrior(torch.nn.Module):
    """Expected accuracy of an architecture on the source task, learned from its table: the prior the
    search ranks by when the user's own task has no measurements yet."""

    def __init__(self, encoding_dim: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(encoding_dim, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                       torch.nn.ReLU(), torch.nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[..., 0]

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.eval()(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)


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


@dataclass
class Trained:
    model: LatencyPredictor
    devices: list[str]  # the meta-training devices
    space: str
    accuracy: AccuracyPrior | None = None
    accuracy_task: str | None = None

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": self.model.state_dict(), "config": self.model.config, "devices": self.devices,
                    "space": self.space, "format": 1,
                    "accuracy_state": self.accuracy.state_dict() if self.accuracy else {},
                    "accuracy_task": self.accuracy_task or ""}, path)

    @classmethod
    def load(cls, path: str | Path) -> "Trained":
        try:
            ckpt = torch.load(Path(path), weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EdgenasError(f"cannot load checkpoint {path} ({reason}); run edgenas meta-train to make one") \
                from None
        model = LatencyPredictor(**ckpt["config"])
        model.load_state_dict(ckpt["state"])
        accuracy = None
        if ckpt.get("accuracy_state"):
            accuracy = AccuracyPrior(ckpt["config"]["encoding_dim"])
            accuracy.load_state_dict(ckpt["accuracy_state"])
        return cls(model.eval(), list(ckpt["devices"]), ckpt["space"], accuracy, ckpt.get("accuracy_task") or None)


def device_descriptors(name: str) -> np.ndarray:
    """Descriptors of the profile named like a benchmark column; all masked when there is none."""
    return descriptor_vector(PROFILES.get(name) if name in PROFILES.names() else None)


def least_squares_heads(x: np.ndarray, latency: dict[str, np.ndarray], devices: list[str]) -> np.ndarray:
    """Per-device linear fits of relative latency on [encoding, 1]: the empirical prior's starting point."""
    design = np.c_[x, np.ones(len(x))]
    rows = []
    for d in devices:
        y = latency[d]
        ok = np.isfinite(y)
        rows.append(np.linalg.lstsq(design[ok], y[ok] / y[ok].mean(), rcond=None)[0])
    return np.stack(rows)


def meta_train(bench: Benchmark, devices: list[str], steps: int = 1500, batch: int = 16, max_support: int = 20,
               queries: int = 256, seed: int = 0, log: Callable[[str], None] | None = None,
               accuracy_task: str | None = None) -> Trained:
    """Meta-train a LatencyPredictor on the latency columns `devices` of `bench`; with `accuracy_task`,
    also learn the accuracy prior from that task's column."""
    if accuracy_task and accuracy_task not in bench.accuracy:
        raise EdgenasError(f"task '{accuracy_task}' is not a column of {bench.source}/accuracy.csv; known: "
                           f"{', '.join(bench.tasks) or 'none'}")
    unknown = [d for d in devices if d not in bench.latency]
    if unknown:
        raise EdgenasError(f"device '{unknown[0]}' is not a column of {bench.source}/latency_ms.csv; known: "
                           f"{', '.join(bench.devices)}")
    if len(devices) < 2:
        raise EdgenasError("meta-training needs at least 2 devices; pass more with --devices")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = bench.encodings()
    model = LatencyPredictor(x.shape[1])
    desc = np.stack([device_descriptors(d) for d in devices])
    model.descriptors.fit(desc)
    model.init_prior(least_squares_heads(x, bench.latency, devices))
    xt, desc_t = torch.as_tensor(x), torch.as_tensor(desc)
    lat = [bench.latency[d] for d in devices]
    valid = [np.flatnonzero(np.isfinite(v)) for v in lat]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start = time.perf_counter()
    for step in range(steps):
        model.train()
        dev = rng.integers(len(devices), size=batch)
        k = int(rng.integers(0, max_support + 1))
        sx, sy, qx, qy = [], [], [], []
        for d in dev:
            pick = rng.choice(valid[d], size=k + queries, replace=False)
            s, q = pick[:k], pick[k:]
            unit = lat[d][s].mean() if k else lat[d][q].mean()
            sx.append(xt[s]), sy.append(lat[d][s] / unit), qx.append(xt[q]), qy.append(lat[d][q] / unit)
        sy_t = torch.as_tensor(np.stack(sy), dtype=torch.float32)
        pred = model(desc_t[dev], torch.stack(sx), sy_t, torch.ones_like(sy_t, dtype=torch.bool), torch.stack(qx))
        target = torch.as_tensor(np.stack(qy), dtype=torch.float32)
        loss = torch.mean((pred - target) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if log and (step % 250 == 0 or step == steps - 1):
            log(f"step {step:5d}/{steps}  loss {loss.item():.5f}  {time.perf_counter() - start:.0f} s")
    prior = train_accuracy_prior(x, bench.accuracy[accuracy_task], seed=seed) if accuracy_task else None
    return Trained(model.eval(), list(devices), bench.space.name, prior, accuracy_task)
