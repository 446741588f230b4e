"""Choose sampler defaults by measurement on the VALIDATION split (report on test with `emomix eval`).

Two grids, one summary row per setting:
  --what solver : (solver, steps, τ) on single emotions only: accuracy of the independent judge
                  SER (emomix_cli/assets/judge_ser.pt, else the model's own, said in the header); fast
  --what defaults : (steps, τ, guidance [and its reference], encoder condition) with the full eval on val and ALL the
                  independent judges but DNSMOS: Whisper WER, pYIN voiced fraction, second-SER UA,
                  intensity ρ, blends; objective = UA + voiced − WER (higher is better)
  --what window : (k_max, k_min) with the full eval on val (second-SER UA, mean intensity ρ of
                  the second SER and of the prosody line, blends strictly between their parents,
                  quality-bar lines passed); Whisper and DNSMOS are skipped unless --all-judges

    .venv/bin/python benchmarks/tune_sampler.py --what solver --features data/demo/features
    .venv/bin/python benchmarks/tune_sampler.py --what window --features data/demo/features --sentences 4
    .venv/bin/python benchmarks/tune_sampler.py --what defaults --features data/demo/features \
        --settings 10,1.0,1,weighted 10,1.0,2,weighted 25,1.5,2,weighted --threads 1
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.datasets import FeatureStore
from emomix_cli.evaluate import run_eval
from emomix_cli.evaluate.bar import headline
from emomix_cli.evaluate.judges import default_judge_ser, load_judge_ser, load_judges, score_mels
from emomix_cli.evaluate.run import parse_guidance_levels
from emomix_cli.ser import ser_from_payload
from emomix_cli.synthesis import SynthesisOptions, synthesize_mels
from emomix_cli.tts import load_tts


def solver_grid(args) -> None:
    bundle = load_tts(args.model)
    judge, name = load_judge_ser(args.judge_ser or default_judge_ser(args.features, args.model))
    if judge is None:
        judge, name = ser_from_payload(bundle.ser_payload), "conditioning SER (not independent)"
    items = FeatureStore(args.features).items("val")
    texts = sorted({item["text"] for item in items})[: args.sentences]
    print(f"val split, {len(texts)} sentences, judged by {name}")
    print(f"{'solver':10} {'steps':>5} {'tau':>4} {'accuracy':>8}")
    for solver, steps, tau in itertools.product(args.solvers, args.steps, args.temperatures):
        mels, intended = [], []
        for k, text in enumerate(texts):
            options = SynthesisOptions(steps=steps, solver=solver, temperature=tau, seed=k,
                                       speaker=bundle.speakers[k % len(bundle.speakers)])
            for emotion in bundle.emotions:
                mels.append(torch.from_numpy(synthesize_mels(bundle, text, {emotion: 1.0}, options).mel))
                intended.append(emotion)
        probs = score_mels(judge, mels)
        hits = sum(judge.emotions[int(p.argmax())] == e for p, e in zip(probs, intended, strict=True))
        print(f"{solver:10} {steps:5d} {tau:4.1f} {hits / len(intended):8.2f}", flush=True)


def window_grid(args) -> None:
    judges = load_judges(args.judge_ser or default_judge_ser(args.features, args.model),
                         asr=args.all_judges, dnsmos=args.all_judges)
    print(f"val split, {args.sentences} sentences, judged by {judges.ser_name or 'no second SER'}")
    print(f"{'k_max':>5} {'k_min':>5} {'2nd-SER UA':>10} {'rho SER':>7} {'rho pros':>8} {'between':>7} {'bar':>7}")
    for k_max, k_min in args.windows:
        report = run_eval(args.model, None, Path(args.out) / f"k{k_max}_{k_min}", features=args.features,
                          split="val", options=SynthesisOptions(k_max=k_max, k_min=k_min),
                          max_sentences=args.sentences, judges=judges, progress=False,
                          guidance_levels=[])  # fmt: skip
        h = headline(report)
        print(f"{k_max:5} {k_min:5} {_fmt(h['ua']):>10} {_fmt(h['rho_ser']):>7} {_fmt(h['rho_prosody']):>8}"
              f" {_fmt(h['between']):>7} {h['passed']:>3}/{h['judged']:<3}", flush=True)  # fmt: skip


def parse_setting(text: str) -> SynthesisOptions:
    """``steps,tau,guidance,encoder_condition[,solver[,guidance_reference]]`` (left out or
    empty: the model's)."""
    steps, tau, guidance, condition, *rest = text.split(",")
    solver, reference = (rest + ["", ""])[:2]
    return SynthesisOptions(steps=int(steps), temperature=float(tau), guidance=float(guidance),
                            encoder_condition=condition, solver=solver or None,
                            guidance_reference=reference or None)


def defaults_grid(args) -> None:
    judges = load_judges(args.judge_ser or default_judge_ser(args.features, args.model), dnsmos=False)
    print(f"val split, {args.sentences} sentences, model {args.model}, judged by Whisper tiny.en, "
          f"pYIN and {judges.ser_name or 'no second SER'}")
    print("| steps | solver | τ | guidance | encoder | WER | voiced | 2nd-SER UA | ρ SER | ρ prosody | between | bar | objective |")
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for text in args.settings:
        options = parse_setting(text)
        out = Path(args.out) / text.replace(",", "_")
        report = run_eval(args.model, None, out, features=args.features, split="val", options=options,
                          max_sentences=args.sentences, judges=judges, progress=False,
                          guidance_levels=args.guidance_sweep)
        h = headline(report)
        w = f"{options.guidance:g}" + (f" ({options.guidance_reference})" if options.guidance_reference else "")
        print(f"| {options.steps} | {options.solver or 'default'} | {options.temperature} | {w} | {options.encoder_condition} "
              + "".join(f"| {_fmt(h[k])} " for k in ("wer", "voiced", "ua", "rho_ser", "rho_prosody", "between"))
              + f"| {h['passed']}/{h['judged']} | {_fmt(h['objective'])} |", flush=True)  # fmt: skip
        for row in report.guidance.rows if report.guidance else []:
            print(f"|   guidance sweep w = {row.w:g} (single emotions) | | | | | {_fmt(row.wer)} "
                  f"| {_fmt(row.voiced_fraction)} | {_fmt(row.judge_accuracy)} | | | | | |", flush=True)


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["solver", "window", "defaults"], default="solver")
    parser.add_argument("--settings", nargs="+", default=["10,1.0,1,weighted", "10,1.0,2,weighted"],
                        help="steps,tau,guidance,encoder_condition[,solver[,guidance_reference]] (--what defaults)")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--features", required=True)
    parser.add_argument("--judge-ser", default=None, help="independent SER (default: the shipped judge SER for the demo corpus)")
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--solvers", nargs="+", default=["euler", "dpm2m", "euler-sde"])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.5])
    parser.add_argument("--windows", type=lambda s: tuple(float(v) for v in s.split(",")), nargs="+",
                        default=[(1.0, 0.0), (0.8, 0.0), (1.0, 0.2)], help="k_max,k_min pairs")
    parser.add_argument("--all-judges", action="store_true", help="also Whisper and DNSMOS (slow)")
    parser.add_argument("--guidance-sweep", type=parse_guidance_levels, default=[],
                        help="defaults: also judge every emotion at these w, e.g. 1,2,3 (default off)")
    parser.add_argument("--out", default="runs/tune_window")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"solver": solver_grid, "window": window_grid, "defaults": defaults_grid}[args.what](args)


if __name__ == "__main__":
    main()
