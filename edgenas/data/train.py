"""Training a network on the user's data: `train` splits off a validation set (seeded, per class), trains with
SGD and a cosine schedule, stops early when validation accuracy stops improving and keeps the best epoch's
weights. The network it returns standardises its input with the training set's per-channel mean and std as
its first layer, so the deployed model takes inputs exactly as the dataset holds them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..console import progress_bar
from ..errors import EdgenasError
from .datasets import Dataset


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module  # the trained network, standardising its input, in eval mode
    val_accuracy: float  # percent, best epoch
    test_accuracy: float | None  # percent, on the format's own test split where it has one
    best_epoch: int
    epochs_run: int
    samples: dict[str, int]
    seconds: float

    def as_dict(self) -> dict:
        return {"val_accuracy": round(self.val_accuracy, 3), "test_accuracy": None if self.test_accuracy is None
                else round(self.test_accuracy, 3), "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "samples": self.samples, "seconds": round(self.seconds, 2)}


def train(build: Callable[[], nn.Module], data: Dataset, epochs: int = 30, seed: int = 0, val_fraction: float = 0.2,
          patience: int = 5, batch_size: int = 64, lr: float = 0.05, threads: int | None = None,
          log: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train the network `build()` returns on `data` and return it with its validation accuracy."""
    if epochs < 1:
        raise EdgenasError(f"epochs must be at least 1, got {epochs}")
    start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_idx, val_idx = split(data.y, val_fraction, seed)
    xt, yt = torch.from_numpy(data.x[train_idx]), torch.from_numpy(data.y[train_idx])
    xv, yv = torch.from_numpy(data.x[val_idx]), torch.from_numpy(data.y[val_idx])
    mean = xt.mean(dim=(0, 2, 3))
    std = xt.std(dim=(0, 2, 3)).clamp_min(1e-6)
    model = nn.Sequential(Standardize(mean, std), build())
    steps = epochs * max(1, -(-len(xt) // batch_size))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    shuffle = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, epoch = -1.0, 0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(xt), generator=shuffle).split(batch_size):
            loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(batch)
        val = accuracy(model, xv, yv)
        if val > best:
            best, best_epoch = val, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        log(f"{progress_bar(epoch, epochs)} epochs  loss {total / len(xt):.4f}  val {val:.2f}% "
            f"(best {best:.2f}%, epoch {best_epoch})  {time.perf_counter() - start:.0f} s")
        if epoch - best_epoch >= patience:
            log(f"early stop: no better validation accuracy for {patience} epochs")
            break
    model.load_state_dict(best_state)
    model.eval()
    test = None
    if data.test is not None:
        test = accuracy(model, torch.from_numpy(data.test[0]), torch.from_numpy(data.test[1]))
    samples = {"train": len(xt), "val": len(xv), **({"test": len(data.test[1])} if data.test is not None else {})}
    return TrainResult(model, best, test, best_epoch, epoch, samples, time.perf_counter() - start)


def split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: `val_fraction` of each class (at least one sample), chosen with `seed`."""
    if not 0 < val_fraction < 1:
        raise EdgenasError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val.extend(members[:max(1, int(round(val_fraction * len(members))))])
    val = np.sort(np.asarray(val, dtype=np.int64))
    return np.setdiff1d(np.arange(len(y)), val), val


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on (x, y), in percent."""
    model.eval()
    with torch.no_grad():
        right = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return 100.0 * right / max(1, len(y))


class Standardize(nn.Module):
    """(x - mean) / std per channel, with the training set's statistics as buffers."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
