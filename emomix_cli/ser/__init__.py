"""Speech emotion recognition (docs/DESIGN.md §4): the 3-D CRNN, its training and emotion prototypes."""

from __future__ import annotations

from pathlib import Path

import torch

from ..audio import AudioConfig
from ..checkpoint import load_checkpoint
from ..config import from_dict
from ..errors import EmomixError
from .model import SER, SERConfig, compute_norm_stats, mel_deltas
from .prototypes import Prototypes, compute_prototypes, load_prototypes

_TRAINING = ("SERTrainConfig", "evaluate_ser", "train_ser")


def __getattr__(name: str):
    """The training names, imported on first use: training pulls in the data pipeline and the
    training loop, which loading a model (``emomix mix``) never needs."""
    if name in _TRAINING:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ser_from_payload(payload: dict, device: str | torch.device = "cpu") -> SER:
    """A frozen, eval-mode SER from a "ser" checkpoint payload (also embedded in TTS checkpoints)."""
    try:
        model = SER(from_dict(SERConfig, payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise EmomixError(
            f"SER checkpoint payload is incomplete or mismatched ({type(error).__name__}); "
            "re-train it with `emomix train ser`"
        ) from None
    model.audio = from_dict(AudioConfig, payload.get("audio", {}))
    model.metrics = payload.get("metrics", {})
    model.corpus = payload.get("corpus")  # {"dataset", "speakers"} it was trained on, if recorded
    model.requires_grad_(False)
    return model.to(device).eval()


def load_ser(path: str | Path, device: str | torch.device = "cpu") -> SER:
    """Load a "ser" checkpoint as a frozen SER in eval mode (``.audio``, ``.metrics`` attached)."""
    return ser_from_payload(load_checkpoint(path, "ser"), device)


__all__ = [
    "SER", "SERConfig", "SERTrainConfig", "Prototypes", "compute_norm_stats", "compute_prototypes",
    "evaluate_ser", "load_prototypes", "load_ser", "mel_deltas", "ser_from_payload", "train_ser",
]
