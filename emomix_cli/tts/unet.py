"""The score estimator s_θ(x_t, t, μ, s, e): Grad-TTS's GradLogPEstimator2d with conditions.

The mel is treated as a 1-channel image ``[B, C, n_feats, T]``. Input channels are stacked
as ``[μ, x_t, s?, e?]``: the speaker vector and the emotion vector are each projected by an
MLP to ``n_feats`` and broadcast over time (Grad-TTS does this with its speaker vector). Both
are also projected to the time-embedding width and added to it (zero-initialised, so a fresh
model starts out as Grad-TTS). U-Net: dims ``dim × dim_mults``, two ResNet blocks
(GroupNorm + Mish) and a linear attention per level, downsampling by 2 on both axes, so the
length T must be a multiple of ``2 ** (len(dim_mults) - 1)`` (:func:`fix_len_compatibility`).

Unlike the official code, GroupNorm statistics and the attention's key softmax ignore padded
frames, so an utterance's score does not depend on how much padding its batch has. Parameter
names follow the official module so its weights load where the shapes match.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def fix_len_compatibility(length: int, num_downsamplings_in_unet: int = 2) -> int:
    """Smallest length ≥ ``length`` divisible by ``2 ** num_downsamplings_in_unet``."""
    factor = 2**num_downsamplings_in_unet
    return int(math.ceil(length / factor) * factor)


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics use only the frames where ``mask`` is 1.

    ``x: [B, C, ..., T]`` (``[B, C, F, T]`` in the 2-D decoder, ``[B, C, T]`` in the 1-D one),
    ``mask: [B, 1, ..., T]`` of the same rank. With an all-ones mask it equals
    ``nn.GroupNorm`` (same parameters ``weight``/``bias``).
    """

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:  # type: ignore[override]
        if mask is None:  # no padding anywhere: the native kernel (keeps channels-last)
            return nn.functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        valid = _common_prefix_length(mask)
        if valid is not None:  # every item valid on the same prefix (inference, mixing batches)
            return self._prefix_norm(x, valid)
        # statistics in float32: under fp16 autocast the sums over C/G·F·T elements overflow
        batch = x.shape[0]
        grouped = x.float().reshape(batch, self.num_groups, -1, *x.shape[2:])
        weight = mask.unsqueeze(1).float()  # [B, 1, 1, ..., T]
        dims = tuple(range(2, grouped.dim()))
        per_frame = grouped[0, 0].numel() // grouped.shape[-1]  # C/G · F values per frame
        count = (weight.sum(dim=dims, keepdim=True) * per_frame).clamp_min(1.0)
        mean = (grouped * weight).sum(dim=dims, keepdim=True) / count
        var = (((grouped - mean) * weight) ** 2).sum(dim=dims, keepdim=True) / count
        normed = ((grouped - mean) * torch.rsqrt(var + self.eps)).reshape_as(x).to(x.dtype)
        if self.affine:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            normed = normed * self.weight.view(shape) + self.bias.view(shape)
        return normed

    def _prefix_norm(self, x: Tensor, valid: int) -> Tensor:
        """Native group norm over frames ``[:valid]``; padded frames (masked later) are zero."""
        weight, bias = (self.weight, self.bias) if self.affine else (None, None)
        if valid == x.shape[-1]:
            return nn.functional.group_norm(x, self.num_groups, weight, bias, self.eps)
        out = x.new_zeros(x.shape)
        out[..., :valid] = nn.functional.group_norm(
            x[..., :valid].contiguous(), self.num_groups, weight, bias, self.eps
        )
        return out


def _common_prefix_length(mask: Tensor) -> int | None:
    """``L`` when ``mask [B, 1, 1, T]`` is 1 exactly on frames ``[:L]`` for every item, else None.

    Only taken outside autograd (inference) and on CPU: the general masked path is kept for
    training so its gradients are the ones the tests check, and on a GPU the ``.item()`` below
    would stall the device at every norm of every step for no measured gain.
    """
    if torch.is_grad_enabled() or mask.device.type != "cpu":
        return None
    frames = mask.reshape(mask.shape[0], -1)[:, -mask.shape[-1] :]
    lengths = frames.sum(dim=1)
    valid = int(lengths[0].item())
    if not bool((lengths == valid).all()) or not bool((frames[:, :valid] == 1).all()):
        return None
    return valid


def mish_inference(x: Tensor) -> Tensor:
    """Mish without autograd in one exp and in-place algebra (faster than ``F.mish`` on CPU;
    docs/performance.md measures it).

    ``tanh(softplus(x)) = 1 − 2 / ((1 + eˣ)² + 1)``, so ``mish(x) = x − 2x / ((1 + eˣ)² + 1)``;
    eˣ = inf gives x, eˣ = 0 gives 0. Max abs error vs float64 ~2e-6 (``F.mish``: ~1e-6).
    """
    denominator = torch.exp(x).add_(1).square_().add_(1)
    return torch.addcdiv(x, x, denominator, value=-2.0)


def _mish_and_derivative(x: Tensor, derivative: bool) -> tuple[Tensor, Tensor | None]:
    """``mish(x)`` and (when ``derivative``) ``mish'(x)``, from one exp, in float rounding.

    With ``e = eˣ`` and ``p = e(e + 2) = (1 + eˣ)² − 1`` (no cancellation for x ≪ 0):
    ``tanh(softplus(x)) = p / (p + 2)`` and ``mish'(x) = tanh(softplus(x)) + 4x·e(1 + e) / (p + 2)²``.
    x is clamped at 20 inside (``p + 2`` squared stays finite in float32; above 20 these are 1
    and ≤ 1e-15 to float precision); the output takes the unclamped x.
    """
    clamped = x.clamp(max=20.0)
    e = torch.exp(clamped)
    p = e.add(2.0).mul_(e)
    g = torch.sub(p, e, out=e) if derivative else None  # e(1 + e), in e's buffer
    d = p.add(2.0)
    t = p.div_(d)  # tanh(softplus(x))
    out = x * t
    if g is None:
        return out, None
    g.div_(d.square_())
    return out, t.addcmul_(g, clamped, value=4.0)


class FastMish(torch.autograd.Function):
    """Mish for training on CPU, forward + backward faster than ``F.mish`` there
    (``benchmarks/bench_mish.py``; docs/performance.md).

    The forward computes the derivative from the same exp (:func:`_mish_and_derivative`) and
    saves it instead of x; the backward is one product. Max abs error vs float64 on
    [-30, 30] ~7e-7 (value) and ~2e-7 (gradient), ``F.mish``: ~7e-7 and ~1e-6. On CUDA the
    native fused kernel is faster (one pass instead of ~11): :class:`Mish` only takes this on CPU.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out, derivative = _mish_and_derivative(x, ctx.needs_input_grad[0])
        ctx.save_for_backward(derivative)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (derivative,) = ctx.saved_tensors
        return grad * derivative


class Mish(nn.Mish):
    """``nn.Mish`` (no parameters): :func:`mish_inference` when autograd is off, else
    :class:`FastMish` on large float CPU tensors (the decoder's activations), else ``F.mish``.

    ``Mish.native_training = True`` restores ``F.mish`` under autograd (benchmarks compare).
    """

    native_training = False
    fast_min_numel = 8192  # below it the ~11 kernel launches cost more than F.mish's two

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            return mish_inference(x)
        if (
            not self.native_training
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
            and x.numel() >= self.fast_min_numel
        ):
            return FastMish.apply(x)
        return nn.functional.mish(x)


def _has_padding(mask: Tensor) -> bool:
    """Whether ``mask`` has a zero anywhere (one host sync per estimator call)."""
    return not bool(mask.bool().all())


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x * mask


class Block(nn.Module):
    """conv3 → masked GroupNorm → Mish, on masked input and output; ``dims`` 2 (the 2-D
    decoder: 3×3 over [C, F, T]) or 1 (the 1-D decoder: kernel 3 over [C, T])."""

    def __init__(self, dim: int, dim_out: int, groups: int = 8, dims: int = 2):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.block = nn.Sequential(
            conv(dim, dim_out, 3, padding=1), MaskedGroupNorm(groups, dim_out), Mish()
        )

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        conv, norm, act = self.block
        return _masked(act(norm(conv(_masked(x, mask)), mask)), mask)


class ResnetBlock(nn.Module):
    """Two :class:`Block` with the time embedding added between them, and a 1×1 residual conv
    (Grad-TTS: only when the width changes; Matcha-TTS: always, ``res_conv_always``)."""

    def __init__(self, dim: int, dim_out: int, time_emb_dim: int, groups: int = 8,
                 dims: int = 2, res_conv_always: bool = False):
        super().__init__()
        self.dims = dims
        self.mlp = nn.Sequential(Mish(), nn.Linear(time_emb_dim, dim_out))
        self.block1 = Block(dim, dim_out, groups, dims)
        self.block2 = Block(dim_out, dim_out, groups, dims)
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.res_conv = conv(dim, dim_out, 1) if dim != dim_out or res_conv_always else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None, time_emb: Tensor) -> Tensor:
        bias = self.mlp(time_emb).view(*time_emb.shape[:1], -1, *([1] * self.dims))
        h = self.block2(self.block1(x, mask) + bias, mask)
        return h + self.res_conv(_masked(x, mask))


class LinearAttention(nn.Module):
    """Grad-TTS's linear attention over all (feature, frame) positions, computed associatively.

    The official module forms q, k, v ``[B, heads·d, N]`` (N = F·T positions) and returns
    ``W_o · (context_hᵀ q_h)`` with ``context_h = softmax_N(k_h) v_hᵀ``. Everything after the key
    softmax is linear, so here only the keys are materialised; with ``X [B, N, C]``:
    ``P = softmax_N(k)``, ``G = Pᵀ X`` ``[heads·d, C]``, ``context_h = G_h W_v,hᵀ``,
    and the output is ``X · A + b_o`` with the ``C × C`` matrix ``A = W_qᵀ blockdiag(context) W_oᵀ``.
    Same function and parameters (``to_qkv``, ``to_out``); at N positions it writes one
    ``N × heads·d`` tensor instead of four, and its matmuls over N have C (not heads·d) outputs.
    Padded positions get zero key weight.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads = heads
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """``x [B, C, F, T]``; ``mask [B, 1, 1, T]`` or None (no padding)."""
        batch, channels, height, width = x.shape
        heads = self.heads
        # [B, N, C] rows: a free view of a channels-last x (NCHW pays one permute-copy)
        rows = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        w_q, w_k, w_v = self.to_qkv.weight.flatten(1).chunk(3)  # [heads·d, C] each
        key = nn.functional.linear(rows, w_k).float()  # [B, N, heads·d]; softmax in fp32
        if mask is not None:
            valid = mask.expand(batch, 1, height, width).reshape(batch, -1, 1) != 0
            key = key.masked_fill(~valid, float("-inf"))
        # softmax over N (dim 1: reductions along contiguous rows; a transposed softmax costs
        # a heads·d × N copy), its normalisation applied to the small product in fp32
        peak = key.amax(dim=1, keepdim=True)
        if torch.is_grad_enabled():
            weights = (key - peak).exp()
        else:  # in place on the fresh key tensor: no allocation of another N × heads·d
            weights = key.sub_(peak).exp_()
        total = weights.sum(dim=1).unsqueeze(-1)  # [B, heads·d, 1]
        if rows.dtype == torch.float32 and not torch.is_autocast_enabled(x.device.type):
            gram = torch.bmm(weights.transpose(1, 2), rows) / total  # Pᵀ X [B, heads·d, C]
        else:  # low precision: normalise first, so the sum over N stays in fp16's range
            probs = (weights / total.transpose(1, 2)).to(rows.dtype)
            gram = torch.bmm(probs.transpose(1, 2), rows)
        w_v = w_v.view(heads, -1, channels)  # [h, e, C]
        context = torch.einsum("bhdc,hec->bhde", gram.view(batch, heads, -1, channels), w_v)
        w_o = self.to_out.weight.flatten(1).view(channels, heads, -1)  # [C, h, e]
        readout = torch.einsum("bhde,khe->bhdk", context, w_o)  # [B, h, d, C]
        mixing = torch.einsum("jc,bjk->bck", w_q, readout.reshape(batch, -1, channels))  # A
        out = torch.baddbmm(self.to_out.bias.view(1, 1, -1), rows, mixing)  # [B, N, C]
        return out.view(batch, height, width, channels).permute(0, 3, 1, 2)


class Rezero(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.g = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.fn(x, mask) * self.g


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.fn(x, mask) + x


class Downsample(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(dim, dim, 4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor, scale: float = 1000) -> Tensor:
        """``t [B]`` → ``[B, dim]`` (sin | cos of ``scale·t·10000^{-k/(dim/2−1)}``)."""
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32)
            * -(math.log(10000) / (half - 1))
        )
        angles = scale * t.float().unsqueeze(1) * freqs.unsqueeze(0)
        return torch.cat((angles.sin(), angles.cos()), dim=-1).to(t.dtype)


def _cond_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, in_dim * 4), nn.Mish(), nn.Linear(in_dim * 4, out_dim))


class GradLogPEstimator2d(nn.Module):
    """``forward(x, mask, mu, t, spk=None, emo=None) -> score [B, n_feats, T]``.

    ``x, mu: [B, n_feats, T]``, ``mask: [B, 1, T]`` (None: no padding), ``t: [B]``,
    ``spk: [B, spk_emb_dim]`` (when ``spk_emb_dim > 0``), ``emo: [B, emo_emb_dim]`` (when
    ``emo_emb_dim > 0``).
    """

    def __init__(
        self,
        dim: int,
        dim_mults: tuple[int, ...] = (1, 2, 4),
        groups: int = 8,
        spk_emb_dim: int = 0,
        emo_emb_dim: int = 0,
        n_feats: int = 80,
        pe_scale: float = 1000,
    ):
        super().__init__()
        self.spk_emb_dim = spk_emb_dim
        self.emo_emb_dim = emo_emb_dim
        self.pe_scale = pe_scale
        self.n_downsamplings = len(dim_mults) - 1
        if n_feats % (2**self.n_downsamplings):
            raise ValueError(f"n_feats ({n_feats}) must be divisible by 2**{self.n_downsamplings}")
        if spk_emb_dim:
            self.spk_mlp = _cond_mlp(spk_emb_dim, n_feats)
        if emo_emb_dim:
            self.emo_mlp = _cond_mlp(emo_emb_dim, n_feats)
        if spk_emb_dim + emo_emb_dim:
            self.cond_time = _cond_mlp(spk_emb_dim + emo_emb_dim, dim)
            nn.init.zeros_(self.cond_time[2].weight)
            nn.init.zeros_(self.cond_time[2].bias)
        self.time_pos_emb = SinusoidalPosEmb(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))

        in_channels = 2 + (1 if spk_emb_dim else 0) + (1 if emo_emb_dim else 0)
        dims = [in_channels, *(dim * m for m in dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for index, (dim_in, dim_out) in enumerate(in_out):
            is_last = index == len(in_out) - 1
            self.downs.append(
                nn.ModuleList(
                    [
                        ResnetBlock(dim_in, dim_out, dim, groups),
                        ResnetBlock(dim_out, dim_out, dim, groups),
                        Residual(Rezero(LinearAttention(dim_out))),
                        Downsample(dim_out) if not is_last else nn.Identity(),
                    ]
                )
            )
        mid_dim = dims[-1]
        self.mid_block1 = ResnetBlock(mid_dim, mid_dim, dim, groups)
        self.mid_attn = Residual(Rezero(LinearAttention(mid_dim)))
        self.mid_block2 = ResnetBlock(mid_dim, mid_dim, dim, groups)
        for dim_in, dim_out in reversed(in_out[1:]):
            self.ups.append(
                nn.ModuleList(
                    [
                        ResnetBlock(dim_out * 2, dim_in, dim, groups),
                        ResnetBlock(dim_in, dim_in, dim, groups),
                        Residual(Rezero(LinearAttention(dim_in))),
                        Upsample(dim_in),
                    ]
                )
            )
        self.final_block = Block(dim, dim, groups)
        self.final_conv = nn.Conv2d(dim, 1, 1)

    def _conditions(
        self, t: Tensor, spk: Tensor | None, emo: Tensor | None, length: int
    ) -> tuple[Tensor, list[Tensor]]:
        """Time embedding ``[B, dim]`` (+ conditions) and the per-frame condition channels."""
        time_emb = self.mlp(self.time_pos_emb(t, scale=self.pe_scale))
        channels, vectors = [], []
        for name, vector, width in (("spk", spk, self.spk_emb_dim), ("emo", emo, self.emo_emb_dim)):
            if not width:
                continue
            if vector is None or vector.shape[-1] != width:
                got = None if vector is None else tuple(vector.shape)
                raise ValueError(f"the estimator needs {name} [B, {width}], got {got}")
            mlp = self.spk_mlp if name == "spk" else self.emo_mlp
            channels.append(mlp(vector).unsqueeze(-1).expand(-1, -1, length))
            vectors.append(vector)
        if vectors:
            time_emb = time_emb + self.cond_time(torch.cat(vectors, dim=-1))
        return time_emb, channels

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        mu: Tensor,
        t: Tensor,
        spk: Tensor | None = None,
        emo: Tensor | None = None,
    ) -> Tensor:
        factor = 2**self.n_downsamplings
        if x.shape[-1] % factor:
            raise ValueError(
                f"the length ({x.shape[-1]}) must be a multiple of {factor}; "
                "pad with fix_len_compatibility"
            )
        time_emb, channels = self._conditions(t, spk, emo, x.shape[-1])
        x = torch.stack([mu, x, *channels], dim=1)  # [B, C_in, F, T]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # Without padding every mask product is the identity: drop them all (the dense path,
        # e.g. synthesis of one utterance, see synthesis.fill_padding). Same result.
        mask = None if mask is None or not _has_padding(mask) else mask.unsqueeze(1)  # [B,1,1,T]

        hiddens, masks = [], [mask]
        for resnet1, resnet2, attn, downsample in self.downs:
            mask_down = masks[-1]
            x = resnet1(x, mask_down, time_emb)
            x = resnet2(x, mask_down, time_emb)
            x = attn(x, mask_down)
            hiddens.append(x)
            x = downsample(_masked(x, mask_down))
            masks.append(None if mask_down is None else mask_down[:, :, :, ::2])
        masks = masks[:-1]
        mask_mid = masks[-1]
        x = self.mid_block1(x, mask_mid, time_emb)
        x = self.mid_attn(x, mask_mid)
        x = self.mid_block2(x, mask_mid, time_emb)
        for resnet1, resnet2, attn, upsample in self.ups:
            mask_up = masks.pop()
            x = torch.cat((x, hiddens.pop()), dim=1)
            x = resnet1(x, mask_up, time_emb)
            x = resnet2(x, mask_up, time_emb)
            x = attn(x, mask_up)
            x = upsample(_masked(x, mask_up))
        x = self.final_block(x, mask)
        return _masked(self.final_conv(_masked(x, mask)), mask).squeeze(1).contiguous()

    @property
    def channels_last(self) -> bool:
        """Whether the weights are in channels-last layout (see :meth:`use_channels_last`)."""
        return getattr(self, "_channels_last", False)

    def use_channels_last(self, enabled: bool = True) -> GradLogPEstimator2d:
        """Channels-last weights and activations: faster 3×3 convs with oneDNN on CPU
        (benchmarks/bench_synthesis.py measures it). Numerically the same computation."""
        self._channels_last = enabled
        layout = torch.channels_last if enabled else torch.contiguous_format
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.data = module.weight.data.contiguous(memory_format=layout)
        return self
