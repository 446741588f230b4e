"""Grad-TTS / Matcha-TTS text encoder conditioned on emotion (and speaker).

Token embedding → ConvReluNorm prenet → [+ emotion bias] → [concat condition over time] →
transformer → ``proj_m`` (μ, ``[B, n_feats, Tx]``) and a duration predictor ``proj_w``
(log w, ``[B, 1, Tx]``) that sees the same input, detached.

- Position: relative-position attention with a window (Grad-TTS) or rotary position embeddings
  on half of each head's channels (Matcha-TTS, ``rotary=True``).
- Conditions: the speaker vector (and, with ``cond_dim`` including it, the projected emotion)
  is concatenated over time, as Grad-TTS concatenates its speaker vector; or the emotion is
  added to the prenet output through ``emo_in`` (``add_dim``), a zero-initialised projection,
  so a pretrained encoder keeps its shapes and computes what it did until training moves it.

Parameter names follow the official Grad-TTS and Matcha-TTS encoders so their weights load
where the shapes match.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .alignment import sequence_mask


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T...]`` (Glow-TTS style, eps 1e-4)."""

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        variance = ((x - mean) ** 2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(variance + self.eps)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return x * self.gamma.view(*shape) + self.beta.view(*shape)


class ConvReluNorm(nn.Module):
    """Residual stack of conv → LayerNorm → ReLU → dropout; the output projection starts at 0."""

    def __init__(
        self, channels: int, kernel_size: int = 5, n_layers: int = 3, p_dropout: float = 0.5
    ):
        super().__init__()
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
            for _ in range(n_layers)
        )
        self.norm_layers = nn.ModuleList(LayerNorm(channels) for _ in range(n_layers))
        self.relu_drop = nn.Sequential(nn.ReLU(), nn.Dropout(p_dropout))
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        h = x
        for conv, norm in zip(self.conv_layers, self.norm_layers, strict=True):
            h = self.relu_drop(norm(conv(h * x_mask)))
        return (x + self.proj(h)) * x_mask


class DurationPredictor(nn.Module):
    """Two conv-ReLU-LayerNorm layers and a 1×1 projection to log-durations ``[B, 1, Tx]``."""

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = LayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(
            filter_channels, filter_channels, kernel_size, padding=kernel_size // 2
        )
        self.norm_2 = LayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        x = self.drop(self.norm_1(torch.relu(self.conv_1(x * x_mask))))
        x = self.drop(self.norm_2(torch.relu(self.conv_2(x * x_mask))))
        return self.proj(x * x_mask) * x_mask


def relative_position_onehot(length: int, window_size: int, device=None) -> Tensor:
    """``[T, T, 2w+1]`` one-hot of the clipped offset ``j − i + w``, zero where ``|j − i| > w``."""
    positions = torch.arange(length, device=device)
    offset = positions.unsqueeze(0) - positions.unsqueeze(1)  # [i, j] = j - i
    inside = offset.abs() <= window_size
    index = offset.clamp(-window_size, window_size) + window_size
    onehot = torch.nn.functional.one_hot(index, 2 * window_size + 1)
    return onehot * inside.unsqueeze(-1)


def rotate_half_features(x: Tensor, rotated: int, base: float = 10_000.0) -> Tensor:
    """Rotary position embedding on the first ``rotated`` channels of ``x [B, H, T, d]``.

    Pairs ``(x_i, x_{i+r/2})`` (r = ``rotated``) of position m are rotated by the angle
    ``m·θ_i``, ``θ_i = base^(−2i/r)``: ``x·cos + [−x_{r/2:r}, x_{:r/2}]·sin``. The remaining
    ``d − r`` channels pass unchanged (Matcha-TTS rotates half of each head).
    """
    length = x.shape[2]
    theta = base ** (-torch.arange(0, rotated, 2, device=x.device, dtype=torch.float32) / rotated)
    angles = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * theta[None]
    angles = torch.cat([angles, angles], dim=-1)  # [T, r]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    head, rest = x[..., :rotated], x[..., rotated:]
    half = rotated // 2
    turned = torch.cat([-head[..., half:], head[..., :half]], dim=-1)
    return torch.cat([head * cos + turned * sin, rest], dim=-1)


class MultiHeadAttention(nn.Module):
    """Self-attention with positions from relative keys and values (Shaw et al.), window ``w``,
    or rotary embeddings (``rotary=True``, on half of each head's channels; no parameters).

    Relative: ``score_ij = q_i·k_j/√d + q_i·E^k_{j−i}/√d`` for ``|j − i| ≤ w``; the output adds
    ``Σ_j p_ij E^v_{j−i}``. The relative tables are shared across heads (``[1, 2w+1, d]``).
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        window_size: int | None = None,
        p_dropout: float = 0.0,
        rotary: bool = False,
    ):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        if rotary and window_size is not None:
            raise ValueError("rotary attention takes no relative window; pass window_size=None")
        self.n_heads = n_heads
        self.window_size = window_size
        self.k_channels = channels // n_heads
        # Matcha-TTS rotates int(d · 0.5) channels of each head
        self.rotary_channels = int(self.k_channels * 0.5) if rotary else 0
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        if window_size is not None:
            std = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(
                torch.randn(1, 2 * window_size + 1, self.k_channels) * std
            )
            self.emb_rel_v = nn.Parameter(
                torch.randn(1, 2 * window_size + 1, self.k_channels) * std
            )
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        """``x: [B, C, T]``, ``attn_mask: [B, 1, T, T]`` (1 = attend) → ``[B, C_out, T]``."""
        batch, channels, length = x.shape

        def heads(h: Tensor) -> Tensor:  # [B, C, T] -> [B, H, T, d]
            return h.view(batch, self.n_heads, self.k_channels, length).transpose(2, 3)

        query, key, value = heads(self.conv_q(x)), heads(self.conv_k(x)), heads(self.conv_v(x))
        if self.rotary_channels:
            query = rotate_half_features(query, self.rotary_channels)
            key = rotate_half_features(key, self.rotary_channels)
        query = query / math.sqrt(self.k_channels)
        scores = query @ key.transpose(-2, -1)
        if self.window_size is not None:
            rel = relative_position_onehot(length, self.window_size, x.device).to(x.dtype)
            rel_logits = query @ self.emb_rel_k[0].transpose(0, 1)  # [B, H, T, 2w+1]
            scores = scores + torch.einsum("bhir,ijr->bhij", rel_logits, rel)
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = self.drop(torch.softmax(scores, dim=-1))
        out = p_attn @ value
        if self.window_size is not None:
            rel_weights = torch.einsum("bhij,ijr->bhir", p_attn, rel)
            out = out + rel_weights @ self.emb_rel_v[0]
        out = out.transpose(2, 3).reshape(batch, channels, length)
        return self.conv_o(out)


class FFN(nn.Module):
    def __init__(
        self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0
    ):
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        x = self.drop(torch.relu(self.conv_1(x * x_mask)))
        return self.conv_2(x * x_mask) * x_mask


class Encoder(nn.Module):
    """Post-norm transformer: (attention, add, norm, FFN, add, norm) × n_layers."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int | None = None,
        rotary: bool = False,
    ):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window_size, p_dropout,
                               rotary)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = x * x_mask
            x = norm_1(x + self.drop(attn(x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask


class TextEncoder(nn.Module):
    """Tokens (+ condition vector) → ``mu_x [B, n_feats, Tx]``, ``logw [B, 1, Tx]``, ``x_mask [B, 1, Tx]``.

    ``cond_dim`` is the width of the condition concatenated to the prenet output (speaker
    vector + projected emotion; 0 for none, which is the single-speaker Grad-TTS encoder).
    ``add_dim``: the width of a vector added to the prenet output through the zero-initialised
    ``emo_in`` (0: none). ``rotary``: Matcha-TTS's rotary attention instead of the window.
    """

    def __init__(
        self,
        n_vocab: int,
        n_feats: int,
        n_channels: int,
        filter_channels: int,
        filter_channels_dp: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window_size: int | None = 4,
        cond_dim: int = 0,
        add_dim: int = 0,
        rotary: bool = False,
    ):
        super().__init__()
        self.n_channels = n_channels
        self.cond_dim, self.add_dim = cond_dim, add_dim
        self.emb = nn.Embedding(n_vocab, n_channels)
        nn.init.normal_(self.emb.weight, 0.0, n_channels**-0.5)
        self.prenet = ConvReluNorm(n_channels, kernel_size=5, n_layers=3, p_dropout=0.5)
        if add_dim:
            self.emo_in = nn.Linear(add_dim, n_channels)
            nn.init.zeros_(self.emo_in.weight)
            nn.init.zeros_(self.emo_in.bias)
        width = n_channels + cond_dim
        self.encoder = Encoder(
            width, filter_channels, n_heads, n_layers, kernel_size, p_dropout, window_size, rotary
        )
        self.proj_m = nn.Conv1d(width, n_feats, 1)
        self.proj_w = DurationPredictor(width, filter_channels_dp, kernel_size, p_dropout)

    def forward(
        self, tokens: Tensor, lengths: Tensor, cond: Tensor | None = None,
        add: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``tokens [B, Tx]`` long, ``lengths [B]``, ``cond [B, cond_dim]`` or None,
        ``add [B, add_dim]`` or None; either may also hold one vector per token,
        ``[B, Tx, cond_dim]`` / ``[B, Tx, add_dim]`` (an emotion that changes along the text)."""
        x = self.emb(tokens) * math.sqrt(self.n_channels)
        x = x.transpose(1, 2)
        x_mask = sequence_mask(lengths, tokens.shape[1]).unsqueeze(1).to(x.dtype)
        x = self.prenet(x, x_mask)
        if self.add_dim:
            if add is None or add.shape[-1] != self.add_dim:
                got = None if add is None else tuple(add.shape)
                raise ValueError(f"the encoder needs an added vector [B, {self.add_dim}], got {got}")
            x = x + _over_tokens(self.emo_in(add), x.shape[-1]) * x_mask
        if self.cond_dim:
            if cond is None or cond.shape[-1] != self.cond_dim:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"the encoder needs a condition [B, {self.cond_dim}], got {got}")
            x = torch.cat([x, _over_tokens(cond, x.shape[-1])], dim=1)
        x = self.encoder(x, x_mask)
        mu = self.proj_m(x) * x_mask
        logw = self.proj_w(x.detach(), x_mask)
        return mu, logw, x_mask


def _over_tokens(vector: Tensor, length: int) -> Tensor:
    """``[B, C]`` (one vector per utterance) or ``[B, L, C]`` (one per token) -> ``[B, C, L]``."""
    if vector.dim() == 2:
        return vector.unsqueeze(-1).expand(-1, -1, length)
    return vector.transpose(1, 2)
