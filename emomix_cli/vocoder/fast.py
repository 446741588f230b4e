"""The CPU fast path of the HiFi-GAN generator (docs/DESIGN.md §7, docs/performance.md "Vocoders").

Each conv1d runs as a oneDNN conv2d on channels-last ``[B, C, 1, T]`` with the leaky ReLU and the
residual add fused in; the resblocks of a stage share one input activation, and their 1/3 average
is folded into the next layer's weights. ``bf16`` runs every upsampling stage but the last in
bfloat16 where the CPU has native bf16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EmomixError
from .generator import LRELU_SLOPE, HiFiGANGenerator, ResBlock1, ResBlock2

# HiFi-GAN arithmetic on the CPU: "bf16" runs every upsampling stage but the last in bfloat16
# (the last, closest to the waveform, and conv_pre/conv_post stay float32).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class _Conv:
    """A Conv1d / ConvTranspose1d as a conv2d over [B, C, 1, T] channels-last (oneDNN's NHWC).

    ``weight``: [C_out, C_in, 1, K] (transposed: [C_in, C_out, 1, K]), channels-last; ``bias``: [C_out].
    """

    weight: torch.Tensor
    bias: torch.Tensor
    stride: list[int]
    padding: list[int]
    dilation: list[int]

    @classmethod
    def of(
        cls, conv: nn.Conv1d | nn.ConvTranspose1d, dtype: torch.dtype, scale: float = 1.0
    ) -> _Conv:
        """``conv``'s weight (times ``scale``) and bias in ``dtype``, laid out for oneDNN."""
        weight = conv.weight.detach().unsqueeze(2)
        weight = weight if scale == 1.0 else weight * scale
        return cls(
            weight.to(dtype=dtype, memory_format=torch.channels_last),  # one copy: cast + layout
            conv.bias.detach().to(dtype),
            [1, conv.stride[0]],
            [0, conv.padding[0]],
            [1, conv.dilation[0]],
        )


def _conv(x: torch.Tensor, c: _Conv, slope: float | None = None) -> torch.Tensor:
    """conv2d [B, C_in, 1, T] -> [B, C_out, 1, T'], with a leaky ReLU fused after it if ``slope``."""
    attr, scalars = ("none", []) if slope is None else ("leaky_relu", [slope])
    geometry = (c.padding, c.stride, c.dilation, 1)
    return torch.ops.mkldnn._convolution_pointwise(
        x, c.weight, c.bias, *geometry, attr, scalars, None
    )


def _conv_add(x: torch.Tensor, residual: torch.Tensor, c: _Conv) -> torch.Tensor:
    """``residual + conv(x)`` in one oneDNN call (sum post-op); shapes as :func:`_conv`."""
    geometry = (c.padding, c.stride, c.dilation, 1)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, residual, c.weight, c.bias, *geometry, "add", None, None, [], None
    )


def _resblock(x: torch.Tensor, act: torch.Tensor, layers: list[list[_Conv]]) -> torch.Tensor:
    """One MRF block on x [B, C, 1, T]; ``act`` = leaky_relu(x), shared by the stage's blocks.

    Each layer is ``x + conv_n(... lrelu(conv_1(lrelu(x))))``: (conv1, conv2) for ResBlock1,
    (conv,) for ResBlock2.
    """
    for index, convs in enumerate(layers):
        t = act if index == 0 else F.leaky_relu(x, LRELU_SLOPE)
        for conv in convs[:-1]:
            t = _conv(t, conv, LRELU_SLOPE)
        x = _conv_add(t, x, convs[-1])
    return x


def _block_convs(block: ResBlock1 | ResBlock2, dtype: torch.dtype) -> list[list[_Conv]]:
    """A resblock's convs per layer, as :func:`_resblock` takes them."""
    pairs = (
        zip(block.convs1, block.convs2, strict=True)
        if isinstance(block, ResBlock1)
        else ((conv,) for conv in block.convs)
    )
    return [[_Conv.of(conv, dtype) for conv in layer] for layer in pairs]


def fast_path_available(device: str | torch.device) -> bool:
    """Whether :class:`FastHiFiGAN` can run on ``device`` (the CPU with oneDNN)."""
    return (
        torch.device(device).type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    )


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", dict)()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def bf16_runs() -> bool:
    """Whether oneDNN can run bfloat16 convolutions on this CPU at all (natively or emulated:
    AVX-512 BW/VL/DQ or AVX-NE-CONVERT); without them it raises inside the convolution."""
    caps = getattr(torch.cpu, "get_capabilities", dict)()
    return bool(caps.get("avx_ne_convert") or all(caps.get(k) for k in ("avx512_bw", "avx512_vl", "avx512_dq")))


def stage_dtypes(n_stages: int, precision: str) -> list[torch.dtype]:
    """Per upsampling stage dtype: all float32, or (bf16) all but the last stage bfloat16."""
    if precision == "fp32":
        return [torch.float32] * n_stages
    return [torch.bfloat16] * (n_stages - 1) + [torch.float32]


class FastHiFiGAN:
    """:class:`HiFiGANGenerator`'s forward for the CPU, same function, less memory traffic.

    conv1d runs as a oneDNN conv2d on [B, C, 1, T] channels-last tensors (no layout reorders);
    each leaky ReLU after a conv and each residual add is fused into that conv; the MRF blocks of
    a stage share their input activation; the MRF mean's 1/num_kernels is folded into the next
    layer's weights (leaky ReLU is positively homogeneous). ``dtypes``: one per upsampling stage
    (:func:`stage_dtypes`); conv_pre and conv_post stay float32.
    """

    def __init__(self, generator: HiFiGANGenerator, dtypes: Sequence[torch.dtype]):
        n_kernels = generator.num_kernels
        self.dtypes = list(dtypes)
        self.pre = _Conv.of(generator.conv_pre, torch.float32)
        self.ups = [
            _Conv.of(up, dtype, 1.0 if i == 0 else 1.0 / n_kernels)
            for i, (up, dtype) in enumerate(zip(generator.ups, self.dtypes, strict=True))
        ]
        self.blocks = [
            [
                _block_convs(block, dtype)
                for block in generator.resblocks[i * n_kernels : (i + 1) * n_kernels]
            ]
            for i, dtype in enumerate(self.dtypes)
        ]
        self.post = _Conv.of(generator.conv_post, torch.float32, 1.0 / n_kernels)

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T] float32 -> wav [B, 1, T * prod(upsample_rates)] float32."""
        x = _conv(mel.unsqueeze(2).contiguous(memory_format=torch.channels_last), self.pre)
        for up, blocks, dtype in zip(self.ups, self.blocks, self.dtypes, strict=True):
            x = F.conv_transpose2d(
                F.leaky_relu_(x, LRELU_SLOPE).to(dtype), up.weight, up.bias, up.stride, up.padding
            )
            act = F.leaky_relu(x, LRELU_SLOPE)
            total = _resblock(x, act, blocks[0])
            for block in blocks[1:]:
                total.add_(_resblock(x, act, block))
            x = total  # the MRF sum; its 1/num_kernels sits in the next weights
        x = _conv(F.leaky_relu_(x.float(), 0.01), self.post)
        return torch.tanh_(x).squeeze(2)


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """``fp32`` or ``bf16``; None picks bf16 where the CPU fast path runs on native bf16 hardware."""
    if precision is None:
        return "bf16" if fast_path_available(device) and native_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise EmomixError(
            f"unknown vocoder precision '{precision}'; choose one of {', '.join(PRECISIONS)}"
        )
    if precision == "bf16" and not fast_path_available(device):
        raise EmomixError(
            f"vocoder precision bf16 runs on the CPU (oneDNN) only, not on {device}; use fp32"
        )
    if precision == "bf16" and not bf16_runs():
        raise EmomixError("this CPU cannot run the bf16 vocoder (oneDNN needs AVX-512 BW/VL/DQ or "
                          "AVX-NE-CONVERT); use --vocoder-precision fp32")
    return precision
