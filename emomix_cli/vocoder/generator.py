"""The official jik876/hifi-gan generator (V1/V2/V3 by config) and weight-norm folding."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """HiFi-GAN ResBlock type "1": 3 x (dilated conv, conv) with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1))
            for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            x = x + conv2(F.leaky_relu(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN ResBlock type "2": dilated convs with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """The official generator (jik876/hifi-gan ``models.Generator``) without weight norm.

    Parameter names equal the official ones once ``weight_g``/``weight_v`` are folded into
    ``weight``, so an official state dict loads with ``strict=True``.
    """

    def __init__(self, h: dict[str, Any]):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        channels = int(h["upsample_initial_channel"])
        self.conv_pre = nn.Conv1d(int(h.get("num_mels", 80)), channels, 7, 1, padding=3)
        block = ResBlock1 if str(h["resblock"]) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(
            zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True)
        ):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(
                nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2)
            )
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True):
                self.resblocks.append(block(c_out, k, d))
        self.conv_post = nn.Conv1d(c_out, 1, 7, 1, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T] -> wav [B, 1, T * prod(upsample_rates)] in [-1, 1]."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels  # MRF: mean of resblocks
        # The official code uses leaky_relu's default slope (0.01) here, not 0.1.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


# ---------------------------------------------------------------- HiFi-GAN, CPU fast path
def fold_weight_norm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each (``weight_g``, ``weight_v``) pair by ``weight = g * v / ||v||``.

    The norm runs over all dims but 0 (``torch.nn.utils.weight_norm``'s default ``dim=0``).
    Newer torch's parametrized names (``parametrizations.weight.original0/1``) fold the same way.
    """
    folded: dict[str, torch.Tensor] = {}
    pairs = (
        ("weight_g", "weight_v"),
        ("parametrizations.weight.original0", "parametrizations.weight.original1"),
    )
    for key, value in state_dict.items():
        for g_name, v_name in pairs:
            if key.endswith(g_name):
                prefix = key[: -len(g_name)]
                v = state_dict[prefix + v_name].float()
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
                folded[prefix + "weight"] = value.float() * v / norm
                break
            if key.endswith(v_name):
                break
        else:
            folded[key] = value
    return folded
