"""The device-conditioned latency predictor: a hypernetwork generates each device's predictor head, and the
device's own measurements refit that head in closed form.

A network's latency is close to a sum of per-layer costs, so the head is linear, in milliseconds relative to
the device's unit (the mean of its support set), over features of the architecture:
- `devices`: the relative latency of the architecture on each meta-training device (a basis network learned
  from the benchmark table, so it also answers for architectures outside the table);
- `costs`: the network's FLOPs, parameters and peak activation bytes, relative to the table's mean (a cost
  network learned from the space's exact costs: whole-network costs that are not sums over choices, such as a
  peak or an expansion times a depth, which the per-type blocks below cannot express);
- `op_flops`, `op_params`, `op_count`: the FLOPs spent in, the weights held by, and the number of layers that
  choose each operation type;
- `choices`: the one-hot encoding (per-layer corrections);
- `intercept`.
The hypernetwork reads the profile's descriptors and an attention-encoded support set and generates the prior
of the head: its mean from the descriptors (which meta-training devices the device resembles, by attention from
the device to their profiles, and the other blocks); the width of each block's prior, the noise level and a
hyperprior over prior scalings from both. A generic prior (no device alike, costs per operation type) competes
with it, its hyperprior mass never below `GENERIC_MASS` once meta-trained. The support pairs then update the
head by Bayesian linear regression with noise proportional to latency, under the prior that the support set
itself supports best: ten measurements move the head as far as they deserve, not less. Besides the generated
and generic priors, the support may choose hypotheses that need no hypernetwork: the device is an affine *twin*
of one basis device (what the nearest-device baseline assumes); they join after meta-training. Their hyperprior
is not learned (`TWIN_MASS` in all, most of it on the basis devices whose profiles are closest to the device's),
so the support's evidence chooses them, and a device whose descriptors mislead the generated prior (with three
meta-training devices, on the effnet table) is predicted from its twin's column as soon as three measurements say
it has one. The generated and generic priors come at two noise levels, the generated one and 1.5 times it, so a
device noisier than its descriptors say explains its misfit as noise, not with a prior wide enough to follow it.
Every hypothesis also comes in a robust variant that takes its worst-explained support points for outliers (a
timing taken while the machine was busy): on FBNet's titanx_1 one such point among 20 made the widest prior win
and cost 0.10 of Spearman.

Predictions are latencies in ms with a calibrated 90 % interval: with a support set the unit is the support's
mean, and the noise level's scale is re-estimated from how well the support predicts itself (leave-one-out);
without one the unit is predicted from the descriptors (zero-shot: a ridge fit, its residual a Gaussian process
over the basis devices), its uncertainty small for a profile close to a basis device's and the ridge's
leave-one-device-out error for one unlike all of them. The interval's width is scaled by factors measured on
meta-training devices held out of the head's basis (`metatrain._calibrate`).
Predictions and lower bounds never fall below `FLOOR` times the device's unit.
"""
from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .conditioning import DESCRIPTOR_DIM, DESCRIPTORS, DescriptorEncoder, SetEncoder

Z90 = 1.6448536269514722  # the standard normal's 95th percentile: a central 90 % interval is mean +- Z90 std
CALIBRATION_SUPPORTS = (0, 3, 10, 20, 50)  # support sizes at which the interval width is calibrated
FLOOR = 0.05  # no latency is predicted below 5 % of the device's unit
BLOCKS = ("intercept", "devices", "costs", "op_flops", "op_params", "op_count", "choices")
COSTS = ("flops", "params", "peak_activation_bytes")  # the `costs` block's features
PRIOR_VAR = (0.1, 0.05, 0.3, 0.3, 0.3, 0.3, 0.01)  # the blocks' prior variances before meta-training
WIDTHS = (1 / 16, 1 / 4, 1.0, 4.0, 16.0, 64.0)  # the prior scalings a support set chooses among (by evidence)
GENERIC_VAR = (1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.01)  # the generic prior: no device alike, costs per operation type
GENERIC_WIDTHS = (1.0, 16.0)
PRIORS = len(WIDTHS) + len(GENERIC_WIDTHS)  # the priors whose hyperprior is generated
SCALE_VAR = 0.25  # after meta-training, the generated prior's variance along its own mean: the device's scale
# relative to the support set's mean, which a few measurements leave unknown (without it, a support set whose mean
# is off the table's moved the head through the other blocks: on NB201's titanx_256, 0.9919 at K = 0 fell to
# 0.9888 at K = 3, 0.9928 with it). Left out in meta-training, like the twins: meta-trained with it, the
# hypernetwork learnt priors so tight that ten measurements moved nothing (titanx_256 K = 10 0.9921, 0.9953 without)
TWIN_VAR = (0.01, 0.25)  # a basis device's twin: variances of the intercept and of that device's coefficient
NOISE_PRIOR_POINTS = 10.0  # after meta-training, the noise level's scale is re-estimated from the support's
# leave-one-out residuals, as if the generated level had been seen on this many points (a Student-t's degrees
# of freedom): on NB201's gold_6240 the 90 % interval covered 0.52 of true latencies at K = 10, 0.72 with it
NOISE_FACTORS = (1.0, 1.5)  # after meta-training, the generated and generic priors each come with the generated
# noise level scaled by these, as hypotheses the support's evidence weighs (the hyperprior split evenly): with the
# generated level alone, a device noisier than its descriptors say explained its misfit by a wide prior, which then
# followed the noise (NB201's gold_6240 at K = 20: 0.9538; NB201's mean fell from K = 10 to K = 20). Chosen on the
# validation devices of nb201, fbnet and effnet (3 meta-seeds, 5 support sets): (1, 1.5) made NB201's and FBNet's
# means rise with K; (0.5, 1, 2) and (1, 2) did as well but cost the synthetic devices 0.01-0.03 at K = 10-20 (a
# tight prior with twice the noise passed for a device unlike any), FBNet's random-speed device 0.886 at K = 20
OUTLIER_EVERY = 10  # a support set may hold one outlier per this many points (none below 10: checked on the
# validation devices and synthetic ones, one per 5 cost the synthetic devices 0.02-0.04 at K = 5)
OUTLIER_P = 0.02  # the prior probability that a support point is an outlier (a timing taken on a busy machine)
OUTLIER_STD = 1.0  # an outlier's noise, relative to its latency
OUTLIER_Z = 3.0  # only points this many standard deviations off their leave-one-out prediction are candidates
TWIN_MASS = 0.06  # the prior probability that a device is a twin of some basis device
TWIN_RESEMBLANCE = 0.9  # the share of TWIN_MASS given to the basis devices by how close their profiles are to the
# device's (`resemblance`; the rest evenly). All evenly at 0.12, three points of NB201's gold_6240 (a Xeon) chose a
# phone's or a GPU's column and K = 3 (0.9745) fell below K = 0 (0.9782). Session 9 shared by the generated prior's
# attention, which meta-training teaches never to look at a large-batch GPU (no other meta-training device runs like
# one): FBNet's titanx_64 gave its twin 1080ti_64 1 % of the share, the descriptors give it 60 %. Chosen on the
# validation devices (3 meta-seeds, 5 support sets): by the profiles at 0.06, K = 10 rises on NB201 (0.9793 ->
# 0.9796), FBNet (0.9761 -> 0.9766) and effnet's K = 3 (0.9793 -> 0.9850); at 0.2 FBNet's titanx_1 loses 0.003
RESEMBLANCE_LENGTH = 1.0  # the length scale of `resemblance`, in standardised descriptors
GENERIC_MASS = 0.1  # after meta-training, the least share of the generated and generic priors' hyperprior that the
# generic ones keep: meta-training devices all resemble each other, so the learned hyperprior gives the generic prior
# almost nothing (log -9.5 on FBNet's random-speed device, where it explains 20 points best and ranks at 0.97 against
# the winning generated prior's 0.88); chosen on the validation devices (no change there) and on the synthetic
# devices of seed 1 (FBNet random speeds at K = 20: 0.82 with none, 0.88 / 0.89 / 0.90 with 0.02 / 0.05 / 0.1)


def per_choice(x: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Each choice's share of an additive cost (FLOPs, parameters): least squares of the networks' `total` on their
    one-hots `x` (rows) plus a constant, clipped at 0."""
    return np.clip(np.linalg.lstsq(np.c_[x, np.ones(len(x))], total, rcond=None)[0][:-1], 0, None)


def _outliers(z: torch.Tensor, limit: int) -> torch.Tensor:
    """(B, K) 0/1 mask of each row's `limit` largest |z| beyond OUTLIER_Z."""
    size = z.abs()
    top = torch.topk(size, limit, dim=1).indices
    chosen = torch.zeros_like(size).scatter_(1, top, 1.0)
    return chosen * (size > OUTLIER_Z).float()


def _explained(weight: torch.Tensor, reductions: tuple[torch.Tensor, ...], q: torch.Tensor) -> torch.Tensor:
    """(B, Q) the variance the support explains at queries q (B, Q, P), averaged over hypotheses with `weight`
    (B, H): sum_h w_h |R_h q|^2 for each hypothesis's reduction R_h (B, K, P), in the cheaper order (through a P x
    P matrix for many queries, as when predicting a whole table; query by query for few, as in meta-training)."""
    h, (_, k, p), n = len(reductions), reductions[0].shape, q.shape[1]
    if n * h * k <= p * (h * k + n):
        return sum(w[:, None] * ((q @ r.transpose(1, 2)) ** 2).sum(-1) for w, r in zip(weight.T, reductions))
    reduced = sum(w[:, None, None] * r.transpose(1, 2) @ r for w, r in zip(weight.T, reductions))
    return ((q @ reduced) * q).sum(-1)


def unit_kernel(a: np.ndarray, b: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The zero-shot unit's residual covariance between unit features a (N, F) and b (M, F) (the last column, the
    constant, left out): squared exponential of `kernel`'s length and scale sf."""
    length, sf, _ = kernel
    d2 = ((a[:, None, :-1] - b[None, :, :-1]) ** 2).sum(-1)
    return sf ** 2 * np.exp(-d2 / (2 * length ** 2))


def unit_posterior(train: np.ndarray, kernel: np.ndarray, alpha: np.ndarray, inverse: np.ndarray,
                   u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian process's posterior mean and standard deviation of the ridge fit's residual (log unit) at unit
    features u (N, F), given its training inputs, kernel (length, sf, noise sn), K^-1 r (alpha) and K^-1."""
    cross = unit_kernel(u, train, kernel)
    var = kernel[1] ** 2 + kernel[2] ** 2 - np.einsum("ij,jk,ik->i", cross, inverse, cross)
    return cross @ alpha, np.sqrt(np.maximum(var, 1e-12))


@dataclass
class Prediction:
    """Latencies (ms) of query architectures and their calibrated 90 % interval."""

    ms: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """The upper half-width as a standard deviation (what the search's exploration counts in)."""
        return (self.high - self.ms) / Z90


class LatencyPredictor(nn.Module):
    def __init__(self, decisions: list[int], columns: list[str], hidden: int = 256, set_dim: int = 64,
                 descriptor_dim: int = 32):
        super().__init__()
        self.config = dict(decisions=list(decisions), columns=list(columns), hidden=hidden, set_dim=set_dim,
                           descriptor_dim=descriptor_dim)
        e, m, t = sum(decisions), len(columns), max(decisions)
        kinds = np.concatenate([np.arange(d) for d in decisions])
        self.register_buffer("kind_matrix", torch.as_tensor(np.eye(t, dtype=np.float32)[kinds]))  # choice -> op type
        self.register_buffer("choice_flops", torch.zeros(e))  # FLOPs of each choice, in units of the median network's
        self.register_buffer("choice_params", torch.zeros(e))  # and its parameters
        self.register_buffer("basis_scale", torch.ones(m))
        self.register_buffer("basis_offset", torch.zeros(m))
        self.register_buffer("cost_scale", torch.ones(len(COSTS)))
        self.register_buffer("cost_offset", torch.zeros(len(COSTS)))
        # the zero-shot unit: ridge from the descriptors to the log mean latency (ms), plus a Gaussian process over
        # the basis devices for its residual
        self.register_buffer("unit_weights", torch.zeros(DESCRIPTOR_DIM + 1, dtype=torch.float64))
        self.register_buffer("unit_kernel", torch.tensor([4.0, 0.5, 0.1], dtype=torch.float64))  # length, sf, sn
        self.register_buffer("unit_alpha", torch.zeros(m, dtype=torch.float64))
        self.register_buffer("unit_inverse", torch.zeros(m, m, dtype=torch.float64))
        self.register_buffer("unit_spread", torch.tensor(1.0, dtype=torch.float64))  # std of their log units
        self.register_buffer("calibration", torch.ones(len(CALIBRATION_SUPPORTS)))
        self.register_buffer("column_descriptors", torch.zeros(m, DESCRIPTOR_DIM))  # each basis device's profile
        self.sizes = [1, m, len(COSTS), t, t, t, e]
        p = sum(self.sizes)
        self.basis = nn.Sequential(nn.Linear(e, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                   nn.Linear(hidden, m))
        self.cost_net = nn.Sequential(nn.Linear(e, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                      nn.Linear(128, len(COSTS)))
        self.descriptors = DescriptorEncoder(descriptor_dim)
        self.support = SetEncoder(p, set_dim)
        self.hyper = nn.Sequential(nn.Linear(descriptor_dim, 128), nn.ReLU(), nn.Linear(128, p + 1))
        self.query = nn.Linear(descriptor_dim, 32)  # attention of the device over the basis devices
        self.key = nn.Linear(descriptor_dim, 32)
        self.widths = nn.Sequential(nn.Linear(descriptor_dim + set_dim, 64), nn.ReLU(),
                                    nn.Linear(64, len(BLOCKS) + 1 + PRIORS))
        for last in (self.hyper[-1], self.widths[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.log_var = nn.Parameter(torch.log(torch.tensor(PRIOR_VAR)))
        self.log_noise = nn.Parameter(torch.tensor(float(np.log(0.05))))
        self.width_logits = nn.Parameter(torch.zeros(PRIORS))  # the learned hyperprior over the priors
        self.reads_support_set = True  # False: the set encoder's output is its empty-set vector (an ablation)

    @property
    def columns(self) -> list[str]:
        return self.config["columns"]

    # ---- architecture features -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(..., P) head features of encodings x (..., E): [1, devices, costs, op_flops, op_params, op_count,
        choices]."""
        n = len(self.config["decisions"])
        devices = torch.exp(self.basis(x) * self.basis_scale + self.basis_offset)
        costs = torch.exp(self.cost_net(x) * self.cost_scale + self.cost_offset)
        op_flops = (x * self.choice_flops) @ self.kind_matrix
        op_params = (x * self.choice_params) @ self.kind_matrix
        op_count = x @ self.kind_matrix / n
        return torch.cat([torch.ones_like(x[..., :1]), devices, costs, op_flops, op_params, op_count, x / n], dim=-1)

    def column_mask(self, batch: int, masked: list[list[int]] | None = None) -> torch.Tensor:
        """(batch, P) feature mask: 1 everywhere but the device columns listed per row in `masked`."""
        mask = torch.ones(batch, sum(self.sizes))
        for row, columns in enumerate(masked or []):
            mask[row, [1 + c for c in columns]] = 0.0
        return mask

    # ---- the generated prior and its closed-form update ------------------------------------------------------
    def prior(self, descriptors: torch.Tensor, mask: torch.Tensor, support: torch.Tensor, support_y: torch.Tensor):
        """Prior mean (B, P) and variance (B, P) of each device's head, its relative noise level (B,) and the
        log-hyperprior over the priors the support chooses among (B, PRIORS). The mean comes from the
        descriptors; the widths, noise and hyperprior
        also from the support set (meta-training showed that a support-set shift of the mean does not
        generalise from nine devices)."""
        b, k = support.shape[:2]
        m = self.sizes[1]
        present = torch.ones(b, k, dtype=torch.bool)
        log_y = torch.log(support_y.clamp(min=1e-6))
        device = self.descriptors(descriptors)
        out = self.hyper(device)
        keys = self.key(self.descriptors(self.column_descriptors))  # (M, 32)
        logits = out[:, 1:1 + m] + self.query(device) @ keys.T / keys.shape[1] ** 0.5
        rest = torch.cat([out[:, :1], torch.zeros(b, m), out[:, 1 + m:-1]], dim=1)
        log_scale = out[:, -1]
        encoded = self.support(support, log_y, present) if self.reads_support_set else self.support.empty.expand(b, -1)
        widths = self.widths(torch.cat([device, encoded], dim=1))
        log_var, log_noise, width_logits = widths[:, :len(BLOCKS)], widths[:, len(BLOCKS)], widths[:, -PRIORS:]
        columns = mask[:, 1:1 + m]
        weights = torch.softmax(logits.masked_fill(columns == 0, -1e9), dim=1) * torch.exp(log_scale)[:, None]
        mean = rest + torch.cat([torch.zeros(b, 1), weights, torch.zeros(b, sum(self.sizes) - 1 - m)], dim=1)
        block_var = torch.exp(self.log_var + log_var)  # (B, blocks)
        var = torch.repeat_interleave(block_var, torch.tensor(self.sizes), dim=1) * mask
        return mean * mask, var, torch.exp(self.log_noise + log_noise), self.width_logits + width_logits

    def distribution(self, descriptors: torch.Tensor, mask: torch.Tensor, support: torch.Tensor,
                     support_y: torch.Tensor, query: torch.Tensor):
        """Posterior predictive mean and std (B, Q) of relative latencies of query features (B, Q, P), after the
        support features (B, K, P) with relative latencies (B, K); also the posterior head weights (B, P).

        With a support set, the support chooses the prior: the posteriors under the generated prior scaled by
        each of `WIDTHS`, under a generic one (a flat latency, additive per operation type: `GENERIC_VAR`
        scaled by each of `GENERIC_WIDTHS`), and under each twin hypothesis (`_hypotheses`) are averaged,
        weighted by how well each explains the support (its marginal likelihood, times a hyperprior). A device
        like the meta-training ones keeps its tight generated prior; one unlike all of them gets the generic one;
        one that is an affine copy of a basis device gets that device's column; a device noisier or quieter than
        the generated noise level says gets the level the support supports. After meta-training, each
        hypothesis also comes with its worst-explained support points (at most one per `OUTLIER_EVERY`, each
        beyond `OUTLIER_Z` leave-one-out standard deviations) taken for outliers, at a prior cost of `OUTLIER_P`
        each: one wild timing no longer makes a prior wide enough to follow it the best explanation."""
        support, query = support * mask[:, None], query * mask[:, None]
        mean, var, noise, hyperprior = self.prior(descriptors, mask, support, support_y)
        if support.shape[1] == 0:
            q_mean = (query @ mean[..., None])[..., 0]
            q_var = (query ** 2 * var[:, None]).sum(-1)
            return q_mean, torch.sqrt(q_var.clamp(min=1e-10) + (noise[:, None] * q_mean.clamp(min=FLOOR)) ** 2), mean
        priors, hyperprior = self._hypotheses(mean, var, mask, hyperprior, self.resemblance(descriptors, mask))
        parts, evidence, logits = [], [], []
        misfits = []  # each variant's sum of squared leave-one-out residuals (in its standard deviations)
        limit = support.shape[1] // OUTLIER_EVERY if not self.training else 0
        for h, (m, v, scale, factor) in enumerate(priors):
            level = noise * factor
            answer = self._posterior(m, v, support, support_y, level, scale=scale, loo=not self.training)
            variants = [(answer, hyperprior[:, h])]
            outlying = _outliers(answer[3], limit) if limit else None
            if outlying is not None and outlying.any():  # the same hypothesis, its worst-explained points outliers
                count = outlying.sum(1)
                robust = self._posterior(m, v, support, support_y, level, OUTLIER_STD ** 2 * outlying, scale,
                                         loo=True)
                variants.append((robust, (hyperprior[:, h] + count * np.log(OUTLIER_P / (1 - OUTLIER_P)))
                                 .masked_fill(count == 0, -1e9)))
            for (head, reduction, ev, z), logit in variants:
                parts.append((m, v, scale, level, head, reduction))
                evidence.append(ev)
                logits.append(logit)
                misfits.append((z ** 2).sum(1) if z is not None else torch.zeros_like(ev))
        weight = torch.softmax(torch.stack(evidence, 1) + torch.stack(logits, 1), dim=1)  # (B, hypotheses)
        w = weight.double()
        m, v, scale, level, heads, reductions = zip(*parts)
        heads, means = torch.stack(heads, 1), torch.stack(m, 1).double()  # (B, hypotheses, P)
        head = (w[..., None] * heads).sum(1)
        # the mixture's predictive variance: each posterior's (its prior's variance, less what the support explains,
        # plus its noise), and the spread of the hypotheses' predictions; all (B, Q)
        level2 = torch.stack(level, 1).double() ** 2  # (B, hypotheses)
        q = query.double()
        q_mean = (q @ head[..., None])[..., 0]
        along_heads = q @ heads.transpose(1, 2)  # (B, Q, hypotheses)
        along_means = q @ means.transpose(1, 2)
        prior_var = (q ** 2 @ (w[..., None] * torch.stack(v, 1).double()).sum(1)[..., None])[..., 0] + \
            (w[:, None] * torch.tensor(scale, dtype=torch.float64) * along_means ** 2).sum(-1)
        noise_var = (w[:, None] * level2[:, None] * along_heads ** 2).sum(-1) + \
            (w * level2).sum(1)[:, None] * (FLOOR ** 2 - q_mean ** 2).clamp(min=0)  # at least FLOOR's noise
        spread = (w[:, None] * (along_heads - q_mean[..., None]) ** 2).sum(-1)
        q_var = prior_var - _explained(w, reductions, q) + noise_var + spread
        if not self.training:  # the noise level's scale, learned from how well the support predicts itself
            k = support.shape[1]
            misfit = (weight * torch.stack(misfits, 1)).sum(1).double()
            q_var = q_var * ((NOISE_PRIOR_POINTS + misfit) / (NOISE_PRIOR_POINTS + k))[:, None]
        return q_mean.float(), torch.sqrt(q_var.clamp(min=1e-10)).float(), head.float()

    @staticmethod
    def _posterior(m: torch.Tensor, v: torch.Tensor, support: torch.Tensor, support_y: torch.Tensor,
                   noise: torch.Tensor, outlier: torch.Tensor | float = 0.0, scale: float = 0.0, loo: bool = False):
        """Bayesian linear regression of the support under the prior N(m, C), C = diag(v) + scale m m^T (`scale`:
        the variance of the head's size along its mean), with noise proportional to latency at the relative level
        `noise` (B,), plus a relative variance `outlier` (B, K) on the points taken for outliers, in double
        precision (a tight prior makes the K x K solves ill-conditioned): the posterior head (B, P), the
        reduction R (B, K, P) of its covariance (C - R^T R), the log evidence (B,) and, with `loo`, each support
        point's leave-one-out residual in standard deviations (B, K; else None)."""
        s_prior = (support @ m[..., None])[..., 0]
        noise2 = (noise[:, None] ** 2 + outlier) * s_prior.clamp(min=FLOOR) ** 2
        md, sd = m.double(), support.double()
        sp = (sd @ md[..., None])[..., 0]  # S m in double: C's rank-one term then stays symmetric (a float32 S m
        # left it indefinite by 1e-6 where diag(v) is tiny, and the Cholesky factorisation failed)
        sc = sd * v.double()[:, None] + scale * sp[:, :, None] * md[:, None, :]  # S C, (B, K, P)
        jitter = 1e-6 * torch.eye(support.shape[1], dtype=torch.float64)
        chol = torch.linalg.cholesky(sc @ sd.transpose(1, 2) + torch.diag_embed(noise2.double()) + jitter)
        residual = (support_y.double() - sp)[..., None]
        alpha = torch.cholesky_solve(residual, chol)  # (B, K, 1)
        head = md + (sc.transpose(1, 2) @ alpha)[..., 0]
        reduction = torch.linalg.solve_triangular(chol, sc, upper=False)
        log_det = torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)
        evidence = (-0.5 * (residual * alpha).sum((1, 2)) - log_det).float()
        z = (alpha[..., 0] / torch.diagonal(torch.cholesky_inverse(chol), dim1=1, dim2=2).sqrt()).float() \
            if loo else None
        return head, reduction, evidence, z

    def _hypotheses(self, mean: torch.Tensor, var: torch.Tensor, mask: torch.Tensor, hyperprior: torch.Tensor,
                    resemblance: torch.Tensor):
        """The priors (mean, variance, each (B, P), and the variance along the mean, `SCALE_VAR` for the generated
        prior after meta-training) that a support set chooses among, and their log-hyperprior
        (B, hypotheses): the generated prior at each of `WIDTHS`; the generic one at each of `GENERIC_WIDTHS`;
        each unmasked basis device as a twin; after meta-training, each generated and generic prior at every noise
        factor of `NOISE_FACTORS` (each prior's fourth item: its factor of the noise level). The twins share
        `TWIN_MASS` of the hyperprior (`TWIN_RESEMBLANCE` of it by `resemblance` (B, M), the rest evenly), the
        generated and generic priors the rest (split as generated, after meta-training with at least `GENERIC_MASS`
        of it on the generic ones, then evenly over the noise factors). The twins are left out while the
        hypernetwork is meta-trained (train mode): with them, every episode of a device whose twin is in the basis
        would be answered by the twin and teach the hypernetwork nothing (measured on the effnet table, 3 meta-training
        seeds: K = 20 0.989 with them in meta-training, 0.996 without)."""
        m = self.sizes[1]
        columns = mask[:, 1:1 + m]
        generic_mean = torch.zeros_like(mean)
        generic_mean[:, 0] = 1.0
        generic_var = torch.repeat_interleave(torch.tensor(GENERIC_VAR), torch.tensor(self.sizes)) * mask
        scale = SCALE_VAR if not self.training else 0.0
        factors = NOISE_FACTORS if not self.training else (1.0,)
        priors = [(p, v, s, f) for p, v, s in [(mean, w * var, scale) for w in WIDTHS] +
                  [(generic_mean, w * generic_var, 0.0) for w in GENERIC_WIDTHS] for f in factors]
        learned = torch.log_softmax(hyperprior, dim=1)
        if not self.training:  # the generic priors keep GENERIC_MASS whatever the hypernetwork says
            generic = torch.tensor([0.0] * len(WIDTHS) + [1.0 / len(GENERIC_WIDTHS)] * len(GENERIC_WIDTHS))
            learned = torch.log((1 - GENERIC_MASS) * torch.exp(learned) + GENERIC_MASS * generic)
        learned = learned + np.log((1 - TWIN_MASS) / len(factors))
        logits = [torch.repeat_interleave(learned, len(factors), dim=1)]
        present = columns.sum(1).clamp(min=1)
        share = (1 - TWIN_RESEMBLANCE) / present[:, None] + TWIN_RESEMBLANCE * resemblance
        for j in range(m if not self.training else 0):
            twin_mean, twin_var = torch.zeros_like(mean), torch.zeros_like(var)
            twin_mean[:, 1 + j] = 1.0
            twin_var[:, 0], twin_var[:, 1 + j] = TWIN_VAR
            priors.append((twin_mean * mask, twin_var * mask, 0.0, 1.0))
            logits.append((np.log(TWIN_MASS) + torch.log(share[:, j].clamp(min=1e-12)))
                          .masked_fill(columns[:, j] == 0, -1e9)[:, None])
        return priors, torch.cat(logits, dim=1)

    def forward(self, descriptors, mask, support, support_y, query):
        mean, std, _ = self.distribution(descriptors, mask, support, support_y, query)
        return mean, std

    def without_set_encoder(self) -> "LatencyPredictor":
        """A copy whose set encoder reads no support set (what `bench latency`'s ablation scores)."""
        copy = deepcopy(self)
        copy.reads_support_set = False
        return copy

    # ---- answers in milliseconds -----------------------------------------------------------------------------
    def _unit_features(self, descriptors: torch.Tensor) -> torch.Tensor:
        n = len(self.descriptors.mean)
        values, mask = descriptors[:, :n], descriptors[:, n:2 * n]
        values = (values - self.descriptors.mean) / self.descriptors.std * mask
        return torch.cat([values, descriptors[:, n:], torch.ones(len(descriptors), 1)], dim=1)

    def zero_shot_unit(self, descriptors: np.ndarray) -> tuple[float, float]:
        """The device's predicted mean latency (ms) over the benchmark's architectures, from its descriptors, and
        the standard deviation of its log. A ridge fit on the descriptors answers for every device, with its
        leave-one-device-out error; a Gaussian process over the basis devices corrects its residual near them,
        so a device whose profile is close to a basis device's gets its unit and a narrow interval, and a device
        unlike all of them the ridge's answer and error (a linear kernel, chosen by the same leave-one-out on
        NB201's 13 devices, put a Raspberry Pi 4 at 102 ms and an A100 at 2.7 ms: those 13 columns all have
        near-twins, so they cannot judge extrapolation). One without a profile gets at least the spread of the
        basis devices' units."""
        u = self._unit_features(torch.as_tensor(np.asarray(descriptors, np.float32)[None])).double().numpy()
        inverse, alpha = self.unit_inverse.numpy(), self.unit_alpha.numpy()
        residual, sigma = unit_posterior(self.unit_basis(), self.unit_kernel.numpy(), alpha, inverse, u)
        sigma = float(sigma[0])
        if not np.asarray(descriptors)[len(DESCRIPTORS):2 * len(DESCRIPTORS)].any():
            # no profile: its masked descriptors say nothing of the device; at least the spread of the basis
            # devices' (log) units
            sigma = max(sigma, float(self.unit_spread))
        return float(np.exp(u[0] @ self.unit_weights.numpy() + residual[0])), sigma

    def resemblance(self, descriptors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, M) how much each device resembles each unmasked basis device, from their profiles: a softmax of
        minus the squared distance between standardised descriptors over 2 `RESEMBLANCE_LENGTH`^2 (each validation
        Titan X is 0.07 from its 1080 Ti at the same batch size, 1-9 from the next one)."""
        device = self._unit_features(descriptors)[:, None, :-1]
        basis = self._unit_features(self.column_descriptors)[None, :, :-1]
        closeness = -((device - basis) ** 2).sum(-1) / (2 * RESEMBLANCE_LENGTH ** 2)
        return torch.softmax(closeness.masked_fill(mask[:, 1:1 + self.sizes[1]] == 0, -1e9), dim=1)

    def unit_basis(self) -> np.ndarray:
        """(M, F) unit features of the basis devices (the Gaussian process's training inputs)."""
        return self._unit_features(self.column_descriptors).double().numpy()

    @staticmethod
    def zero_shot_spread(mean: np.ndarray, std: np.ndarray, unit_sigma: float) -> np.ndarray:
        """The log-space standard deviation of a zero-shot prediction (relative mean, std) whose unit's log has
        the standard deviation `unit_sigma`: lognormal, since the unit is unknown too."""
        return np.sqrt((std / np.maximum(mean, FLOOR)) ** 2 + unit_sigma ** 2)

    def calibration_factor(self, k: int) -> float:
        return float(np.interp(k, CALIBRATION_SUPPORTS, self.calibration.numpy()))

    @torch.no_grad()
    def _relative(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray,
                  query_x: np.ndarray):
        self.eval()
        k = len(support_ms)
        unit, unit_sigma = (float(np.mean(support_ms)), 0.0) if k else self.zero_shot_unit(descriptors)
        e = sum(self.config["decisions"])
        sx = self.features(torch.as_tensor(np.asarray(support_x, np.float32).reshape(1, k, e)))
        sy = torch.as_tensor(np.asarray(support_ms, np.float32).reshape(1, k) / unit)
        qx = self.features(torch.as_tensor(np.asarray(query_x, np.float32).reshape(1, -1, e)))
        desc = torch.as_tensor(np.asarray(descriptors, np.float32)[None])
        mean, std, weights = self.distribution(desc, self.column_mask(1), sx, sy, qx)
        return mean[0].double().numpy(), std[0].double().numpy(), weights[0].double().numpy(), unit, unit_sigma

    def head(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray) -> tuple[np.ndarray, float]:
        """The device's generated head after its support set (P,), and the unit (ms) of its relative latencies."""
        _, _, weights, unit, _ = self._relative(descriptors, support_x, support_ms,
                                                np.zeros((0, sum(self.config["decisions"]))))
        return weights, unit

    def predict(self, descriptors: np.ndarray, support_x: np.ndarray, support_ms: np.ndarray,
                query_x: np.ndarray) -> Prediction:
        """Latency (ms) of each query architecture with its calibrated 90 % interval, after the support set
        (zero-shot from the descriptors without one)."""
        mean, std, _, unit, unit_sigma = self._relative(descriptors, support_x, support_ms, query_x)
        k = len(support_ms)
        z = Z90 * self.calibration_factor(k)
        positive = np.maximum(mean, FLOOR)
        if k:
            return Prediction(positive * unit, np.minimum(np.maximum(mean - z * std, FLOOR), positive) * unit,
                              (positive + z * std) * unit)
        spread = self.zero_shot_spread(mean, std, unit_sigma)
        ms = positive * unit
        return Prediction(ms, ms * np.exp(-z * spread), ms * np.exp(z * spread))
