"""Griffin-Lim (no weights): the mel is inverted to a linear magnitude with the pseudo-inverse of
the mel basis, then the phase is recovered with the fast (momentum) Griffin-Lim of Perraudin et
al. (2013), in torch and batched, using exactly the framing of
:func:`emomix_cli.audio.linear_spectrogram` (reflect pad (n_fft - hop) / 2, center=False, Hann).
Its output is barely periodic: never judge voicing on it (docs/DESIGN.md §7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..audio import AudioConfig, mel_filterbank
from ..errors import EmomixError
from .base import Vocoder

# Fast Griffin-Lim iterations. Spectral convergence on demo-corpus mels (benchmarks/bench_vocoder.py
# --convergence): 0.159 at 16, 0.139 at 32, 0.131 at 60, 0.128 at 100; 32 costs half of 60.
GL_ITERS = 32


class GriffinLim(Vocoder):
    """Fast Griffin-Lim (momentum) from the log-mel; deterministic (seeded initial phase)."""

    name = "griffinlim"

    def __init__(
        self,
        audio: AudioConfig | None = None,
        n_iter: int | None = None,
        momentum: float = 0.99,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        super().__init__(audio or AudioConfig(), device)
        n_iter = GL_ITERS if n_iter is None else n_iter
        if n_iter < 0:
            raise EmomixError(f"Griffin-Lim n_iter must be >= 0, got {n_iter}; use e.g. {GL_ITERS}")
        if not 0.0 <= momentum < 1.0:
            raise EmomixError(
                f"Griffin-Lim momentum must be in [0, 1), got {momentum}; use e.g. 0.99"
            )
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.seed = int(seed)
        basis = mel_filterbank(self.audio).double()
        # Pseudo-inverse of the mel basis [n_freq, n_mels]: least-squares linear magnitude.
        self.inverse_basis = torch.linalg.pinv(basis).float().to(self.device)
        self.window = _padded_window(self.audio, self.device)

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, n_mels, T] -> linear magnitude [B, n_fft//2+1, T] (>= 0)."""
        # The clamp keeps exp() finite for a diverged model's mel (a real log-mel is < ~5).
        mel = mel.clamp(max=30.0)
        return torch.matmul(self.inverse_basis.to(mel.device), mel.exp()).clamp_(min=0.0)

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:
        magnitude = self.mel_to_magnitude(mel)
        return self.reconstruct(magnitude, self.n_iter)

    def reconstruct(self, magnitude: torch.Tensor, n_iter: int) -> torch.Tensor:
        """Fast Griffin-Lim on a magnitude [B, F, T] -> wav [B, T * hop]."""
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=generator) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(magnitude.device)
        last = torch.zeros_like(angles)
        # Perraudin's c_n = t_n + a (t_n - t_{n-1}) has the phase of t_n - a/(1+a) t_{n-1}.
        factor = self.momentum / (1.0 + self.momentum)
        for _ in range(n_iter):
            rebuilt = self.stft(self.istft(magnitude * angles))
            angles = rebuilt - factor * last
            angles = angles / (angles.abs() + 1e-16)
            last = rebuilt
        return self.istft(magnitude * angles)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex STFT [B, F, T] with the framing of ``audio.linear_spectrogram``."""
        cfg = self.audio
        pad = (cfg.n_fft - cfg.hop_length) // 2
        wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        return torch.stft(
            wav,
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=torch.hann_window(cfg.win_length, device=wav.device),
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Least-squares inverse of :meth:`stft`: [B, F, T] -> wav [B, T * hop].

        Weighted overlap-add divided by the summed squared window, then the reflect padding
        is cut off. (``torch.istft`` refuses center=False with a Hann window: the window sum
        is zero at the very edges, which here fall inside the cut padding.)
        """
        cfg = self.audio
        n_frames = spec.shape[-1]
        frames = torch.fft.irfft(spec, n=cfg.n_fft, dim=1) * self.window.view(1, -1, 1)
        length = (n_frames - 1) * cfg.hop_length + cfg.n_fft
        wav = F.fold(frames, (1, length), (1, cfg.n_fft), stride=(1, cfg.hop_length)).flatten(1)
        norm = F.fold(
            self.window.pow(2).view(1, -1, 1).expand(1, -1, n_frames),
            (1, length),
            (1, cfg.n_fft),
            stride=(1, cfg.hop_length),
        ).flatten(1)
        wav = wav / norm.clamp(min=1e-8)
        pad = (cfg.n_fft - cfg.hop_length) // 2
        return wav[:, pad : pad + n_frames * cfg.hop_length]


def _padded_window(cfg: AudioConfig, device) -> torch.Tensor:
    """Hann(win_length) centred in n_fft samples, as torch.stft applies it."""
    window = torch.hann_window(cfg.win_length, device=device)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(window, (left, cfg.n_fft - cfg.win_length - left))


