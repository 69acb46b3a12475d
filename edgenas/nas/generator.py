"""The conditional architecture generator: proposes architectures for a device, a task and a budget.

It is autoregressive over the search space's decisions (NB201: the operation of each of the cell's six
edges): p(choice_t | choices before t, condition). The condition is what the few-shot models generated for
this situation — the device's latency head and the task's accuracy head — and the budgets (latency relative
to the support set's mean, memory in MB). It is trained by distillation: over meta-training devices, random
support sets, tasks and budgets, it learns to put its probability on the architectures that the predictors
rank best among those that fit. Beam search returns its most likely architectures; the search then ranks
them by predicted latency (must fit) and predicted accuracy.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

NO_MEMORY_BUDGET = 0.0  # the memory feature when no memory budget applies


def condition_vector(latency_head: np.ndarray, task_head: np.ndarray, budget_relative: float,
                     memory_mb: float | None) -> np.ndarray:
    """The generator's input: both generated heads, the log relative latency budget, log memory budget."""
    memory = NO_MEMORY_BUDGET if memory_mb is None else math.log1p(memory_mb)
    return np.r_[latency_head, task_head, math.log(max(budget_relative, 1e-3)), memory, float(memory_mb is not None)]\
        .astype(np.float32)


class Generator(nn.Module):
    def __init__(self, decisions: tuple[int, ...], condition_dim: int, hidden: int = 256):
        super().__init__()
        self.config = dict(decisions=list(decisions), condition_dim=condition_dim, hidden=hidden)
        self.decisions = tuple(decisions)
        self.offsets = np.r_[0, np.cumsum(self.decisions)].astype(int)
        self.register_buffer("mean", torch.zeros(condition_dim))
        self.register_buffer("std", torch.ones(condition_dim))
        steps, width = len(self.decisions), int(self.offsets[-1])
        self.net = nn.Sequential(nn.Linear(condition_dim + width + steps, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, max(self.decisions)))

    def fit_normalisation(self, conditions: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(conditions.mean(0)))
        self.std.copy_(torch.as_tensor(conditions.std(0)).clamp(min=1e-3))

    def _logits(self, condition: torch.Tensor, partial: torch.Tensor, step: int) -> torch.Tensor:
        """Logits of decision `step` (B, n_choices) given the one-hots of the earlier decisions (B, width)."""
        position = torch.zeros(len(condition), len(self.decisions))
        position[:, step] = 1.0
        out = self.net(torch.cat([(condition - self.mean) / self.std, partial, position], dim=1))
        return out[:, :self.decisions[step]]

    def log_prob(self, condition: torch.Tensor, encoding: torch.Tensor) -> torch.Tensor:
        """Log-probability (B,) of architectures given as encodings (B, width) under their conditions (B, C)."""
        total = torch.zeros(len(condition))
        for t, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:])):
            partial = encoding.clone()
            partial[:, a:] = 0.0
            logp = torch.log_softmax(self._logits(condition, partial, t), dim=1)
            total = total + (logp * encoding[:, a:b]).sum(1)
        return total

    @torch.no_grad()
    def beam(self, condition: np.ndarray, width: int) -> list[tuple[int, ...]]:
        """The `width` most likely choice sequences for one condition, most likely first."""
        self.eval()
        cond = torch.as_tensor(condition, dtype=torch.float32)[None]
        beams = [((), 0.0)]
        for t, n in enumerate(self.decisions):
            partial = torch.zeros(len(beams), int(self.offsets[-1]))
            for row, (choices, _) in enumerate(beams):
                for s, c in enumerate(choices):
                    partial[row, self.offsets[s] + c] = 1.0
            logp = torch.log_softmax(self._logits(cond.expand(len(beams), -1), partial, t), dim=1).numpy()
            scored = [(choices + (c,), score + float(logp[row, c]))
                      for row, (choices, score) in enumerate(beams) for c in range(n)]
            scored.sort(key=lambda item: -item[1])
            beams = scored[:width]
        return [choices for choices, _ in beams]
