"""DNSMOS P.808 (and pYIN voicing, Whisper WER) of a model's single emotions across sampler
settings, on the VALIDATION split: the naturalness side of choosing τ, steps and the solver, which
``tune_sampler.py --what defaults`` leaves out (DNSMOS is not in its objective).

    python benchmarks/dnsmos_sweep.py --model natural --features data/demo_natural/features \
        --settings 10,euler,3 20,midpoint,3 10,euler,2 --sentences 8 --threads 1 [--copy]

Each setting is ``steps,solver,τ``; every setting synthesizes the same sentences (round-robin
over the speakers) in every emotion with the same seeds. Prints one markdown row per setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import cpu_description  # noqa: E402

from emomix_cli.assets import model_path  # noqa: E402
from emomix_cli.datasets import FeatureStore  # noqa: E402
from emomix_cli.evaluate.judges import DNSMOS, WhisperASR, prosody, resample, wer_cer  # noqa: E402
from emomix_cli.evaluate.run import choose_sentences  # noqa: E402
from emomix_cli.synthesis import SynthesisOptions, load_default_vocoder, synthesize_mels, vocode  # noqa: E402
from emomix_cli.tags import escape_tags  # noqa: E402
from emomix_cli.tts import load_tts  # noqa: E402


def parse_setting(text: str) -> dict:
    steps, solver, tau = text.split(",")
    return {"steps": int(steps), "solver": solver, "temperature": float(tau)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="natural")
    parser.add_argument("--features", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--settings", nargs="*", type=parse_setting, default=[], help="steps,solver,τ")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--copy", action="store_true",
                        help="also a row for the real mels of the same sentences through the same vocoder (its ceiling)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = load_tts(model_path(args.model), device="cpu")
    vocoder = load_default_vocoder(bundle)
    dnsmos, asr = DNSMOS(threads=args.threads), WhisperASR(threads=args.threads)
    sentences = choose_sentences(FeatureStore(args.features), bundle, args.split, args.sentences)
    print(cpu_description())
    print(f"model {args.model}, {args.split} split, {len(sentences)} sentences, every emotion\n")
    print("| steps | solver | τ | DNSMOS P.808 | voiced | WER | s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    store = FeatureStore(args.features)

    def judged(wav, sentence, scores, voiced, refs, hyps):
        wav16 = resample(wav, vocoder.sample_rate, 16000)
        scores.append(dnsmos(wav16)["p808"])
        voiced.append(prosody(wav, vocoder.sample_rate, sentence["n_phones"])["voiced_fraction"] or 0.0)
        refs.append(sentence["text"])
        hyps.append(asr(wav16))

    if args.copy:
        started = time.perf_counter()
        scores, voiced, refs, hyps = [], [], [], []
        for sentence in sentences:
            for item in sentence["gt"].values():
                judged(vocode(vocoder, store.mel(item["id"])), sentence, scores, voiced, refs, hyps)
        print(f"| real mel | vocoded | | {np.mean(scores):.3f} | {np.mean(voiced):.2f} "
              f"| {wer_cer(refs, hyps)['wer']:.3f} | {time.perf_counter() - started:.0f} |", flush=True)
    for setting in args.settings:
        started = time.perf_counter()
        scores, voiced, refs, hyps = [], [], [], []
        for i, sentence in enumerate(sentences):
            options = SynthesisOptions(seed=i, speaker=sentence["speaker"], **setting)
            for emotion in bundle.emotions:
                mel = synthesize_mels(bundle, escape_tags(sentence["text"]), {emotion: 1.0}, options).mel
                judged(vocode(vocoder, mel), sentence, scores, voiced, refs, hyps)
        wer = wer_cer(refs, hyps)["wer"]
        print(f"| {setting['steps']} | {setting['solver']} | {setting['temperature']:g} | {np.mean(scores):.3f} "
              f"| {np.mean(voiced):.2f} | {wer:.3f} | {time.perf_counter() - started:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
