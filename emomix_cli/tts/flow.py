"""The flow1d decoder family: OT conditional flow matching (Matcha-TTS) as small pure functions,
its ODE solvers, and :class:`FlowDecoder`, the family's module.

Time convention (Matcha-TTS): t = 0 is noise, t = 1 is data. With σ = ``sigma_min``:

    x_t = (1 − (1 − σ) t) z + t x₁,   z ~ N(0, I)           (the OT path)
    u_t = x₁ − (1 − σ) z                                     (its velocity, the regression target)
    x̂₁ = (1 − σ) x_t + (1 − (1 − σ) t) v                     (the one-step estimate of x₁ from v)

x̂₁ is exact when v = u_t (solve the two lines above for x₁). The decoder conditions on μ (the
encoder's prior) but, as in Matcha-TTS, the path starts from zero-mean noise.

Solvers integrate ``dx/dt = v(x, t)`` from t = 0 to 1 on a uniform grid; each takes
``velocity_fn(x[B,80,T], t: float) -> v`` (a model, or a :class:`.mixing.MixedOutput`), starts at
``x_0 = z/τ`` (τ = temperature, the same meaning as in the score family: the noise's std is 1/τ;
Matcha-TTS's ``temperature`` 0.667 is τ = 1.5) and returns x₁ (masked):

- ``euler``: ``x ← x + h v(x, t)`` (Matcha-TTS's solver; N calls);
- ``midpoint``: ``x ← x + h v(x + ½h v(x, t), t + ½h)`` (2N calls, second order);
- ``heun``: trapezoidal predictor-corrector (2N calls, second order).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .layers import FamilyDecoder
from .sampling import DEFAULT_TEMPERATURE, check_steps
from .sde import randn_like
from .unet1d import FlowEstimator1d

VelocityFn = Callable[[Tensor, float], Tensor]
SIGMA_MIN = 1e-4


def _expand(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(t.shape[0], *([1] * (like.dim() - 1))).to(like.dtype)


def interpolate(x1: Tensor, z: Tensor, t: Tensor, sigma_min: float = SIGMA_MIN) -> Tensor:
    """``x_t = (1 − (1 − σ) t) z + t x₁`` for ``t [B]``."""
    t = _expand(t, x1)
    return (1.0 - (1.0 - sigma_min) * t) * z + t * x1


def target_velocity(x1: Tensor, z: Tensor, sigma_min: float = SIGMA_MIN) -> Tensor:
    """``u = x₁ − (1 − σ) z``: the velocity of the OT path (independent of t)."""
    return x1 - (1.0 - sigma_min) * z


def clean_estimate(xt: Tensor, velocity: Tensor, t: Tensor, sigma_min: float = SIGMA_MIN) -> Tensor:
    """``x̂₁ = (1 − σ) x_t + (1 − (1 − σ) t) v``: x₁ in one step (exact for the true velocity)."""
    return (1.0 - sigma_min) * xt + (1.0 - (1.0 - sigma_min) * _expand(t, xt)) * velocity


def clean_estimate_weight(t: Tensor) -> Tensor:
    """Per-item weight ``t²`` for losses on :func:`clean_estimate`: the share of x_t that is data
    (squared), as the score family weights its Tweedie estimate by ``a_t²``. Near t = 0 the
    estimate is mostly the network's guess of the mean and carries little of the item's style."""
    return t.float() ** 2


def flow_matching_loss(velocity: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``Σ mask·(v − u)² / (Σ mask · n_feats)``: the OT-CFM regression, over real frames only."""
    return torch.sum(((velocity - target) ** 2) * mask) / (torch.sum(mask) * velocity.shape[1])


# ---------------------------------------------------------------- ODE solvers
def initial_noise(mu: Tensor, mask: Tensor, temperature: float,
                  generator: torch.Generator | None) -> Tensor:
    """``x_0 = z/τ · mask``, z ~ N(0, I) drawn from ``generator``, shaped like μ."""
    return randn_like(mu, generator) / temperature * mask


def _start(mu, mask, temperature, generator, x_start):
    return initial_noise(mu, mask, temperature, generator) if x_start is None else x_start * mask


def _grid(n_steps: int) -> list[float]:
    check_steps(n_steps)
    return [i / n_steps for i in range(n_steps + 1)]


def _euler_step(velocity_fn: VelocityFn, x: Tensor, t: float, h: float, mask: Tensor) -> Tensor:
    return (x + h * velocity_fn(x, t)) * mask


def _midpoint_step(velocity_fn: VelocityFn, x: Tensor, t: float, h: float, mask: Tensor) -> Tensor:
    half = (x + 0.5 * h * velocity_fn(x, t)) * mask
    return (x + h * velocity_fn(half, t + 0.5 * h)) * mask


def _heun_step(velocity_fn: VelocityFn, x: Tensor, t: float, h: float, mask: Tensor) -> Tensor:
    d = velocity_fn(x, t)
    predicted = (x + h * d) * mask
    return (x + 0.5 * h * (d + velocity_fn(predicted, t + h))) * mask


def _solver(step, doc: str):
    """A solver over ``step`` with the shared signature (see the module doc)."""

    def solve(velocity_fn: VelocityFn, mu: Tensor, mask: Tensor, n_steps: int,
              temperature: float = DEFAULT_TEMPERATURE, generator: torch.Generator | None = None,
              x_start: Tensor | None = None) -> Tensor:
        x = _start(mu, mask, temperature, generator, x_start)
        times = _grid(n_steps)
        for t, t_next in zip(times[:-1], times[1:], strict=True):
            x = step(velocity_fn, x, t, t_next - t, mask)
        return x

    solve.__doc__ = doc
    return solve


euler = _solver(_euler_step, "Euler on the flow ODE, uniform t from 0 to 1 (N velocity calls).")
midpoint = _solver(_midpoint_step, "The explicit midpoint method (2N velocity calls).")
heun = _solver(_heun_step, "Heun's method, trapezoidal predictor-corrector (2N velocity calls).")


SOLVERS: dict[str, Callable[..., Tensor]] = {"euler": euler, "midpoint": midpoint, "heun": heun}


# ---------------------------------------------------------------- the family's module
class FlowDecoder(FamilyDecoder):
    """The flow1d family: ``estimator`` (:class:`.unet1d.FlowEstimator1d`, the official name
    ``decoder.estimator``) with the family interface the model, mixing and samplers use:
    ``forward`` (the velocity), :meth:`noise_level`, :meth:`loss`, :meth:`solve`."""

    family = "flow1d"
    solvers = tuple(SOLVERS)

    def __init__(self, estimator: FlowEstimator1d, sigma_min: float = SIGMA_MIN):
        super().__init__(estimator)
        self.sigma_min = sigma_min

    @staticmethod
    def noise_level(t: float) -> float:
        """The mixing window's unit (1 = pure noise, 0 = data): ``1 − t`` here, rounded to 12
        decimals so that a grid time such as 0.8 maps onto the threshold 0.2 exactly."""
        return round(1.0 - float(t), 12)

    def loss(self, target: Tensor, mask: Tensor, mu: Tensor, spk: Tensor | None,
             emo: Tensor | None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """OT-CFM on one batch of segments ``target [B, F, S]`` (the normalised mel): returns
        ``diff_loss``, ``x0_hat`` (:func:`clean_estimate`, differentiable), ``t [B]`` and
        ``style_weight [B]`` (:func:`clean_estimate_weight`)."""
        device = generator.device if generator is not None else target.device
        t = torch.rand(target.shape[0], generator=generator, dtype=target.dtype, device=device)
        t = t.to(target.device)
        z = randn_like(target, generator) * mask
        xt = interpolate(target, z, t, self.sigma_min) * mask
        velocity = self.estimator(xt, mask, mu, t, spk, emo)
        return {
            "diff_loss": flow_matching_loss(velocity, target_velocity(target, z, self.sigma_min) * mask,
                                            mask),
            "x0_hat": clean_estimate(xt, velocity, t, self.sigma_min) * mask,
            "t": t,
            "style_weight": clean_estimate_weight(t),
        }

    def solve(self, velocity_fn: VelocityFn, mu: Tensor, mask: Tensor, solver: str, n_steps: int,
              temperature: float, generator: torch.Generator | None = None,
              x_start: Tensor | None = None) -> Tensor:
        return SOLVERS[solver](velocity_fn, mu, mask, n_steps, temperature, generator,
                               x_start=x_start)
