"""Small layers the acoustic model's modules share."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the same distribution (each value kept with probability 1 − p and
    scaled by 1/(1 − p)), drawn as ``rand ≥ p`` on CPU: torch's CPU ``bernoulli_`` was 12 % of a
    flow1d training step (docs/performance.md), a uniform draw and a compare cost less. The RNG
    stream differs from ``nn.Dropout``'s; on other devices it is ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))
