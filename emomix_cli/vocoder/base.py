"""The vocoder contract: a callable ``mel[B, n_mels, T] -> wav[B, T * hop]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..audio import AudioConfig
from ..errors import EmomixError


class Vocoder:
    """Callable ``mel[B, n_mels, T] -> wav[B, T * hop]`` (a 2-D mel gives a 1-D wav)."""

    name: str = "vocoder"

    def __init__(self, audio: AudioConfig, device: str | torch.device = "cpu"):
        self.audio = audio
        self.device = torch.device(device)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def hop_length(self) -> int:
        return self.audio.hop_length

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        mel = torch.as_tensor(mel)
        single = mel.dim() == 2
        if single:
            mel = mel.unsqueeze(0)
        if mel.dim() != 3 or mel.shape[1] != self.audio.n_mels:
            raise EmomixError(
                f"vocoder expects a mel [B, {self.audio.n_mels}, T], got shape {tuple(mel.shape)}; "
                "pass the acoustic model's log-mel"
            )
        out_device = mel.device
        with torch.inference_mode():
            wav = self._vocode(mel.to(self.device, torch.float32))
        wav = _fit_length(wav, mel.shape[-1] * self.hop_length).to(out_device)
        return wav[0] if single else wav

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _fit_length(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Trim or zero-pad the last axis to exactly ``length`` samples."""
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return F.pad(wav, (0, length - wav.shape[-1]))


