"""Mish forward + backward on the decoder's training activations: ``F.mish`` vs ``FastMish``.

``FastMish`` (``tts/unet.py``) is what the U-Net's ``Mish`` takes under autograd on CPU: one exp,
the derivative computed in the forward and saved instead of x, the backward one product.
Shapes are the small preset's (dec_dim 24) Block activations at batch 16 on 64-frame decoder
segments, one per U-Net level, contiguous (as training runs) and channels-last. Same process,
same inputs, alternating, best of N. The error columns are max |value| and max |gradient| vs
float64 over x in [-30, 30] plus extremes (±80, ±1e4), F.mish's and ours.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mish.py --repeats 9
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from emomix_cli.tts.unet import FastMish

SHAPES = [(16, 24, 80, 64), (16, 48, 40, 32), (16, 96, 20, 16)]


def forward_backward(fn, x: torch.Tensor, upstream: torch.Tensor) -> float:
    leaf = x.detach().requires_grad_()
    start = time.perf_counter()
    fn(leaf).backward(upstream)
    return time.perf_counter() - start


def errors(fn) -> tuple[float, float]:
    """Max |value| and |gradient| error vs float64 (upstream gradient 1)."""
    x = torch.cat([torch.linspace(-30, 30, 60001), torch.tensor([-1e4, -80.0, 80.0, 1e4])])
    exact = x.double().requires_grad_()
    reference = exact * torch.tanh(F.softplus(exact))
    reference.sum().backward()
    leaf = x.clone().requires_grad_()
    value = fn(leaf)
    value.sum().backward()
    return ((value.double() - reference).abs().max().item(),
            (leaf.grad.double() - exact.grad).abs().max().item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (native_value, native_grad), (fast_value, fast_grad) = errors(F.mish), errors(FastMish.apply)
    print(f"{torch.get_num_threads()} thread(s), float32, forward + backward, best of {args.repeats}")
    print(f"max error vs float64: F.mish value {native_value:.1e} gradient {native_grad:.1e}; "
          f"FastMish value {fast_value:.1e} gradient {fast_grad:.1e}")
    print("| shape | layout | F.mish (ms) | FastMish (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for shape in SHAPES:
        for layout in (torch.contiguous_format, torch.channels_last):
            torch.manual_seed(0)
            x = (2 * torch.randn(shape)).contiguous(memory_format=layout)
            upstream = torch.randn(shape).contiguous(memory_format=layout)
            best = {"native": float("inf"), "fast": float("inf")}
            for _ in range(args.repeats):
                for name, fn in (("native", F.mish), ("fast", FastMish.apply)):
                    best[name] = min(best[name], forward_backward(fn, x, upstream))
            name = "NCHW" if layout == torch.contiguous_format else "channels-last"
            print(f"| {list(shape)} | {name} | {1e3 * best['native']:.2f} | "
                  f"{1e3 * best['fast']:.2f} | {best['native'] / best['fast']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
