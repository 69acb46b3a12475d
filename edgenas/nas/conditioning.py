"""Conditioning: what edgenas knows about a device (or a task) as one vector.

Two sources: the profile's numeric hardware descriptors (log-scaled, standardised, missing ones masked)
and a support set of measured (architecture encoding, value) pairs, read by an attention-based set
encoder that takes any number of pairs, zero included.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..device.profile import HARDWARE, KINDS, PROFILES, Profile

DESCRIPTORS = tuple(HARDWARE)  # cores, clock_ghz, peak_gflops, ...
DESCRIPTOR_DIM = 2 * len(DESCRIPTORS) + len(KINDS) + 1  # values, mask, kind one-hot, log2(batch)


def descriptor_vector(profile: Profile | None) -> np.ndarray:
    """Raw descriptor features of a profile: log1p of each value (0 if missing), its mask, kind, batch.
    A device without a profile gets all-masked descriptors."""
    values = np.zeros(len(DESCRIPTORS), np.float32)
    mask = np.zeros(len(DESCRIPTORS), np.float32)
    kind = np.zeros(len(KINDS), np.float32)
    batch = 0.0
    if profile is not None:
        for i, name in enumerate(DESCRIPTORS):
            if name in profile.hardware:
                values[i] = math.log1p(float(profile.hardware[name]))
                mask[i] = 1.0
        kind[KINDS.index(profile.kind)] = 1.0
        batch = math.log2(profile.batch)
    return np.concatenate([values, mask, kind, [batch]]).astype(np.float32)


def column_profile(name: str) -> str:
    """The profile a benchmark column belongs to: its name, or what precedes the runtime of a column edgenas
    measured itself (PROFILE:RUNTIME, `Store.columns`)."""
    return name.split(":")[0]


def device_descriptors(name: str) -> np.ndarray:
    """Descriptors of the profile a benchmark column belongs to; all masked when there is none."""
    profile = column_profile(name)
    return descriptor_vector(PROFILES.get(profile) if profile in PROFILES.names() else None)


class DescriptorEncoder(nn.Module):
    """Standardised, masked descriptors -> embedding. Statistics are fitted on the meta-training profiles."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.register_buffer("mean", torch.zeros(len(DESCRIPTORS)))
        self.register_buffer("std", torch.ones(len(DESCRIPTORS)))
        self.net = nn.Sequential(nn.Linear(DESCRIPTOR_DIM, dim), nn.ReLU(), nn.Dropout(0.1), nn.Linear(dim, dim))

    def fit(self, raw: np.ndarray) -> None:
        """Set the standardisation from raw descriptor vectors (rows), using only present values."""
        n = len(DESCRIPTORS)
        values, mask = torch.as_tensor(raw[:, :n]), torch.as_tensor(raw[:, n:2 * n])
        count = mask.sum(0).clamp(min=1)
        mean = (values * mask).sum(0) / count
        var = (((values - mean) * mask) ** 2).sum(0) / count
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp(min=0.1))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        n = len(DESCRIPTORS)
        values, mask = raw[:, :n], raw[:, n:2 * n]
        values = (values - self.mean) / self.std * mask
        return self.net(torch.cat([values, raw[:, n:]], dim=1))


class SetEncoder(nn.Module):
    """Attention over a set of (encoding, value) pairs -> one vector; an empty set maps to a learned vector.

    Inputs are padded batches: x (B, K, E), y (B, K) and a mask (B, K) that is True for real pairs.
    """

    def __init__(self, encoding_dim: int, dim: int = 64, heads: int = 4):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(encoding_dim + 1, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.seed = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pool = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.empty = nn.Parameter(torch.zeros(dim))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if x.shape[1] == 0:
            return self.empty.expand(batch, -1)
        has_pairs = mask.any(dim=1)
        safe = mask | ~has_pairs[:, None]  # rows without pairs attend to padding; replaced below
        h = self.embed(torch.cat([x, y[..., None]], dim=-1))
        attended, _ = self.self_attention(h, h, h, key_padding_mask=~safe)
        h = self.norm(h + attended)
        pooled, _ = self.pool(self.seed.expand(batch, -1, -1), h, h, key_padding_mask=~safe)
        out = self.out(pooled[:, 0])
        return torch.where(has_pairs[:, None], out, self.empty.expand(batch, -1))
