"""The score2d decoder family: Grad-TTS's score SDE (:mod:`.sde`), its samplers
(:mod:`.sampling`) and :class:`ScoreDecoder`, the family's module.

Time convention (Grad-TTS): t = 1 is noise (x_1 ~ N(μ, I/τ²)), t = 0 is data. The network output
is the score s_θ; the one-step estimate of the clean mel is Tweedie's (``sde.denoised_estimate``),
weighted by ``a_t²`` in the style loss (``sde.x0_weight``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import sde
from .layers import FamilyDecoder
from .sampling import SOLVERS, ScoreFn
from .unet import GradLogPEstimator2d


class ScoreDecoder(FamilyDecoder):
    """The score2d family: ``estimator`` (:class:`.unet.GradLogPEstimator2d`, the official name
    ``decoder.estimator``) with the family interface the model, mixing and samplers use:
    ``forward`` (the score), :meth:`noise_level`, :meth:`loss`, :meth:`solve`."""

    family = "score2d"
    solvers = tuple(SOLVERS)

    def __init__(self, estimator: GradLogPEstimator2d, beta_min: float = sde.BETA_MIN,
                 beta_max: float = sde.BETA_MAX):
        super().__init__(estimator)
        self.beta_min, self.beta_max = beta_min, beta_max

    @staticmethod
    def noise_level(t: float) -> float:
        """The mixing window's unit (1 = pure noise, 0 = data): t itself here."""
        return float(t)

    def loss(self, target: Tensor, mask: Tensor, mu: Tensor, spk: Tensor | None,
             emo: Tensor | None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Grad-TTS's score matching on segments ``target [B, F, S]``: returns ``diff_loss``,
        ``x0_hat`` (Tweedie, differentiable), ``t [B]`` and ``style_weight [B]`` (``a_t²``)."""
        device = generator.device if generator is not None else target.device
        t = torch.rand(target.shape[0], generator=generator, dtype=target.dtype, device=device)
        t = t.to(target.device).clamp(1e-5, 1.0 - 1e-5)
        span = (self.beta_min, self.beta_max)
        xt, z = sde.forward_diffusion(target, mask, mu, t, generator, *span)
        score = self.estimator(xt, mask, mu, t, spk, emo)
        _, var = sde.marginal_mean_var(target, mu, t, *span)
        return {
            "diff_loss": sde.diffusion_loss(score, z, var, mask),
            "x0_hat": sde.denoised_estimate(xt, score, mu, t, *span) * mask,
            "t": t,
            "style_weight": sde.x0_weight(t, *span),
        }

    def solve(self, score_fn: ScoreFn, mu: Tensor, mask: Tensor, solver: str, n_steps: int,
              temperature: float, generator: torch.Generator | None = None,
              x_start: Tensor | None = None) -> Tensor:
        return SOLVERS[solver](score_fn, mu, mask, n_steps, temperature, generator,
                               beta_min=self.beta_min, beta_max=self.beta_max, x_start=x_start)
