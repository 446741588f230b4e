"""Our U-Net score estimator vs the same network written the straightforward (official Grad-TTS) way.

"Plain" = identical weights, but plain ``nn.GroupNorm`` over the whole padded map (the official
code) and contiguous NCHW layout. "emomix" = masked GroupNorm with the inference prefix fast path
and channels-last weights, as ``load_tts`` sets up on CPU. Same process, same inputs, best of N.

    .venv/bin/python benchmarks/bench_decoder.py --dims 24 64 --batch 1 2
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from emomix_cli.tts.unet import GradLogPEstimator2d, MaskedGroupNorm


def plain_norm(self, x, mask):  # the official code: statistics over padded frames too
    return nn.functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def timed(net, inputs, repeats: int) -> float:
    net(*inputs)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net(*inputs)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[24, 64], help="24 = small, 64 = paper")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| dim | B | plain (s) | emomix (s) | speed-up |\n|---|---|---|---|---|")
    for dim in args.dims:
        torch.manual_seed(0)
        net = GradLogPEstimator2d(dim=dim, spk_emb_dim=32, emo_emb_dim=32).eval()
        for batch in args.batch:
            x, mu = torch.randn(batch, 80, args.frames), torch.randn(batch, 80, args.frames)
            mask = torch.ones(batch, 1, args.frames)
            mask[..., args.frames - 3 :] = 0  # the usual padding to a multiple of 4
            inputs = (x, mask, mu, torch.rand(batch), torch.randn(batch, 32), torch.randn(batch, 32))
            with torch.inference_mode():
                original = MaskedGroupNorm.forward
                MaskedGroupNorm.forward = plain_norm
                net.use_channels_last(False)
                plain = timed(net, inputs, args.repeats)
                MaskedGroupNorm.forward = original
                net.use_channels_last(True)
                ours = timed(net, inputs, args.repeats)
                net.use_channels_last(False)
            print(f"| {dim} | {batch} | {plain:.3f} | {ours:.3f} | {plain / ours:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
