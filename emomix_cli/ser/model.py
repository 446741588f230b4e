"""Speech emotion recognizer: the 3-D CRNN with attention of Chen et al. (2018).

Input ``mel [B, n_mels, T]`` with ``lengths [B]`` (valid frames). The three input channels are
the log-mel, its delta and delta-delta (``audio.deltas``), z-scored per channel and mel bin with
training statistics kept as buffers (so they travel in the state_dict). Layout is
``[B, C, F, T]`` (frequency, then time). Following the authors' code, "5×3" is 5 frames × 3 mel
bins (``kernel_size=(3, 5)`` here) and the pool "2×4" after conv1 is 2 frames × 4 bins.

conv1 (LeakyReLU 0.01) → max-pool → conv2..n → per-frame linear → BLSTM → attention pooling →
embedding FC (the emotion embedding ``e``) → LeakyReLU → classifier.

Padding never changes a real item's output: deltas are taken with the sequence's own last frame
replicated (as for an unpadded sequence), every conv output is re-masked to zero past the item's
length (as conv zero padding sees it), the BLSTM is packed and attention is masked.
The whole path from ``mel`` is differentiable (``feature_maps`` feeds the style loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..audio import deltas

TIME_POOL, FREQ_POOL = 2, 4


@dataclass
class SERConfig:
    """Paper size by default (GPU); ``SERConfig.compact()`` is the CPU/demo preset."""

    emotions: list[str] = field(default_factory=list)  # filled from the feature store
    n_mels: int = 80
    conv1_channels: int = 128
    conv_channels: int = 256
    n_conv: int = 6  # conv1 + (n_conv - 1) more
    linear_dim: int = 768
    lstm_hidden: int = 128  # per direction
    embed_dim: int = 128
    dropout: float = 0.2

    @classmethod
    def compact(cls, **overrides) -> SERConfig:
        values = dict(conv1_channels=16, conv_channels=32, n_conv=4, linear_dim=256,
                      lstm_hidden=64, embed_dim=64, dropout=0.1)
        values.update(overrides)
        return cls(**values)


def time_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B] lengths -> bool mask [B, frames] (True on valid frames)."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def _replicate_past_end(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, F, T]: frames at t >= length take the value of frame length - 1."""
    frames = x.shape[-1]
    index = torch.minimum(torch.arange(frames, device=x.device)[None, :], (lengths - 1)[:, None])
    return torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1))


def mel_deltas(mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, F, T] -> [B, 3, F, T] (log-mel, delta, delta-delta), length-aware, differentiable.

    Equals ``audio.mel_with_deltas`` on each unpadded item.
    """
    mel = _replicate_past_end(mel, lengths)
    d1 = _replicate_past_end(deltas(mel), lengths)
    return torch.stack([mel, d1, deltas(d1)], dim=1)


@torch.no_grad()
def compute_norm_stats(mels, n_mels: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std [3, n_mels] over all frames of an iterable of mels [n_mels, T]."""
    total = torch.zeros(3, n_mels, dtype=torch.float64)
    total_sq = torch.zeros(3, n_mels, dtype=torch.float64)
    count = 0
    for mel in mels:
        mel = torch.as_tensor(mel, dtype=torch.float32)[None]
        feats = mel_deltas(mel, torch.tensor([mel.shape[-1]]))[0].double()
        total += feats.sum(-1)
        total_sq += (feats**2).sum(-1)
        count += feats.shape[-1]
    if count == 0:
        return torch.zeros(3, n_mels), torch.ones(3, n_mels)
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-8).sqrt()
    return mean.float(), std.float().clamp_min(1e-3)


class SER(nn.Module):
    def __init__(self, cfg: SERConfig):
        super().__init__()
        if not cfg.emotions:
            raise ValueError("SERConfig.emotions is empty; it is filled from the feature store")
        if cfg.n_conv < 1 or cfg.n_mels < FREQ_POOL:
            raise ValueError("SERConfig needs n_conv >= 1 and n_mels >= 4")
        self.cfg = cfg
        self.emotions = list(cfg.emotions)
        self.embed_dim = cfg.embed_dim
        self.register_buffer("norm_mean", torch.zeros(3, cfg.n_mels))
        self.register_buffer("norm_std", torch.ones(3, cfg.n_mels))
        channels = [3, cfg.conv1_channels] + [cfg.conv_channels] * (cfg.n_conv - 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=(3, 5), padding=(1, 2))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.pool = nn.MaxPool2d(kernel_size=(FREQ_POOL, TIME_POOL))
        self.project = nn.Linear(channels[-1] * (cfg.n_mels // FREQ_POOL), cfg.linear_dim)
        self.lstm = nn.LSTM(cfg.linear_dim, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Linear(2 * cfg.lstm_hidden, 1)
        self.embedding = nn.Linear(2 * cfg.lstm_hidden, cfg.embed_dim)
        self.classifier = nn.Linear(cfg.embed_dim, len(self.emotions))
        self.dropout = nn.Dropout(cfg.dropout)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.norm_mean.copy_(mean)
        self.norm_std.copy_(std)

    @staticmethod
    def _lengths(mel: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            return torch.full((mel.shape[0],), mel.shape[-1], dtype=torch.long, device=mel.device)
        return lengths.to(device=mel.device, dtype=torch.long).clamp(1, mel.shape[-1])

    def _cnn(self, mel: torch.Tensor, lengths: torch.Tensor):
        """-> (feature maps [B, C, F, T] per conv, pooled lengths)."""
        x = (mel_deltas(mel, lengths) - self.norm_mean[None, :, :, None]) / self.norm_std[None, :, :, None]
        mask = time_mask(lengths, x.shape[-1])[:, None, None, :]
        x = x * mask
        maps = []
        for index, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.01) * mask
            maps.append(x)
            if index == 0:
                x = self.pool(x)
                lengths = torch.div(lengths, TIME_POOL, rounding_mode="floor").clamp_min(1)
                mask = time_mask(lengths, x.shape[-1])[:, None, None, :]
                x = x * mask
        return maps, lengths

    def feature_maps(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The CNN's feature maps [B, C, F, T] (after activation, zero past each length)."""
        return self._cnn(mel, self._lengths(mel, lengths))[0]

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """mel [B, n_mels, T], lengths [B] -> logits [B, C], embedding [B, D], attention [B, T']."""
        if mel.shape[-1] < TIME_POOL:
            raise ValueError(f"SER needs at least {TIME_POOL} frames, got {mel.shape[-1]}")
        maps, lengths = self._cnn(mel, self._lengths(mel, lengths))
        x = maps[-1]
        batch, channels, freq, frames = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, frames, channels * freq)
        x = self.dropout(self.project(x))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=frames)
        scores = self.attention(h).squeeze(-1).masked_fill(~time_mask(lengths, frames), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)
        embedding = self.embedding(self.dropout(pooled))
        logits = self.classifier(self.dropout(F.leaky_relu(embedding, 0.01)))
        return {"logits": logits, "embedding": embedding, "attention": weights}

    def embed(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Utterance emotion embedding [B, embed_dim]."""
        return self.forward(mel, lengths)["embedding"]

    def predict_proba(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior over ``self.emotions`` [B, C]."""
        return torch.softmax(self.forward(mel, lengths)["logits"], dim=-1)
