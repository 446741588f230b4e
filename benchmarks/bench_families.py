"""The two decoder families side by side, each against the other in the same run.

Rows (each in its own subprocess, so its peak RSS is its own; the families alternate, and
each row is the median of its rounds):

- **train step**: one optimizer step of the whole model, all losses (duration, prior, decoder,
  style through a compact SER), backward and Adam, ``--batch`` × ``--frames`` decoder segments
  on a synthetic batch shaped like the demo corpus (121 tokens, 260 mel frames);
- **network call**: one decoder forward at 256 frames (inference mode);
- **emomix mix**: ``synthesize`` end to end with the model's sampler defaults (``--steps``),
  a blend of M = 2 emotions, HiFi-GAN UNIVERSAL_V1 (loaded once), on the demo model's text
  encoder (so durations are real); RTF = wall time / audio seconds.

    .venv/bin/python benchmarks/bench_families.py --threads 2 --rounds 3
    python benchmarks/bench_families.py --device cuda --rows train call   # GPU: peak = CUDA memory
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

FAMILIES = ("score2d", "flow1d")


def model_config(family: str, vocab: int = 181, emotion_dim: int = 64, flow_channels: int | None = None):
    """The ``small`` preset with ``family``'s decoder; ``flow_channels``: flow1d's U-Net width
    (the preset's 128 when None)."""
    from emomix_cli.config import from_dict
    from emomix_cli.tts.model import TTSConfig, merge_nested, preset

    values = merge_nested(preset("small"), {"decoder": family, "n_vocab": vocab, "n_speakers": 4,
                                            "emotion_dim": emotion_dim, "cond_dropout": 0.1})
    if flow_channels:
        values = merge_nested(values, {"flow": {"channels": [flow_channels, flow_channels]}})
    return from_dict(TTSConfig, values)


def parameters(family: str, flow_channels: int | None) -> int:
    from emomix_cli.tts.model import EmoMixTTS

    return sum(p.numel() for p in EmoMixTTS(model_config(family, flow_channels=flow_channels)).parameters())


def train_step(family: str, args) -> float:
    from emomix_cli.ser.model import SER, SERConfig
    from emomix_cli.tts.model import EmoMixTTS
    from emomix_cli.tts.train import style_loss

    cfg = model_config(family, flow_channels=args.flow_channels)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = EmoMixTTS(cfg).to(device).train()
    ser = SER(SERConfig.compact(emotions=list("abcde"))).to(device).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    size = args.batch
    data = (torch.randint(1, cfg.n_vocab, (size, 121), generator=g), torch.full((size,), 121),
            torch.randn(size, cfg.n_feats, 260, generator=g) - 5, torch.full((size,), 260),
            torch.randn(size, cfg.emotion_dim, generator=g),
            torch.randint(0, cfg.n_speakers, (size,), generator=g))
    data = tuple(t.to(device) for t in data)

    def step():
        out = model.compute_loss(*data, out_size=args.frames)
        style = style_loss(ser, out["x0_hat"], out["target"], out["seg_mask"], out["style_weight"])
        loss = out["dur_loss"] + out["prior_loss"] + out["diff_loss"] + 1e-4 * style
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, numba's MAS
    return _median_time(step, args.steps, device)


def _median_time(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def network_call(family: str, args) -> float:
    from emomix_cli.tts.model import EmoMixTTS

    cfg = model_config(family, flow_channels=args.flow_channels)
    device = torch.device(args.device)
    model = EmoMixTTS(cfg).eval().to(device)
    if family == "score2d" and device.type == "cpu":
        model.decoder.estimator.use_channels_last(True)  # as load_tts does on CPU
    x = torch.randn(1, cfg.n_feats, 256, device=device)
    mask = torch.ones(1, 1, 256, device=device)
    spk = model.speaker_vector(torch.tensor([0], device=device))
    emotion = torch.randn(1, cfg.emotion_dim, device=device)
    model.network_output(x, mask, x, 0.5, emotion, spk)
    return _median_time(lambda: model.network_output(x, mask, x, 0.5, emotion, spk), args.calls,
                        device)


def mix_rtf(family: str, args) -> float:
    """RTF of ``synthesize`` on the shipped demo model's bundle: its own family at its stored
    sampler defaults (or ``--mix-steps`` Euler steps), the other family as a fresh decoder at
    ``--mix-steps`` (10 by default) Euler steps (the encoder, durations and conditions stay the
    demo model's)."""
    from emomix_cli.assets import DEMO_MODEL
    from emomix_cli.synthesis import SynthesisOptions, load_default_vocoder, synthesize
    from emomix_cli.tts import load_tts
    from emomix_cli.tts.model import EmoMixTTS

    bundle = load_tts(DEMO_MODEL)
    own_family = family == bundle.model.family
    if not own_family:
        values = {**bundle.model.cfg.__dict__, "decoder": family}
        cfg = type(bundle.model.cfg)(**values)
        model = EmoMixTTS(cfg).eval()
        own = model.state_dict()
        shared = {k: v for k, v in bundle.model.state_dict().items()
                  if not k.startswith("decoder.") and k in own and own[k].shape == v.shape}
        model.load_state_dict(shared, strict=False)
        bundle.model = model.requires_grad_(False)
    vocoder = load_default_vocoder(bundle)
    if own_family and args.mix_steps is None:
        options = SynthesisOptions()  # the model's stored defaults
    else:
        options = SynthesisOptions(steps=args.mix_steps or 10, solver="euler", temperature=1.5)
    text = "The weather is lovely today, is it not?"
    weights = {"angry": 0.6, "happy": 0.4}
    synthesize(bundle, text, weights, options, vocoder)  # warm-up
    rtfs = [synthesize(bundle, text, weights, options, vocoder).rtf for _ in range(args.calls)]
    return statistics.median(rtfs)


def child(args) -> None:
    torch.set_num_threads(args.threads)
    what = {"train": train_step, "call": network_call, "mix": mix_rtf}[args.child]
    value = what(args.family, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"value": value, "rss_mib": peak}))


def cpu_name() -> str:
    name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")), "unknown CPU")
    flags = open("/proc/cpuinfo").read()
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    return f"{name}, {torch.get_num_threads()} threads here, native bf16: {'yes' if bf16 else 'no'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (train and call rows)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=172)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--mix-steps", type=int, default=None,
                        help="mix row: Euler steps (default: the shipped family at its stored defaults, the other at 10)")
    parser.add_argument("--flow-channels", type=int, default=None,
                        help="train and call rows: flow1d's U-Net width (default: the small preset's 128)")
    parser.add_argument("--rows", nargs="+", default=["train", "call", "mix"],
                        choices=["train", "call", "mix"])
    parser.add_argument("--child", choices=["train", "call", "mix"], help=argparse.SUPPRESS)
    parser.add_argument("--family", choices=FAMILIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results: dict = {}
    for _ in range(args.rounds):
        for row in args.rows:
            for family in FAMILIES:
                command = [sys.executable, __file__, "--child", row, "--family", family,
                           *(f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                             if k in ("threads", "device", "batch", "frames", "steps", "calls",
                                     "mix_steps", "flow_channels") and v is not None)]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                results.setdefault((row, family), []).append(json.loads(out.stdout.splitlines()[-1]))
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU: {cpu_name()}"
    params = {f: parameters(f, args.flow_channels) / 1e6 for f in FAMILIES}
    print(f"{where}; batch {args.batch} x {args.frames} frames; {args.rounds} rounds; small preset, "
          f"flow1d channels {args.flow_channels or 128}: {params['score2d']:.2f} M / {params['flow1d']:.2f} M "
          f"parameters (score2d / flow1d)")
    units = {"train": "s/step", "call": "s/call", "mix": "RTF"}
    memory = "peak CUDA memory" if args.device == "cuda" else "peak RSS"
    print(f"| row | score2d | flow1d | score2d / flow1d | {memory} score2d / flow1d (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for row in args.rows:
        values = {f: statistics.median(r["value"] for r in results[(row, f)]) for f in FAMILIES}
        rss = {f: max(r["rss_mib"] for r in results[(row, f)]) for f in FAMILIES}
        print(f"| {row} ({units[row]}) | {values['score2d']:.3f} | {values['flow1d']:.3f} | "
              f"{values['score2d'] / values['flow1d']:.2f}x | {rss['score2d']:.0f} / {rss['flow1d']:.0f} |")


if __name__ == "__main__":
    main()
