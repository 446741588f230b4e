"""The mel must equal HiFi-GAN's definition, written out here independently with numpy."""

import numpy as np
import pytest
import soundfile as sf
import torch

from emomix_cli import audio
from emomix_cli.errors import EmomixError


def reference_mel(wav: np.ndarray, sr=22050, n_fft=1024, hop=256, win=1024, n_mels=80, fmin=0, fmax=8000):
    """HiFi-GAN meldataset.mel_spectrogram, step by step in numpy + librosa's slaney basis."""
    import librosa

    pad = (n_fft - hop) // 2
    padded = np.pad(wav, (pad, pad), mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    frames = np.stack([padded[i * hop : i * hop + n_fft] * window for i in range(n_frames)])
    spec = np.fft.rfft(frames, n=n_fft, axis=1).T
    magnitude = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.log(np.clip(basis @ magnitude, 1e-5, None))


def test_mel_matches_hifigan_definition():
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    wav = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.shape)
    ours = audio.mel_spectrogram(torch.tensor(wav, dtype=torch.float64).float(), audio.AudioConfig())[0]
    ref = reference_mel(wav.astype(np.float32).astype(np.float64))
    assert ours.shape == ref.shape
    assert np.abs(ours.numpy() - ref).max() < 1e-4


def test_mel_is_batched_and_frame_count_matches():
    cfg = audio.AudioConfig()
    wav = torch.randn(3, 5000) * 0.1
    mel = audio.mel_spectrogram(wav, cfg)
    assert mel.shape == (3, 80, audio.n_frames(5000, cfg))
    single = audio.mel_spectrogram(wav[1], cfg)[0]
    assert torch.allclose(mel[1], single, atol=1e-5)


def test_mel_filterbank_equals_librosa():
    import librosa

    cfg = audio.AudioConfig(sample_rate=16000, n_fft=512, n_mels=40, fmin=50, fmax=7000)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=50, fmax=7000)
    assert np.abs(audio.mel_filterbank(cfg).numpy() - ref).max() < 1e-6


def test_delta_of_linear_ramp_is_its_slope():
    ramp = torch.arange(20, dtype=torch.float32).view(1, 1, 20) * 0.5
    d = audio.deltas(ramp)
    assert torch.allclose(d[..., 2:-2], torch.full_like(d[..., 2:-2], 0.5))


def test_delta_formula_by_hand():
    x = torch.tensor([[0.0, 1.0, 4.0, 9.0, 16.0, 25.0]])
    d = audio.deltas(x, width=2)
    # d_2 = (1*(x3-x1) + 2*(x4-x0)) / (2*(1+4)) = (8 + 32) / 10
    assert d[0, 2].item() == pytest.approx(4.0)


def test_deltas_are_differentiable():
    mel = torch.randn(2, 80, 30, requires_grad=True)
    audio.mel_with_deltas(mel).pow(2).sum().backward()
    assert mel.grad is not None and mel.grad.abs().sum() > 0


def test_load_wav_resamples_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((16000, 2), dtype=np.float32) + 0.1, 16000)
    out = audio.load_wav(path, audio.AudioConfig())
    assert out.ndim == 1 and abs(len(out) - 22050) < 5


def test_corrupt_and_empty_wavs_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(EmomixError, match="bad.wav"):
        audio.load_wav(bad, audio.AudioConfig())
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(EmomixError, match="empty"):
        audio.load_wav(empty, audio.AudioConfig())


def test_save_wav_round_trips_pcm16(tmp_path):
    x = np.sin(np.linspace(0, 100, 2205)).astype(np.float32) * 0.5
    audio.save_wav(tmp_path / "x.wav", x, 22050)
    y, sr = sf.read(tmp_path / "x.wav", dtype="float32")
    assert sr == 22050 and np.abs(x - y).max() < 1e-4
    assert not list(tmp_path.glob(".*tmp"))
