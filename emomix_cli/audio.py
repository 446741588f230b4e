"""Audio I/O and the one mel definition everyone uses (HiFi-GAN / Grad-TTS "universal").

``mel_spectrogram`` is the only place a mel is computed: prep, training, the SER, evaluation
and Griffin-Lim all go through it, so a mel made here vocodes with the official HiFi-GAN
UNIVERSAL_V1 generator unchanged. Everything is torch and batched; ``deltas`` is
differentiable so the SER's feature path can carry the style loss's gradient.
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import atomic_write_bytes
from .errors import EmomixError


@dataclass
class AudioConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    trim_db: float = 0.0  # 0 = no silence trim; else librosa.effects.trim top_db


# ---------------------------------------------------------------- mel filterbank (slaney)
def _hz_to_mel_slaney(freq: np.ndarray) -> np.ndarray:
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_region = freq >= min_log_hz
    mels = np.where(log_region, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_region = mels >= min_log_mel
    return np.where(log_region, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


@lru_cache(maxsize=16)
def _mel_basis_np(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style, slaney-normalised mel basis [n_mels, n_fft//2+1] (librosa's default)."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_points = _mel_to_hz_slaney(
        np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    )
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels])
    return (weights * enorm[:, None]).astype(np.float32)


def mel_filterbank(cfg: AudioConfig, device=None) -> torch.Tensor:
    """The mel basis [n_mels, n_fft//2+1] as a float32 tensor (equals librosa.filters.mel)."""
    basis = _mel_basis_np(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), float(cfg.fmax))
    return torch.from_numpy(basis).to(device)


def _hann(cfg: AudioConfig, device) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, device=device)


def linear_spectrogram(wav: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Magnitude spectrogram [B, n_fft//2+1, T] of wav [B, N] (or [N]), HiFi-GAN framing."""
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    pad = (cfg.n_fft - cfg.hop_length) // 2
    wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        wav,
        cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_hann(cfg, wav.device),
        center=False,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)


MEL_FLOOR = 1e-5
# The log-mel of digital silence (the floor below). Padding with it keeps a padded batch a valid
# log-mel: a consumer that does not mask (a vocoder, a plot, a convolution's receptive field at
# the edge) sees silence, while 0 would be log(1), a loud full-band frame ~11.5 nats above it.
SILENCE_LOG_MEL = math.log(MEL_FLOOR)


def mel_spectrogram(wav: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Log-mel [B, n_mels, T] of wav [B, N] (or [N]) in [-1, 1]; T = N // hop."""
    spec = linear_spectrogram(wav, cfg)
    mel = torch.matmul(mel_filterbank(cfg, spec.device), spec)
    return torch.log(torch.clamp(mel, min=MEL_FLOOR))


def n_frames(n_samples: int, cfg: AudioConfig) -> int:
    """Frames that :func:`mel_spectrogram` yields for ``n_samples`` samples."""
    padded = n_samples + 2 * ((cfg.n_fft - cfg.hop_length) // 2)
    return 1 + (padded - cfg.n_fft) // cfg.hop_length


# ---------------------------------------------------------------- deltas (differentiable)
def deltas(feature: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas along the last axis (HTK formula, edge-replicated).

    ``d_t = Σ_{n=1..N} n (c_{t+n} − c_{t−n}) / (2 Σ n²)``; feature [..., T] -> [..., T].
    """
    shape = feature.shape
    flat = feature.reshape(-1, 1, shape[-1])
    padded = F.pad(flat, (width, width), mode="replicate")
    n = torch.arange(-width, width + 1, dtype=feature.dtype, device=feature.device)
    kernel = (n / (2 * (n[width + 1 :] ** 2).sum())).view(1, 1, -1)
    out = F.conv1d(padded, kernel)
    return out.reshape(shape)


def mel_with_deltas(mel: torch.Tensor) -> torch.Tensor:
    """[B, n_mels, T] -> [B, 3, n_mels, T]: log-mel, delta and delta-delta."""
    d1 = deltas(mel)
    d2 = deltas(d1)
    return torch.stack([mel, d1, d2], dim=1)


# ---------------------------------------------------------------- wav files
def load_wav(path: str | Path, cfg: AudioConfig) -> np.ndarray:
    """Read any soundfile format as mono float32 at ``cfg.sample_rate`` (optionally trimmed).

    Raises :class:`EmomixError` naming the file when it cannot be read or holds no audio.
    """
    import soundfile as sf

    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types for broken files
        raise EmomixError(f"cannot read audio file {path}: {error} (is it a valid wav/flac?)") from None
    if data.size == 0:
        raise EmomixError(f"audio file {path} is empty (0 samples); re-export or remove it")
    audio = data.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise EmomixError(f"audio file {path} contains NaN/inf samples; re-export it")
    if sr != cfg.sample_rate:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=cfg.sample_rate)
    if cfg.trim_db and cfg.trim_db > 0:
        import librosa

        audio, _ = librosa.effects.trim(audio, top_db=cfg.trim_db)
    return np.ascontiguousarray(audio, dtype=np.float32)


def pcm16(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float audio in [-1, 1] (clipped) as 16-bit PCM samples ``[N]``."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    audio = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (audio * 32767.0).round().astype("<i2")


def wav_bytes(audio: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """16-bit PCM mono wav of float audio in [-1, 1] (clipped), as bytes."""
    pcm = pcm16(audio)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()


def save_wav(path: str | Path, audio: np.ndarray | torch.Tensor, sample_rate: int) -> None:
    """Write a 16-bit PCM wav atomically (temp file + rename)."""
    atomic_write_bytes(path, wav_bytes(audio, sample_rate))
