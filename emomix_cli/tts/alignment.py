"""Monotonic alignment search (Glow-TTS / Grad-TTS) and duration → path helpers.

``maximum_path(value, mask)`` finds, for every batch item, the monotonic alignment between
``Tx`` text tokens and ``Ty`` mel frames that maximises the summed log-likelihood ``value``:
each frame belongs to exactly one token, the token index never decreases and rises by at most
one per frame, the path starts at (0, 0) and ends at (Tx − 1, Ty − 1) of the item's own
lengths (read from ``mask``). It needs ``Tx ≤ Ty`` per item (every token gets ≥ 1 frame).
Its loops are compiled with numba (:mod:`.alignment_kernels`), imported on the first call: only
training aligns, so synthesis never pays for importing numba.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def maximum_path(value: Tensor, mask: Tensor) -> Tensor:
    """Most likely monotonic alignment. ``value, mask: [B, Tx, Ty]`` → one-hot path ``[B, Tx, Ty]``.

    ``value`` is the log-likelihood of frame y under token x; ``mask`` is 1 on the valid
    ``[:Tx_b, :Ty_b]`` block of each item. The path has the dtype/device of ``value`` and is 0
    outside the mask. Runs on the CPU (the tensors are moved there and back).
    """
    if value.shape != mask.shape or value.dim() != 3:
        raise ValueError(
            f"value and mask must both be [B, Tx, Ty], got {value.shape}, {mask.shape}"
        )
    mask_np = mask.detach().to("cpu", torch.float32).numpy()
    value_np = np.ascontiguousarray(value.detach().to("cpu", torch.float64).numpy() * mask_np)
    t_xs = (mask_np.sum(axis=1)[:, 0]).astype(np.int64)
    t_ys = (mask_np.sum(axis=2)[:, 0]).astype(np.int64)
    if np.any(t_xs > t_ys):
        bad = int(np.argmax(t_xs > t_ys))
        raise ValueError(
            f"batch item {bad} has more tokens ({t_xs[bad]}) than frames ({t_ys[bad]});"
            " a monotonic alignment needs at least one frame per token"
        )
    from .alignment_kernels import maximum_path_batch

    path = np.zeros(value_np.shape, dtype=np.float64)
    maximum_path_batch(path, value_np, t_xs, t_ys)
    return torch.from_numpy(path).to(device=value.device, dtype=value.dtype)


def sequence_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """Boolean ``[B, T]`` mask, True where ``position < lengths[b]``."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(int(max_length), dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def generate_path(durations: Tensor, mask: Tensor) -> Tensor:
    """Hard alignment from integer durations. ``durations: [B, Tx]``, ``mask: [B, Tx, Ty]``.

    Token x covers frames ``[Σ_{i<x} d_i, Σ_{i≤x} d_i)``; returns the one-hot path
    ``[B, Tx, Ty]`` (dtype of ``mask``), cut to ``mask``.
    """
    batch, t_x, t_y = mask.shape
    ends = torch.cumsum(durations, dim=1)
    covered = sequence_mask(ends.reshape(-1), t_y).reshape(batch, t_x, t_y).to(mask.dtype)
    path = covered - torch.nn.functional.pad(covered, (0, 0, 1, 0))[:, :-1]
    return path * mask


def path_durations(path: Tensor) -> Tensor:
    """Frames per token ``[B, Tx]`` of a one-hot path ``[B, Tx, Ty]``."""
    return path.sum(dim=-1)
