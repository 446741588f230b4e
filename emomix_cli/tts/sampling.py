"""Reverse-time samplers for the Grad-TTS SDE, each a plain function of a score callable.

Forward SDE: ``dX = ½(μ − X)β_t dt + √β_t dW``, ``β_t = β0 + (β1 − β0)t``. Every sampler takes
``score_fn(x[B,80,T], t: float) -> s[B,80,T]`` (a model, or a :class:`.mixing.MixedOutput`),
starts at ``x_1 = μ + z/τ`` (τ = temperature) and returns ``x_0`` [B,80,T] (masked).

- ``euler``: Grad-TTS's probability-flow ODE with N midpoint steps, ``t_i = 1 − (i+½)/N``:
  ``x ← (x − ½(μ − x − s)β_t h)·mask``, h = 1/N (official ``reverse_diffusion``, stoc=False).
- ``euler-sde``: the stochastic variant (official stoc=True):
  ``x ← (x − (½(μ − x) − s)β_t h − √(β_t h) z)·mask``.
- ``heun``: second-order (trapezoidal predictor-corrector) on the same ODE; 2 score calls/step.
- ``dpm2m``: DPM-Solver++(2M), an exponential integrator of the same ODE. With y = x − μ the
  drift is linear in y apart from the score (``dy/dt = −½β(y + s)``), so the linear part is
  solved exactly and only the data prediction ``D = (y + σ²s)/α`` is extrapolated
  (second order, one score call per step). Steps are uniform in log-SNR from t = 1 to
  ``t_end``. This is the few-step solver; see ``benchmarks/bench_synthesis.py`` and the toy
  test in ``tests/test_sampling.py``.

``SOLVERS`` maps CLI names to these functions (all share the signature of :func:`euler`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import EmomixError
from .sde import BETA_MAX, BETA_MIN, beta, cumulative_beta, randn_like  # β: floats too

ScoreFn = Callable[[torch.Tensor, float], torch.Tensor]

T_END = 1e-3  # where the fast solvers stop; the remaining noise std is ~0.008
# the temperature τ every solver (and synthesis) takes when none is given or stored
DEFAULT_TEMPERATURE = 1.0


def initial_noise(mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                  generator: torch.Generator | None) -> torch.Tensor:
    """x_1 = (μ + z/τ)·mask, z ~ N(0, I) drawn from ``generator``."""
    z = randn_like(mu, generator)
    return (mu + z / temperature) * mask


def _start(mu, mask, temperature, generator, x_start):
    return initial_noise(mu, mask, temperature, generator) if x_start is None else x_start * mask


def euler(score_fn: ScoreFn, mu: torch.Tensor, mask: torch.Tensor, n_steps: int,
          temperature: float = DEFAULT_TEMPERATURE, generator: torch.Generator | None = None,
          stochastic: bool = False, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX,
          x_start: torch.Tensor | None = None) -> torch.Tensor:
    """Grad-TTS reverse diffusion (Euler, midpoint times); ``x_start`` overrides x_1 (tests)."""
    check_steps(n_steps)
    h = 1.0 / n_steps
    x = _start(mu, mask, temperature, generator, x_start)
    for i in range(n_steps):
        t = 1.0 - (i + 0.5) * h
        beta_t = beta(t, beta_min, beta_max)
        score = score_fn(x, t)
        if stochastic:
            z = randn_like(x, generator)
            dx = (0.5 * (mu - x) - score) * beta_t * h + math.sqrt(beta_t * h) * z
        else:
            dx = 0.5 * (mu - x - score) * beta_t * h
        x = (x - dx) * mask
    return x


def euler_sde(score_fn: ScoreFn, mu, mask, n_steps: int, temperature: float = DEFAULT_TEMPERATURE,
              generator: torch.Generator | None = None, beta_min: float = BETA_MIN,
              beta_max: float = BETA_MAX, x_start: torch.Tensor | None = None) -> torch.Tensor:
    """Grad-TTS's stochastic reverse SDE (``stoc=True``)."""
    return euler(score_fn, mu, mask, n_steps, temperature, generator, True, beta_min, beta_max,
                 x_start)


def heun(score_fn: ScoreFn, mu, mask, n_steps: int, temperature: float = DEFAULT_TEMPERATURE,
         generator: torch.Generator | None = None, beta_min: float = BETA_MIN,
         beta_max: float = BETA_MAX, x_start: torch.Tensor | None = None,
         t_end: float = T_END) -> torch.Tensor:
    """Heun's method on the probability-flow ODE, uniform t from 1 to ``t_end`` (2N score calls)."""
    check_steps(n_steps)

    def velocity(x, t):  # dx/dt of the probability-flow ODE
        return 0.5 * (mu - x - score_fn(x, t)) * beta(t, beta_min, beta_max)

    x = _start(mu, mask, temperature, generator, x_start)
    times = torch.linspace(1.0, t_end, n_steps + 1).tolist()
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        d = velocity(x, t)
        x_pred = (x + (t_next - t) * d) * mask
        x = (x + (t_next - t) * 0.5 * (d + velocity(x_pred, t_next))) * mask
    return x


def _alpha_sigma(t: float, beta_min: float, beta_max: float) -> tuple[float, float]:
    """Mean coefficient α_t = e^{−½∫β} and noise std σ_t = √(1 − α_t²) (= √λ_t)."""
    cumulative = cumulative_beta(t, beta_min, beta_max)
    return math.exp(-0.5 * cumulative), math.sqrt(-math.expm1(-cumulative))


def _log_snr(t: float, beta_min: float, beta_max: float) -> float:
    alpha, sigma = _alpha_sigma(t, beta_min, beta_max)
    return math.log(alpha / sigma)


def _time_of_log_snr(lam: float, beta_min: float, beta_max: float) -> float:
    """Inverse of :func:`_log_snr`: solve ½(β1−β0)t² + β0 t = log(1 + e^{−2λ})."""
    cumulative = math.log1p(math.exp(-2.0 * lam))
    slope = beta_max - beta_min
    if slope == 0:
        return cumulative / beta_min
    return (-beta_min + math.sqrt(beta_min**2 + 2.0 * slope * cumulative)) / slope


def dpm2m(score_fn: ScoreFn, mu, mask, n_steps: int, temperature: float = DEFAULT_TEMPERATURE,
          generator: torch.Generator | None = None, beta_min: float = BETA_MIN,
          beta_max: float = BETA_MAX, x_start: torch.Tensor | None = None,
          t_end: float = T_END) -> torch.Tensor:
    """DPM-Solver++(2M) on the probability-flow ODE (N score calls), log-SNR-uniform steps.

    In y = x − μ: ``y_t = (σ_t/σ_s) y_s + α_t(1 − e^{−h}) D``, h = λ_t − λ_s (log-SNR),
    D = the data prediction at s, extrapolated with the one before it from the second step on.
    """
    check_steps(n_steps)
    lam_start, lam_end = (_log_snr(t, beta_min, beta_max) for t in (1.0, t_end))
    lams = torch.linspace(lam_start, lam_end, n_steps + 1).tolist()
    times = [1.0] + [_time_of_log_snr(lam, beta_min, beta_max) for lam in lams[1:-1]] + [t_end]
    y = _start(mu, mask, temperature, generator, x_start) - mu
    last = None  # the last step's (data prediction, its step size in λ)
    for i in range(n_steps):
        s, t = times[i], times[i + 1]
        alpha_s, sigma_s = _alpha_sigma(s, beta_min, beta_max)
        alpha_t, sigma_t = _alpha_sigma(t, beta_min, beta_max)
        h = lams[i + 1] - lams[i]
        denoised = (y + sigma_s**2 * score_fn((y + mu) * mask, s)) / alpha_s
        estimate = denoised
        if last is not None:
            r = last[1] / h
            estimate = denoised + (denoised - last[0]) / (2.0 * r)
        y = ((sigma_t / sigma_s) * y - alpha_t * math.expm1(-h) * estimate) * mask
        last = (denoised, h)
    return (y + mu) * mask


def check_steps(n_steps: int) -> None:
    if int(n_steps) != n_steps or n_steps < 1:
        raise EmomixError(f"steps must be a positive integer, got {n_steps}; e.g. --steps 25")


SOLVERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": euler,
    "euler-sde": euler_sde,
    "heun": heun,
    "dpm2m": dpm2m,
}
