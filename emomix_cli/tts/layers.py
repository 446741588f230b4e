"""Small layers the acoustic model's modules share."""

from __future__ import annotations

from torch import Tensor, nn


class FamilyDecoder(nn.Module):
    """What every decoder family shares (docs/DESIGN.md §1.6): its network under the official
    name ``decoder.estimator``, whose forward is the family's network output. A family adds
    ``family``, ``solvers``, ``noise_level(t)``, ``loss(...)`` and ``solve(...)``."""

    def __init__(self, estimator: nn.Module):
        super().__init__()
        self.estimator = estimator

    @property
    def n_downsamplings(self) -> int:
        return self.estimator.n_downsamplings

    def forward(self, x: Tensor, mask: Tensor, mu: Tensor, t: Tensor, spk: Tensor | None,
                emo: Tensor | None) -> Tensor:
        return self.estimator(x, mask, mu, t, spk, emo)
