"""The device-conditioned latency predictor: a hypernetwork generates each device's predictor head.

Latency of a network is close to a sum of per-operation costs, so the head is linear in architecture
features (the space's encoding, a bias, and a small learned nonlinear part for interactions). The
hypernetwork maps the device embedding (descriptors + support-set encoder) to the prior mean of the head
weights; the support pairs then update it in closed form (Bayesian linear regression with a learned prior
covariance and noise). A device therefore gets its own predictor from a handful of measurements without
a single gradient step, and every new measurement sharpens it.

Latencies are relative: the support set's mean latency is the unit (the query set's without support).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .conditioning import DescriptorEncoder, SetEncoder


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
        if support_x.shape[1] == 0:
            return mean, cov
        xs = self.features(support_x) * support_mask[..., None]
        k = xs.shape[1]
        gram = xs @ cov @ xs.transpose(1, 2) + torch.exp(2 * self.log_noise) * torch.eye(k)
        residual = (support_y - (xs @ mean[..., None])[..., 0]) * support_mask
        gain = cov @ xs.transpose(1, 2)  # (B, P, K)
        weights = mean + (gain @ torch.linalg.solve(gram, residual[..., None]))[..., 0]
        post = cov - gain @ torch.linalg.solve(gram, gain.transpose(1, 2))
        return weights, post

    def forward(self, descriptors: torch.Tensor, support_x: torch.Tensor, support_y: torch.Tensor,
                support_mask: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        """Relative latency of each query architecture (B, Q), for query_x (B, Q, E)."""
        weights, _ = self.posterior(descriptors, support_x, support_y, support_mask)
        return (self.features(query_x) @ weights[..., None])[..., 0]

    @torch.no_grad()
    def predict(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray,
                query_x: np.ndarray, with_std: bool = False):
        """Latency of each query architecture: in ms when there is a support set, relative without one;
        with `with_std`, also the predictive standard deviation in the same unit."""
        self.eval()
        unit = float(np.mean(support_ms)) if len(support_ms) else 1.0
        sx = torch.as_tensor(np.asarray(support_x, np.float32).reshape(1, len(support_ms), query_x.shape[1]))
        sy = torch.as_tensor(np.asarray(support_ms, np.float32).reshape(1, -1) / unit)
        mask = torch.ones_like(sy, dtype=torch.bool)
        weights, post = self.posterior(torch.as_tensor(descriptors[None]), sx, sy, mask)
        features = self.features(torch.as_tensor(query_x))
        mean = (features @ weights[0]).numpy().astype(np.float64) * unit
        if not with_std:
            return mean
        var = ((features @ post[0]) * features).sum(1) + torch.exp(2 * self.log_noise)
        return mean, var.clamp(min=0).sqrt().numpy().astype(np.float64) * unit
