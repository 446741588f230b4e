"""The one mel-spectrogram image writer (``emomix mix --mel-png``, training samples, eval).

Drawn with matplotlib's object API (``Figure``, no ``pyplot``): no global backend switch, no
figure registry to leak, safe in any thread or process.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .config import atomic_write_bytes


def save_mel_png(mel: np.ndarray | torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Plot a log-mel ``[n_mels, T]`` (low bins at the bottom, with a colour bar) to a PNG,
    written atomically; returns ``path``."""
    atomic_write_bytes(path, mel_png_bytes(mel, title))
    return Path(path)


def mel_png_bytes(mel: np.ndarray | torch.Tensor, title: str = "") -> bytes:
    """The picture of :func:`save_mel_png` as PNG bytes."""
    from matplotlib.figure import Figure

    mel = mel.detach().float().cpu().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"save_mel_png takes a mel [n_mels, T], got shape {mel.shape}")
    figure = Figure(figsize=(max(4.0, mel.shape[-1] / 60), 3.0))
    axis = figure.subplots()
    image = axis.imshow(mel, origin="lower", aspect="auto", interpolation="none")
    axis.set(title=title, xlabel="frame", ylabel="mel bin")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
