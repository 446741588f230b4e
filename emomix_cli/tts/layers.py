"""Small layers the acoustic model's modules share."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the same distribution (each value kept with probability 1 − p and
    scaled by 1/(1 − p)), whose mask on CPU is ``u ≥ p`` for float32 uniforms u from numpy's
    PCG64, seeded by one draw from torch's generator (so seeded runs and exact resume still
    hold): torch draws its CPU masks single-threaded and slower (docs/performance.md measures
    both). The stream differs from ``nn.Dropout``'s; on other devices it is ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        seed = int(torch.randint(0, 2**62, (1,)))
        uniform = np.random.Generator(np.random.PCG64(seed)).random(x.numel(), dtype=np.float32)
        keep = torch.from_numpy(uniform).view(x.shape) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


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
