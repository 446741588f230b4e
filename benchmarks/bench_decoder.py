"""Our U-Net score estimator vs the same network written the straightforward (official Grad-TTS) way.

"straightforward" runs the SAME weights through the official code's operations: contiguous NCHW,
``x * mask`` before and after every block, ``nn.GroupNorm`` over the whole padded map,
``F.mish``, and linear attention that forms q, k and v at every position and normalises the keys
with ``softmax`` (``reference_forward`` in tests/reference_unet.py, a transcription of Grad-TTS
``diffusion.py``, the oracle the tests check the estimator against).
"emomix" is ``GradLogPEstimator2d`` as ``load_tts`` sets it up on CPU: channels-last weights, the
dense path when nothing is padded (as ``synthesize`` arranges with ``fill_padding``), the
associative linear attention (only the keys are materialised) and the inference Mish. Same
process, same inputs, alternating, best of N. The last column is the max |score difference|.

    .venv/bin/python benchmarks/bench_decoder.py --dims 24 64 --batch 1 2
    .venv/bin/python benchmarks/bench_decoder.py --dims 24 --batch 2 --compile   # + torch.compile

``--compile`` adds ``torch.compile(emomix)`` (inductor, static shapes) and its compile time.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from emomix_cli.tts.unet import GradLogPEstimator2d


def _reference_forward():
    """The baseline: the tests' transcription of the official forward (tests/reference_unet.py)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "reference_unet.py"
    spec = importlib.util.spec_from_file_location("reference_unet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_forward


def _compiled_columns(net, inputs, eager: float, repeats: int) -> str:
    torch._dynamo.reset()
    compiled = torch.compile(net, dynamic=False)
    with torch.inference_mode():
        start = time.perf_counter()
        compiled(*inputs)
        compile_s = time.perf_counter() - start
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            compiled(*inputs)
            best = min(best, time.perf_counter() - start)
    return f" {compile_s:.0f} | {best:.3f} | {eager / best:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[24, 64], help="24 = small, 64 = paper")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(emomix)")
    args = parser.parse_args()
    reference_forward = _reference_forward()
    torch.set_num_threads(args.threads)
    print(f"{args.frames} frames, {torch.get_num_threads()} threads, best of {args.repeats}")
    extra = " compile (s) | compiled (s) | compiled vs emomix |" if args.compile else ""
    print("| dim | B | straightforward (s) | emomix (s) | speed-up | max abs diff |" + extra)
    print("|---|---|---|---|---|---|" + "---|---|---|" * args.compile)
    for dim in args.dims:
        torch.manual_seed(0)
        plain = GradLogPEstimator2d(dim=dim, spk_emb_dim=32, emo_emb_dim=32).eval()
        ours = GradLogPEstimator2d(dim=dim, spk_emb_dim=32, emo_emb_dim=32).eval()
        for name, param in plain.named_parameters():  # attention on, as in a trained model
            if name.endswith(".g"):
                param.data.fill_(0.5)
        ours.load_state_dict(plain.state_dict())
        ours.use_channels_last(True)
        for batch in args.batch:
            x, mu = torch.randn(batch, 80, args.frames), torch.randn(batch, 80, args.frames)
            inputs = (x, torch.ones(batch, 1, args.frames), mu, torch.rand(batch),
                      torch.randn(batch, 32), torch.randn(batch, 32))
            best = {"plain": float("inf"), "ours": float("inf")}
            with torch.inference_mode():
                reference, fast = reference_forward(plain, *inputs), ours(*inputs)
                for _ in range(args.repeats):
                    for name, run, net in (("plain", reference_forward, plain),
                                           ("ours", GradLogPEstimator2d.__call__, ours)):
                        start = time.perf_counter()
                        run(net, *inputs)
                        best[name] = min(best[name], time.perf_counter() - start)
            diff = (reference - fast).abs().max().item()
            row = (f"| {dim} | {batch} | {best['plain']:.3f} | {best['ours']:.3f} | "
                   f"{best['plain'] / best['ours']:.2f}x | {diff:.1e} |")
            if args.compile:
                row += _compiled_columns(ours, inputs, best["ours"], args.repeats)
            print(row, flush=True)


if __name__ == "__main__":
    main()
