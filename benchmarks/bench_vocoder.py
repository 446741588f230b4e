"""Real-time factor of the vocoders (seconds of compute per second of audio; < 1 = faster).

Griffin-Lim at 32 and 60 iterations and a HiFi-GAN V1-size generator (random weights in the
official format, loaded through ``load_vocoder``) on a few seconds of mel, batch 1.

    .venv/bin/python benchmarks/bench_vocoder.py --threads 2 --seconds 4
    .venv/bin/python benchmarks/bench_vocoder.py --convergence data/demo/corpus/wavs

``--convergence DIR`` instead prints Griffin-Lim's spectral convergence
``‖|STFT(ĝ)| − M‖ / ‖M‖`` (M = the magnitude the vocoder gets from each wav's log-mel) and RTF
against the iteration count, over a few wavs of DIR: it chose ``vocoder.GL_ITERS``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from emomix_cli.audio import AudioConfig, load_wav, mel_spectrogram
from emomix_cli.vocoder import GriffinLim, load_vocoder

V1 = {
    "resblock": "1",
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": 8000,
}


def random_official_generator(h: dict, folder: Path) -> Path:
    """Write a random generator in the official {'generator': weight-norm state} format."""
    from emomix_cli.vocoder import HiFiGANGenerator

    state = {}
    for name, tensor in HiFiGANGenerator(h).state_dict().items():
        if name.endswith(".weight"):
            prefix = name[: -len("weight")]
            state[prefix + "weight_v"] = tensor
            state[prefix + "weight_g"] = tensor.flatten(1).norm(dim=1).view(-1, 1, 1)
        else:
            state[name] = tensor
    path = folder / "generator_v1"
    torch.save({"generator": state}, path)
    (folder / "config.json").write_text(json.dumps(h))
    return path


def time_call(fn, repeats: int) -> float:
    """Best of ``repeats`` timed calls after a warm-up (the minimum is robust to busy CPUs)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--convergence", type=Path, metavar="WAV_DIR",
                        help="print Griffin-Lim convergence vs iterations on these wavs instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.convergence:
        convergence(args.convergence)
        return
    audio = AudioConfig()
    frames = int(args.seconds * audio.sample_rate / audio.hop_length)
    mel = torch.randn(1, audio.n_mels, frames, generator=torch.Generator().manual_seed(0)) - 4
    audio_seconds = frames * audio.hop_length / audio.sample_rate

    rows = []
    for n_iter in (32, 60):
        vocoder = load_vocoder(
            "griffinlim", config={"n_iter": n_iter}, audio=audio, device=args.device
        )
        rows.append(
            (f"griffinlim n_iter={n_iter}", time_call(lambda v=vocoder: v(mel), args.repeats))
        )
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = random_official_generator(V1, Path(tmp))
        vocoder = load_vocoder("hifigan", checkpoint, audio=audio, device=args.device)
        rows.append(("hifigan V1 (random weights)", time_call(lambda: vocoder(mel), args.repeats)))

    print(
        f"device={args.device} threads={args.threads} audio={audio_seconds:.2f} s, batch 1, best of {args.repeats}"
    )
    print(f"| {'vocoder':<30} | {'s / call':>9} | {'RTF':>6} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 8}|")
    for name, seconds in rows:
        print(f"| {name:<30} | {seconds:9.3f} | {seconds / audio_seconds:6.3f} |")


if __name__ == "__main__":
    main()
