"""The device-conditioned latency predictor: a hypernetwork generates each device's predictor head.

Latency of a network is close to a sum of per-operation costs, so the head is linear in architecture
features (the space's encoding, a bias, and a small learned nonlinear part for interactions). The
hypernetwork maps the device embedding (descriptors + support-set encoder) to the prior mean of the head
weights; the support pairs then update it in closed form (Bayesian linear regression with a learned prior
covariance and noise). A device therefore gets its own predictor from a handful of measurements without
a single gradient step, and every new measurement sharpens it.

Latencies are relative: the support set's mean latency is the unit (the query set's without support).

Beside it: the task predictor (accuracy on the user's task, from the same few-shot machinery) and the
accuracy prior (accuracy on the source task, learned from its table).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .conditioning import DescriptorEncoder, SetEncoder


def bayes_update(mean: torch.Tensor, cov: torch.Tensor, features: torch.Tensor, y: torch.Tensor,
                 mask: torch.Tensor, noise_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior of linear weights w ~ N(mean (B, P), cov (B, P, P) or (P, P)) after observing y (B, K) =
    features (B, K, P) @ w + noise, for the pairs where mask (B, K) is True."""
    if features.shape[1] == 0:
        return mean, cov.expand(mean.shape[0], -1, -1)
    xs = features * mask[..., None]
    gram = xs @ cov @ xs.transpose(1, 2) + noise_var * torch.eye(xs.shape[1])
    residual = (y - (xs @ mean[..., None])[..., 0]) * mask
    gain = cov @ xs.transpose(1, 2)  # (B, P, K)
    weights = mean + (gain @ torch.linalg.solve(gram, residual[..., None]))[..., 0]
    return weights, cov - gain @ torch.linalg.solve(gram, gain.transpose(1, 2))


class LatencyPredictor(nn.Module):
    def __init__(self, encoding_dim: int, feature_dim: int = 16, rank: int = 8, set_dim: int = 64,
                 descriptor_dim: int = 32):
        super().__init__()
        self.config = dict(encoding_dim=encoding_dim, feature_dim=feature_dim, rank=rank, set_dim=set_dim,
                           descriptor_dim=descriptor_dim)
        p = encoding_dim + 1 + feature_dim
        self.interactions = nn.Sequential(nn.Linear(encoding_dim, 64), nn.ReLU(), nn.Linear(64, feature_dim),
                                          nn.Tanh())
        self.descriptors = DescriptorEncoder(descriptor_dim)
        self.support = SetEncoder(encoding_dim, set_dim)
        self.hyper = nn.Sequential(nn.Linear(descriptor_dim + set_dim, 128), nn.ReLU(), nn.Linear(128, p))
        nn.init.zeros_(self.hyper[-1].weight)
        nn.init.zeros_(self.hyper[-1].bias)
        self.prior_mean = nn.Parameter(torch.zeros(p))
        self.prior_factor = nn.Parameter(torch.randn(p, rank) * 0.01)
        self.prior_log_diag = nn.Parameter(torch.full((p,), -7.0))
        self.log_scale_var = nn.Parameter(torch.tensor(-3.0))  # uncertainty of the prior mean's overall scale
        self.log_noise = nn.Parameter(torch.tensor(np.log(0.05), dtype=torch.float32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(*x.shape[:-1], 1, dtype=x.dtype)
        return torch.cat([x, ones, self.interactions(x)], dim=-1)

    def init_prior(self, head_weights: np.ndarray) -> None:
        """Empirical-Bayes start: prior mean and covariance of the linear part from per-device least-squares
        fits (rows: devices, columns: encoding + bias), before meta-training refines everything."""
        w = torch.as_tensor(head_weights, dtype=torch.float32)
        n = w.shape[1]
        with torch.no_grad():
            self.prior_mean[:n] = w.mean(0)
            centred = w - w.mean(0)
            _, s, vt = torch.linalg.svd(centred, full_matrices=False)
            rank = min(self.prior_factor.shape[1], len(s))
            scale = s[:rank] / max(len(w) - 1, 1) ** 0.5
            self.prior_factor.zero_()
            self.prior_factor[:n, :rank] = (vt[:rank].T * scale)

    def posterior(self, descriptors: torch.Tensor, support_x: torch.Tensor, support_y: torch.Tensor,
                  support_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (B, P) and covariance (B, P, P) of each device's head weights.

        descriptors (B, D); support_x (B, K, E); support_y (B, K) relative latencies; support_mask (B, K).
        """
        log_y = torch.log(support_y.clamp(min=1e-6)) * support_mask
        condition = torch.cat([self.descriptors(descriptors), self.support(support_x, log_y, support_mask)], 1)
        mean = self.prior_mean + self.hyper(condition)  # (B, P): the generated head
        cov = self.prior_factor @ self.prior_factor.T + torch.diag(torch.exp(self.prior_log_diag))
        cov = cov + torch.exp(self.log_scale_var) * mean[:, :, None] * mean[:, None, :]  # (B, P, P)
        return bayes_update(mean, cov, self.features(support_x), support_y, support_mask,
                            torch.exp(2 * self.log_noise))

    def forward(self, descriptors: torch.Tensor, support_x: torch.Tensor, support_y: torch.Tensor,
                support_mask: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        """Relative latency of each query architecture (B, Q), for query_x (B, Q, E)."""
        weights, _ = self.posterior(descriptors, support_x, support_y, support_mask)
        return (self.features(query_x) @ weights[..., None])[..., 0]

    @torch.no_grad()
    def head(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray):
        """The device's generated head after its support set: posterior weights (P,), their covariance
        (P, P), and the unit of its relative latencies in ms (the support mean; 1 without support)."""
        self.eval()
        unit = float(np.mean(support_ms)) if len(support_ms) else 1.0
        sx = torch.as_tensor(np.asarray(support_x, np.float32).reshape(1, len(support_ms), self.config["encoding_dim"]))
        sy = torch.as_tensor(np.asarray(support_ms, np.float32).reshape(1, -1) / unit)
        weights, post = self.posterior(torch.as_tensor(descriptors[None]), sx, sy, torch.ones_like(sy, dtype=torch.bool))
        return weights[0].numpy().astype(np.float64), post[0].numpy().astype(np.float64), unit

    @torch.no_grad()
    def predict(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray,
                query_x: np.ndarray, with_std: bool = False):
        """Latency of each query architecture: in ms when there is a support set, relative without one;
        with `with_std`, also the predictive standard deviation in the same unit."""
        weights, post, unit = self.head(descriptors, support_x, support_ms)
        features = self.features(torch.as_tensor(query_x, dtype=torch.float32)).numpy().astype(np.float64)
        mean = features @ weights * unit
        if not with_std:
            return mean
        var = ((features @ post) * features).sum(1) + float(torch.exp(2 * self.log_noise))
        return mean, np.sqrt(np.clip(var, 0, None)) * unit


class TaskPredictor(nn.Module):
    """Accuracy on a task, from a task embedding generated by the same few-shot machinery.

    Features of an architecture are [source score, 1, encoding], where the source score is its standardised
    accuracy on a source task (prior knowledge, e.g. cifar10). The task embedding is an attention set encoder
    over (architecture, accuracy) support pairs; the hypernetwork maps it to the prior mean of the task's
    linear head, and the pairs update that head in closed form. Accuracies are in units of the source task's
    spread, relative to the support set's mean.
    """

    def __init__(self, encoding_dim: int, set_dim: int = 32, rank: int = 4):
        super().__init__()
        self.config = dict(encoding_dim=encoding_dim, set_dim=set_dim, rank=rank)
        p = encoding_dim + 2
        self.support = SetEncoder(encoding_dim + 1, set_dim)
        self.hyper = nn.Sequential(nn.Linear(set_dim, 64), nn.ReLU(), nn.Linear(64, p))
        nn.init.zeros_(self.hyper[-1].weight)
        nn.init.zeros_(self.hyper[-1].bias)
        self.prior_mean = nn.Parameter(torch.cat([torch.ones(1), torch.zeros(p - 1)]))
        self.prior_factor = nn.Parameter(torch.randn(p, rank) * 0.01)
        self.prior_log_diag = nn.Parameter(torch.cat([torch.zeros(2), torch.full((p - 2,), -4.0)]))
        self.log_noise = nn.Parameter(torch.tensor(np.log(0.1), dtype=torch.float32))

    @staticmethod
    def features(source: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([source[..., None], torch.ones_like(source[..., None]), x], dim=-1)

    def posterior(self, support_source: torch.Tensor, support_x: torch.Tensor, support_y: torch.Tensor,
                  support_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (B, P) and covariance (B, P, P) of each task's head; support_y (B, K) relative."""
        pairs = torch.cat([support_x, support_source[..., None]], dim=-1)
        embedding = self.support(pairs, support_y * support_mask, support_mask)
        mean = self.prior_mean + self.hyper(embedding)
        cov = self.prior_factor @ self.prior_factor.T + torch.diag(torch.exp(self.prior_log_diag))
        return bayes_update(mean, cov, self.features(support_source, support_x), support_y, support_mask,
                            torch.exp(2 * self.log_noise))

    def forward(self, support_source, support_x, support_y, support_mask, query_source, query_x) -> torch.Tensor:
        weights, _ = self.posterior(support_source, support_x, support_y, support_mask)
        return (self.features(query_source, query_x) @ weights[..., None])[..., 0]

    @torch.no_grad()
    def head(self, source: np.ndarray, x: np.ndarray, picks: list[int], values: list[float]) -> np.ndarray:
        """The posterior task head (P,) in relative units, from measured accuracies `values` of rows `picks`."""
        self.eval()
        offset, scale = _task_units(source, values)
        z = torch.as_tensor((source - source.mean()) / scale, dtype=torch.float32)
        sy = torch.as_tensor((np.asarray(values, np.float64) - offset) / scale, dtype=torch.float32)[None]
        weights, _ = self.posterior(z[picks][None], torch.as_tensor(x[picks], dtype=torch.float32)[None], sy,
                                    torch.ones_like(sy, dtype=torch.bool))
        return weights[0].numpy().astype(np.float64)

    def predict(self, source: np.ndarray, x: np.ndarray, picks: list[int], values: list[float],
                rows: np.ndarray | None = None) -> np.ndarray:
        """Expected accuracy on the task of the architectures `rows` of `x` (default: all), in the task's units
        (the source task's while nothing is measured); `source` is the source-task accuracy of every row."""
        rows = np.arange(len(x)) if rows is None else rows
        offset, scale = _task_units(source, values)
        features = np.c_[(source[rows] - source.mean()) / scale, np.ones(len(rows)), x[rows]]
        return features @ self.head(source, x, picks, values) * scale + offset


def _task_units(source: np.ndarray, values: list[float]) -> tuple[float, float]:
    """Offset and scale of relative accuracies: the support mean (the source mean without one) and the source
    task's spread."""
    return float(np.mean(values)) if len(values) else float(source.mean()), float(source.std()) + 1e-9


class AccuracyPrior(nn.Module):
    """Expected accuracy of an architecture on the source task, learned from its table: the prior the
    search ranks by when the user's own task has no measurements yet."""

    def __init__(self, encoding_dim: int):
        super().__init__()
        self.config = dict(encoding_dim=encoding_dim)
        self.net = nn.Sequential(nn.Linear(encoding_dim, 64), nn.ReLU(), nn.Linear(64, 64),
                                       nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[..., 0]

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.eval()(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)
