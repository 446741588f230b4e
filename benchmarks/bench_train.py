"""Training speed and peak memory of the acoustic model per preset (steps/s, peak memory).

One optimizer step = encoder + MAS + decoder segment + all four losses (the style loss through a
compact SER) + backward + Adam, on a synthetic batch shaped like the demo corpus (tokens ~121,
mel frames ~260, decoder segment ``--out-size``). Prints a table; peak memory is the process's
max RSS on CPU (or torch.cuda.max_memory_allocated on GPU).

    .venv/bin/python benchmarks/bench_train.py --presets small paper --batch 16 --steps 3
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from emomix_cli.ser.model import SER, SERConfig
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, preset
from emomix_cli.tts.sde import x0_weight
from emomix_cli.tts.train import style_loss


def batch(cfg: TTSConfig, size: int, device):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.n_vocab, (size, 121), generator=g)
    token_lengths = torch.full((size,), 121)
    mel = torch.randn(size, cfg.n_feats, 260, generator=g) - 5
    mel_lengths = torch.full((size,), 260)
    emotion = torch.randn(size, cfg.emotion_dim, generator=g)
    speaker = torch.randint(0, cfg.n_speakers, (size,), generator=g)
    return [t.to(device) for t in (tokens, token_lengths, mel, mel_lengths, emotion, speaker)]


def measure(name: str, args, device) -> dict:
    cfg = TTSConfig(**{**preset(name), "n_vocab": 181, "emotion_dim": 64, "n_speakers": 4,
                       "speaker_encoder": "table"})
    model = EmoMixTTS(cfg).to(device).train()
    ser = SER(SERConfig.compact(emotions=["a", "b", "c", "d", "e"])).to(device).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = batch(cfg, args.batch, device)
    amp = device.type == "cuda" and args.bf16

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model.compute_loss(*data, out_size=args.out_size)
            style = style_loss(ser, out["x0_hat"], out["target"], out["seg_mask"], x0_weight(out["t"]))
            loss = out["dur_loss"] + out["prior_loss"] + out["diff_loss"] + 1e-4 * style
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, numba JIT of MAS)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = (time.perf_counter() - start) / args.steps
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"preset": name, "params_M": params, "s_per_step": seconds, "steps_per_s": 1 / seconds, "peak_MiB": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out-size", type=int, default=172)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, threads {args.threads}, batch {args.batch} x segment {args.out_size}")
    print(f"{'preset':8} {'params (M)':>10} {'s/step':>8} {'steps/s':>8} {'peak MiB':>9}")
    for name in args.presets:
        row = measure(name, args, device)
        print(f"{row['preset']:8} {row['params_M']:10.2f} {row['s_per_step']:8.2f} {row['steps_per_s']:8.3f} {row['peak_MiB']:9.0f}")


if __name__ == "__main__":
    main()
