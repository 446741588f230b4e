"""The velocity estimator v_θ(x_t, t, μ, s, e) of the flow1d family: Matcha-TTS's 1-D U-Net.

The mel is a sequence ``[B, n_feats, T]``; the input channels are ``[x_t, μ, s]`` (the speaker
vector broadcast over time, as Matcha-TTS stacks it). Each level is a ResNet1D block (two
conv3 → GroupNorm → Mish blocks, the time embedding added between them, a 1×1 residual conv),
``n_blocks`` transformer blocks (pre-norm self-attention and a SnakeBeta feed-forward) and a
stride-2 conv (the last level: a conv3). The middle runs ``num_mid_blocks`` such pairs; the up
path mirrors the down path with skip connections and transposed convs. The time embedding is
sinusoidal over ``in_channels`` frequencies followed by a two-layer SiLU MLP (``time_mlp``).
Parameter names and shapes follow the official decoder (docs/DESIGN.md §1.6), so an official
Matcha-TTS ``decoder.estimator.*`` loads whole.

The emotion is a new path, zero-initialised so that a loaded official decoder computes exactly
what it did: ``emo_time`` maps the decoder's emotion vector to the time-embedding width (it
reaches every ResNet block as a per-channel bias) and ``emo_mlp`` maps it to ``n_feats`` and
adds it to the μ channels (a per-mel-bin bias on what the decoder conditions on).

Masking differs from the official code where padding exists: GroupNorm statistics and the
attention keys ignore padded frames (the official adds the 0/1 mask to the attention logits,
which leaves padded keys a weight of e⁻¹ each), so an utterance's velocity does not depend on
its batch neighbours. Without padding the two are the same function.

CPU speed (each exact; tests check them): without padding every mask product is skipped (the
dense path, as in the 2-D decoder); Mish runs the one-exp forms of :mod:`.unet`; attention is
``scaled_dot_product_attention`` (fused) over ``[B, heads, T, d]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .unet import Block, Mish, ResnetBlock, SinusoidalPosEmb, _has_padding, _masked


def snake_beta(y: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """``y + sin²(y·e^α) / (e^β + 1e-9)`` per channel (last axis); 1e-9 as the official, the
    inverse of a magnitude that can train towards zero."""
    return y + torch.sin(y * alpha.exp()).square_() / (beta.exp() + 1e-9)


class _SnakeBeta(torch.autograd.Function):
    """:func:`snake_beta` whose backward recomputes what it needs from y (one saved tensor
    instead of the four the composed operations keep), with the analytic derivatives
    ``∂/∂y = 1 + 2a·sin(ay)cos(ay)/b``, ``∂/∂α = 2a·y·sin(ay)cos(ay)/b``,
    ``∂/∂β = −e^β·sin²(ay)/b²`` (a = e^α, b = e^β + 1e-9)."""

    @staticmethod
    def forward(ctx, y: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(y, alpha, beta)
        return snake_beta(y, alpha, beta)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        y, alpha, beta = ctx.saved_tensors
        a, exp_beta = alpha.exp(), beta.exp()
        inv_b = 1.0 / (exp_beta + 1e-9)
        angle = y * a
        sine = torch.sin(angle)
        slope = grad * sine * torch.cos(angle)  # g·sin(ay)cos(ay)
        dims = tuple(range(grad.dim() - 1))
        grad_y = grad + slope * (2.0 * a * inv_b)
        grad_alpha = (slope * y).sum(dims) * (2.0 * a * inv_b)
        grad_beta = (grad * sine.square_()).sum(dims) * (-exp_beta * inv_b**2)
        return grad_y, grad_alpha, grad_beta


class SnakeBeta(nn.Module):
    """``proj`` (a linear layer) then :func:`snake_beta` with per-channel log-scale α, β."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim_out)
        self.alpha = nn.Parameter(torch.zeros(dim_out))
        self.beta = nn.Parameter(torch.zeros(dim_out))

    def forward(self, x: Tensor) -> Tensor:
        y = self.proj(x)
        if torch.is_grad_enabled():
            return _SnakeBeta.apply(y, self.alpha, self.beta)
        return snake_beta(y, self.alpha, self.beta)


class FeedForward(nn.Module):
    """``net.0`` SnakeBeta to ``mult·dim`` → ``net.1`` dropout → ``net.2`` linear back to dim."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(SnakeBeta(dim, dim * mult), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention ``[B, T, C] → [B, T, C]``: bias-free ``to_q/k/v`` (heads × d),
    ``to_out.0`` linear with bias, ``to_out.1`` dropout."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        """``x [B, T, C]``; ``key_mask [B, T]`` bool (True = a real frame) or None."""
        batch, length, _ = x.shape

        def split(h: Tensor) -> Tensor:  # [B, T, heads·d] -> [B, heads, T, d]
            return h.view(batch, length, self.heads, self.dim_head).transpose(1, 2)

        query, key, value = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
        return self.to_out(out.transpose(1, 2).reshape(batch, length, -1))


class TransformerBlock(nn.Module):
    """Pre-norm: ``x + attn1(norm1(x))``, then ``+ ff(norm3(·))`` (the official names)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = SelfAttention(dim, heads, dim_head, dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        x = x + self.attn1(self.norm1(x), key_mask)
        return x + self.ff(self.norm3(x))


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class Resample1D(nn.Module):
    """A stride-2 convolution under the official name ``.conv``: down (conv3, stride 2) or up
    (transposed conv4, stride 2)."""

    def __init__(self, dim: int, up: bool):
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1) if up else nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _cond_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear → Mish → Linear with the last layer zero (a new path that starts silent)."""
    mlp = nn.Sequential(nn.Linear(in_dim, in_dim * 4), Mish(), nn.Linear(in_dim * 4, out_dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class FlowEstimator1d(nn.Module):
    """``forward(x, mask, mu, t, spk=None, emo=None) -> v [B, n_feats, T]``.

    ``x, mu: [B, n_feats, T]``, ``mask: [B, 1, T]`` (None: no padding), ``t: [B]`` (Matcha's
    convention: 0 = noise, 1 = data), ``spk: [B, spk_emb_dim]``, ``emo: [B, emo_emb_dim]``.
    T must be a multiple of ``2 ** n_downsamplings``.
    """

    def __init__(
        self,
        n_feats: int = 80,
        channels: tuple[int, ...] = (256, 256),
        spk_emb_dim: int = 0,
        emo_emb_dim: int = 0,
        dropout: float = 0.05,
        attention_head_dim: int = 64,
        n_blocks: int = 1,
        num_mid_blocks: int = 2,
        num_heads: int = 2,
        groups: int = 8,
    ):
        super().__init__()
        channels = tuple(channels)
        self.n_feats, self.spk_emb_dim, self.emo_emb_dim = n_feats, spk_emb_dim, emo_emb_dim
        self.n_downsamplings = len(channels) - 1
        in_channels = 2 * n_feats + spk_emb_dim
        if in_channels % 2:
            raise ValueError(f"2·n_feats + spk_emb_dim ({in_channels}) must be even (time embedding)")
        self.time_embeddings = SinusoidalPosEmb(in_channels)
        time_dim = channels[0] * 4
        self.time_mlp = TimestepEmbedding(in_channels, time_dim)

        def transformers(dim: int) -> nn.ModuleList:
            return nn.ModuleList(TransformerBlock(dim, num_heads, attention_head_dim, dropout)
                                 for _ in range(n_blocks))

        self.down_blocks = nn.ModuleList()
        width = in_channels
        for index, out in enumerate(channels):
            last = index == len(channels) - 1
            self.down_blocks.append(nn.ModuleList([
                ResnetBlock(width, out, time_dim, groups, dims=1, res_conv_always=True), transformers(out),
                nn.Conv1d(out, out, 3, padding=1) if last else Resample1D(out, up=False),
            ]))
            width = out
        self.mid_blocks = nn.ModuleList(
            nn.ModuleList([ResnetBlock(width, width, time_dim, groups, dims=1, res_conv_always=True),
                           transformers(width)])
            for _ in range(num_mid_blocks)
        )
        up = channels[::-1] + (channels[0],)
        self.up_blocks = nn.ModuleList()
        for index in range(len(up) - 1):
            last = index == len(up) - 2
            self.up_blocks.append(nn.ModuleList([
                ResnetBlock(2 * up[index], up[index + 1], time_dim, groups, dims=1,
                            res_conv_always=True),
                transformers(up[index + 1]),
                nn.Conv1d(up[index + 1], up[index + 1], 3, padding=1) if last
                else Resample1D(up[index + 1], up=True),
            ]))
        self.final_block = Block(up[-1], up[-1], groups, dims=1)
        self.final_proj = nn.Conv1d(up[-1], n_feats, 1)
        self._initialise()
        if emo_emb_dim:  # after the official initialisation: these start at exactly zero
            self.emo_time = _cond_mlp(emo_emb_dim, time_dim)
            self.emo_mlp = _cond_mlp(emo_emb_dim, n_feats)

    def _initialise(self) -> None:
        """The official initialisation: He-normal convs and linears, zero biases, unit norms."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _inputs(self, x: Tensor, mu: Tensor, t: Tensor, spk: Tensor | None,
                emo: Tensor | None) -> tuple[Tensor, Tensor]:
        """The stacked input channels ``[x, μ(+e), s]`` and the time embedding (+ e)."""
        time_emb = self.time_mlp(self.time_embeddings(t).to(x.dtype))
        if self.emo_emb_dim:
            if emo is None or emo.shape[-1] != self.emo_emb_dim:
                got = None if emo is None else tuple(emo.shape)
                raise ValueError(f"the estimator needs emo [B, {self.emo_emb_dim}], got {got}")
            time_emb = time_emb + self.emo_time(emo)
            mu = mu + self.emo_mlp(emo).unsqueeze(-1)
        parts = [x, mu]
        if self.spk_emb_dim:
            if spk is None or spk.shape[-1] != self.spk_emb_dim:
                got = None if spk is None else tuple(spk.shape)
                raise ValueError(f"the estimator needs spk [B, {self.spk_emb_dim}], got {got}")
            parts.append(spk.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return torch.cat(parts, dim=1), time_emb

    def forward(self, x: Tensor, mask: Tensor | None, mu: Tensor, t: Tensor,
                spk: Tensor | None = None, emo: Tensor | None = None) -> Tensor:
        factor = 2**self.n_downsamplings
        if x.shape[-1] % factor:
            raise ValueError(f"the length ({x.shape[-1]}) must be a multiple of {factor}; "
                             "pad with fix_len_compatibility")
        out_mask = mask
        h, time_emb = self._inputs(x, mu, t, spk, emo)
        # without padding every mask product is the identity: the dense path skips them all
        mask = None if mask is None or not _has_padding(mask) else mask
        hiddens, masks = [], [mask]
        for resnet, blocks, downsample in self.down_blocks:
            level_mask = masks[-1]
            h = self._level(h, level_mask, time_emb, resnet, blocks)
            hiddens.append(h)
            h = downsample(_masked(h, level_mask))
            masks.append(None if level_mask is None else level_mask[:, :, ::2])
        masks = masks[:-1]
        for resnet, blocks in self.mid_blocks:
            h = self._level(h, masks[-1], time_emb, resnet, blocks)
        for resnet, blocks, upsample in self.up_blocks:
            level_mask = masks.pop()
            h = self._level(torch.cat((h, hiddens.pop()), dim=1), level_mask, time_emb, resnet,
                            blocks)
            h = upsample(_masked(h, level_mask))
        h = self.final_block(h, mask)
        return _masked(self.final_proj(_masked(h, mask)), out_mask)

    @staticmethod
    def _level(h: Tensor, mask: Tensor | None, time_emb: Tensor, resnet: ResnetBlock,
               blocks: nn.ModuleList) -> Tensor:
        h = resnet(h, mask, time_emb)
        if not len(blocks):
            return h
        key_mask = None if mask is None else mask[:, 0].bool()
        rows = h.transpose(1, 2)  # [B, T, C]
        for block in blocks:
            rows = block(rows, key_mask)
        return rows.transpose(1, 2)

