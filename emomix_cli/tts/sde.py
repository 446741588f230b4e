"""The Grad-TTS forward SDE and the training losses, as small pure functions.

Forward SDE (T = 1):  ``dX_t = ½ (μ − X_t) β_t dt + √β_t dW_t``,  ``β_t = β0 + (β1 − β0) t``.

Its marginal given ``X_0`` is Gaussian::

    X_t | X_0 ~ N(ρ(X_0, t), λ_t I)
    ρ(X_0, t) = a_t X_0 + (1 − a_t) μ,        a_t = exp(−½ ∫_0^t β_s ds)
    λ_t       = 1 − exp(−∫_0^t β_s ds) = 1 − a_t²

so the exact score of the marginal is ``∇ log p(X_t | X_0) = −(X_t − ρ) / λ_t`` and, writing
``X_t = ρ + √λ_t ε``, the score-matching target is ``−ε / √λ_t``.

Shapes: ``x0, mu, xt: [B, n_feats, T]``, ``mask: [B, 1, T]``, ``t: [B]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BETA_MIN = 0.05
BETA_MAX = 20.0


def _expand(t: Tensor, like: Tensor) -> Tensor:
    """``t [B]`` viewed as ``[B, 1, ..., 1]`` to broadcast against ``like``."""
    return t.reshape(t.shape[0], *([1] * (like.dim() - 1))).to(like.dtype)


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (on its device) if given."""
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device)
    return noise.to(x.device)


def beta(t: Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """Noise schedule ``β_t = β0 + (β1 − β0) t``."""
    return beta_min + (beta_max - beta_min) * t


def cumulative_beta(t: Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """``∫_0^t β_s ds = β0 t + ½ (β1 − β0) t²``."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t**2


def signal_scale(t: Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """``a_t = exp(−½ ∫_0^t β)``: how much of ``X_0`` is left in the mean of ``X_t``."""
    return torch.exp(-0.5 * cumulative_beta(t, beta_min, beta_max))


def marginal_mean_var(
    x0: Tensor, mu: Tensor, t: Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX
) -> tuple[Tensor, Tensor]:
    """Mean ``ρ = a_t x0 + (1 − a_t) μ`` ``[B, F, T]`` and variance ``λ_t = 1 − a_t²`` ``[B, 1, 1]``."""
    scale = signal_scale(_expand(t, x0), beta_min, beta_max)
    mean = scale * x0 + (1.0 - scale) * mu
    var = 1.0 - scale**2
    return mean, var


def forward_diffusion(
    x0: Tensor,
    mask: Tensor,
    mu: Tensor,
    t: Tensor,
    generator: torch.Generator | None = None,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> tuple[Tensor, Tensor]:
    """Sample ``x_t = ρ + √λ_t z`` with ``z ~ N(0, I)``; returns ``(x_t · mask, z · mask)``."""
    mean, var = marginal_mean_var(x0, mu, t, beta_min, beta_max)
    z = randn_like(x0, generator)
    xt = mean + z * torch.sqrt(var)
    return xt * mask, z * mask


def diffusion_loss(score: Tensor, z: Tensor, var: Tensor, mask: Tensor) -> Tensor:
    """Grad-TTS score loss ``Σ_mask ‖s_θ √λ_t + z‖² / (Σ mask · n_feats)``.

    ``score, z: [B, F, T]``; ``var = λ_t: [B, 1, 1]``; ``mask: [B, 1, T]``.
    """
    n_feats = score.shape[1]
    error = (score * torch.sqrt(var) + z) * mask
    return torch.sum(error**2) / (torch.sum(mask) * n_feats)


def prior_loss(y: Tensor, mu_y: Tensor, mask: Tensor) -> Tensor:
    """Negative log-likelihood of ``y`` under ``N(μ_y, I)`` per masked element.

    ``Σ_mask ½((y − μ)² + log 2π) / (Σ mask · n_feats)``.
    """
    n_feats = y.shape[1]
    nll = 0.5 * ((y - mu_y) ** 2 + math.log(2 * math.pi)) * mask
    return torch.sum(nll) / (torch.sum(mask) * n_feats)


def duration_loss(logw: Tensor, logw_target: Tensor, lengths: Tensor) -> Tensor:
    """``Σ (log w − log w*)² / Σ lengths`` (both log-durations already masked)."""
    return torch.sum((logw - logw_target) ** 2) / torch.sum(lengths)


def denoised_estimate(
    xt: Tensor,
    score: Tensor,
    mu: Tensor,
    t: Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
    min_scale: float = 1e-4,
) -> Tensor:
    """Tweedie's one-step estimate of ``X_0`` from ``x_t`` and the score.

    ``E[X_0 | x_t] = (x_t + λ_t s − (1 − a_t) μ) / a_t`` with ``a_t = exp(−½∫β)``: from
    ``E[ρ | x_t] = x_t + λ_t ∇log p(x_t)`` and ``ρ = a_t X_0 + (1 − a_t) μ``.

    Numerical care: ``a_t`` falls to ≈ 6.7e-3 at t = 1 (β1 = 20), so any error in the score is
    amplified by up to ~150×. The denominator is clamped at ``min_scale`` (only bites for t or
    β outside the usual range); callers that train on the estimate should weight it by
    :func:`x0_weight`, which is ``a_t²`` and optionally zero above a cut-off time.
    """
    scale = signal_scale(_expand(t, xt), beta_min, beta_max)
    var = 1.0 - scale**2
    return (xt + var * score - (1.0 - scale) * mu) / scale.clamp_min(min_scale)


def x0_weight(
    t: Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
    t_max: float | None = None,
) -> Tensor:
    """Per-item weight ``[B]`` for losses on :func:`denoised_estimate`.

    ``a_t² = exp(−∫β) = 1 − λ_t``: the share of ``X_t``'s variance that is still signal; it
    goes from 1 at t = 0 to ≈ 4.4e-5 at t = 1, cancelling the ``1 / a_t`` amplification of the
    score error. With ``t_max`` the weight is also 0 for ``t > t_max`` (a hard cut-off, e.g.
    0.5, where a_t ≈ 0.28).
    """
    weight = torch.exp(-cumulative_beta(t, beta_min, beta_max))
    if t_max is not None:
        weight = weight * (t <= t_max).to(weight.dtype)
    return weight
