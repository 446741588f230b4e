"""Choose sampler defaults by measurement: `emomix eval` over a grid, one summary row per setting.

Two grids, as in the README's tables:
  --what solver : (solver, steps, τ) on single emotions only (SER accuracy; fast)
  --what window : (k_max, k_min) with the full eval (accuracy, monotonic intensity curves,
                  mean Spearman ρ, 0.6/0.4 blend top-2 rate)

    .venv/bin/python benchmarks/tune_sampler.py --what solver --features data/demo/features
    .venv/bin/python benchmarks/tune_sampler.py --what window --features data/demo/features --sentences 4
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from emomix_cli.cli import DEMO_MODEL
from emomix_cli.evaluate import MONOTONIC_TOLERANCE, is_monotonic, run_eval
from emomix_cli.features import FeatureStore
from emomix_cli.ser import ser_from_payload
from emomix_cli.synthesis import synthesize
from emomix_cli.tts import load_tts


def solver_grid(args) -> None:
    bundle = load_tts(args.model)
    ser = ser_from_payload(bundle.ser_payload).eval()
    texts = sorted({item["text"] for item in FeatureStore(args.features).items("test")})[: args.sentences]
    print(f"{'solver':10} {'steps':>5} {'tau':>4} {'accuracy':>8}")
    for solver, steps, tau in itertools.product(args.solvers, args.steps, args.temperatures):
        hits = total = 0
        for k, text in enumerate(texts):
            for emotion in bundle.emotions:
                result = synthesize(bundle, text, {emotion: 1.0}, speaker=bundle.speakers[k % len(bundle.speakers)],
                                    steps=steps, solver=solver, temperature=tau, seed=k)
                mel = torch.from_numpy(result.mel)[None]
                probs = ser.predict_proba(mel, torch.tensor([mel.shape[-1]]))[0]
                hits += ser.emotions[int(probs.argmax())] == emotion
                total += 1
        print(f"{solver:10} {steps:5d} {tau:4.1f} {hits / total:8.2f}", flush=True)


def window_grid(args) -> None:
    print(f"{'k_max':>5} {'k_min':>5} {'accuracy':>8} {'monotonic':>9} {'mean rho':>8} {'blend top2':>10}")
    for k_max, k_min in args.windows:
        out = Path(args.out) / f"k{k_max}_{k_min}"
        report = run_eval(args.model, None, out, features=args.features, max_sentences=args.sentences,
                          k_max=k_max, k_min=k_min, progress=False)
        curves = report["intensity"]["curves"]
        mono = sum(is_monotonic(v, MONOTONIC_TOLERANCE) for v in curves.values())
        rho = sum(report["intensity"]["spearman"].values()) / max(len(curves), 1)
        print(f"{k_max:5} {k_min:5} {report['classification']['mean_accuracy']:8.2f} {mono:>5}/{len(curves)}"
              f"   {rho:8.2f} {report['blends']['mean_top2_rate']:10.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["solver", "window"], default="solver")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--features", required=True)
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--solvers", nargs="+", default=["euler", "dpm2m", "euler-sde"])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.5])
    parser.add_argument("--windows", type=lambda s: tuple(float(v) for v in s.split(",")), nargs="+",
                        default=[(1.0, 0.0), (0.8, 0.0), (1.0, 0.2)], help="k_max,k_min pairs")
    parser.add_argument("--out", default="runs/tune_window")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (solver_grid if args.what == "solver" else window_grid)(args)


if __name__ == "__main__":
    main()
