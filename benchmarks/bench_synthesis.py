"""Real-time factor of mixed-emotion synthesis: N steps × M emotions, batched vs sequential.

RTF = wall seconds / audio seconds (lower is faster; < 1 is faster than real time). The decoder
column is the sampler alone (N steps of the U-Net over M conditions); "guided" adds the null row
of guidance (w ≠ 1: M + 1 rows in the same call); "+ vocoder" adds the default vocoder
(HiFi-GAN UNIVERSAL_V1) and "+ GL" Griffin-Lim, i.e. `emomix mix` end to end minus text.
Without ``--model`` the "small" preset with random weights is timed (speed does not depend on
the weights) on a prior of ``--seconds`` of audio; with ``--model CKPT`` the trained model
speaks ``--text`` and its own durations set the length.

    .venv/bin/python benchmarks/bench_synthesis.py            # full
    .venv/bin/python benchmarks/bench_synthesis.py --quick    # one repeat, 2 s of audio
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from emomix_cli.audio import AudioConfig
from emomix_cli.synthesis import FAMILY_SOLVERS, fill_padding
from emomix_cli.text import default_symbol_table, text_to_ids
from emomix_cli.tts.mixing import MixedOutput
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, preset
from emomix_cli.vocoder import DEFAULT_VOCODER, load_vocoder


def _prior(args):
    """(model, audio config, mu [1,80,T], mask [1,1,T], condition vectors per emotion, spk)."""
    if args.model:
        from emomix_cli.tts import load_tts

        bundle = load_tts(args.model)
        model, audio = bundle.model, bundle.audio
        vectors = [bundle.prototypes.vectors[i] for i in range(len(bundle.prototypes.emotions))]
        spk = model.speaker_vector(bundle.resolve_speaker()[1])
        ids = text_to_ids(args.text, bundle.symbols)
        with torch.inference_mode():
            encoded = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]),
                                   vectors[0][None], spk)
        mu, mask = fill_padding(encoded["mu_y"], int(encoded["y_lengths"][0]))  # as synthesize
        return model, audio, mu, mask, vectors, spk
    torch.manual_seed(0)
    cfg = TTSConfig(**{**preset("small"), "n_vocab": len(default_symbol_table()), "cond_dropout": 0.1})
    model = EmoMixTTS(cfg).eval()
    audio = AudioConfig()
    frames = int(args.seconds * audio.sample_rate / audio.hop_length) // 4 * 4
    mu = torch.randn(1, cfg.n_feats, frames)
    mask = torch.ones(1, 1, frames)
    vectors = list(torch.randn(3, cfg.emotion_dim))
    spk = model.speaker_vector(torch.tensor([0]))
    return model, audio, mu, mask, vectors, spk


def _best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - tick)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained tts checkpoint (default: random 'small' preset)")
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog.")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio length (random model)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--emotions", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--solver", default="euler", choices=sorted({s for names in FAMILY_SOLVERS.values() for s in names}))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (model, sampler and GL)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 s of audio")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds = 1, 2.0
    torch.set_num_threads(args.threads)
    model, audio, mu, mask, vectors, spk = _prior(args)
    device = torch.device(args.device)
    model, mu, mask = model.to(device), mu.to(device), mask.to(device)
    vectors = [v.to(device) for v in vectors]
    spk = None if spk is None else spk.to(device)
    names = [f"e{i}" for i in range(len(vectors))]
    audio_s = mu.shape[-1] * audio.hop_length / audio.sample_rate
    griffin_lim = load_vocoder("griffinlim", audio=audio, device=device)
    vocoder = load_vocoder(DEFAULT_VOCODER, audio=audio, device=device)
    guided = getattr(model, "supports_guidance", False)

    def decode(n_steps, m, sequential, guidance=1.0):
        weights = {name: 1.0 / m for name in names[:m]}
        conditions = {name: (vectors[i], None if spk is None else spk[0])
                      for i, name in enumerate(names[:m])}
        score = MixedOutput(model, mu, mask, conditions, weights, sequential=sequential,
                           guidance=guidance)
        with torch.inference_mode():
            mel = model.sample(score, mu, mask, args.solver, n_steps, 1.5,
                               torch.Generator().manual_seed(0))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return mel

    mel = decode(1, 1, False)
    with torch.inference_mode():
        gl_s = _best_time(lambda: griffin_lim(mel).sum().item(), args.repeats)
        vocoder_s = _best_time(lambda: vocoder(mel).sum().item(), args.repeats)
    print(f"model: {args.model or 'random small preset'}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"params; audio {audio_s:.2f} s ({mu.shape[-1]} frames); solver {args.solver}; "
          f"torch threads {torch.get_num_threads()}; {device}; best of {args.repeats}", flush=True)
    print(f"Griffin-Lim ({griffin_lim.n_iter} it): RTF {gl_s / audio_s:.3f}; "
          f"{DEFAULT_VOCODER}: RTF {vocoder_s / audio_s:.3f}")
    print("| N | M | decoder batched | decoder sequential | speed-up | guided (w=2) | "
          f"+ {DEFAULT_VOCODER} | + GL |")
    print("|---|---|---|---|---|---|---|---|")
    for n_steps in args.steps:
        for m in args.emotions:
            if m > len(vectors):
                continue
            batched = _best_time(lambda: decode(n_steps, m, False), args.repeats)  # noqa: B023
            sequential = batched if m == 1 else _best_time(
                lambda: decode(n_steps, m, True), args.repeats)  # noqa: B023
            with_null = (_best_time(lambda: decode(n_steps, m, False, 2.0), args.repeats)  # noqa: B023
                         if guided else float("nan"))
            print(f"| {n_steps} | {m} | {batched / audio_s:.3f} | {sequential / audio_s:.3f} | "
                  f"{sequential / batched:.2f}x | {with_null / audio_s:.3f} | "
                  f"{(batched + vocoder_s) / audio_s:.3f} | {(batched + gl_s) / audio_s:.3f} |",
                  flush=True)
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
