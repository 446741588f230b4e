"""Where guidance puts each emotion on its Neutral → emotion line, feature by feature (issue #27).

For sentences of a split (round-robin over every speaker, ``choose_sentences``), each emotion is
synthesized at every guidance level w with the same seed, and Neutral once at w = 1; all are
vocoded (HiFi-GAN) and measured by pYIN and the wav alone (``judges.prosody``): F0 median, F0
range (5-95 %, semitones), loudness (dBFS of the active frames) and speaking rate (phones per
second of the trimmed wav). The position of emotion e at w on feature f is
``Σ_s (x_f(e, w) − x_f(N)) / Σ_s (x_f(e, 1) − x_f(N))`` over the sentences s: 1 = where w = 1
puts it, above 1 = further from Neutral. ``line`` is the same on all four features at once, each
scaled by its standard deviation over the run: the projection of the move onto the w = 1 move.

    .venv/bin/python benchmarks/guidance_positions.py --features data/demo/features --split val \
        --sentences 8 --levels 1 2 3 --threads 1 [--whisper] [--set guidance_smoothing=0] [--json out.json] \
        [--emotions angry sad]

``--set key=value`` changes a SynthesisOptions field for every synthesis (a variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import cpu_description  # noqa: E402

from emomix_cli.assets import model_path  # noqa: E402
from emomix_cli.datasets import FeatureStore  # noqa: E402
from emomix_cli.evaluate.judges import WhisperASR, prosody, resample, wer_cer  # noqa: E402
from emomix_cli.evaluate.run import choose_sentences  # noqa: E402
from emomix_cli.synthesis import SynthesisOptions, load_default_vocoder, synthesize_mels, vocode  # noqa: E402
from emomix_cli.tags import escape_tags  # noqa: E402
from emomix_cli.tts import load_tts  # noqa: E402

FEATURES = ("f0_median", "f0_range_st", "loudness_db", "rate")


def parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def measure(bundle, vocoder, sentences, emotions, levels, options, asr=None) -> dict:
    """{(emotion, w, sentence index): prosody row (+ Whisper's ``hyp`` with ``asr``)}, Neutral
    under ("neutral", 1.0, i)."""
    rows = {}
    for i, sentence in enumerate(sentences):
        base = dataclasses.replace(options, seed=options.seed + i, speaker=sentence["speaker"])
        jobs = [("neutral", 1.0)] + [(e, w) for e in emotions for w in levels]
        for emotion, w in jobs:
            result = synthesize_mels(bundle, escape_tags(sentence["text"]), {emotion: 1.0},
                                     dataclasses.replace(base, guidance=w))
            wav = vocode(vocoder, result.mel)
            rows[emotion, w, i] = prosody(wav, vocoder.sample_rate, sentence["n_phones"])
            if asr is not None:
                rows[emotion, w, i]["hyp"] = asr(resample(wav, vocoder.sample_rate, 16000))
        print(f"  sentence {i + 1}/{len(sentences)} ({sentence['speaker']})", file=sys.stderr, flush=True)
    return rows


def positions(rows: dict, n: int, emotions, levels) -> dict:
    """{emotion: {w: {feature: position, "line": position}}}."""
    values = np.array([[row[f] if row[f] is not None else np.nan for f in FEATURES] for row in rows.values()])
    scale = np.nanstd(values, axis=0)
    scale[~(scale > 0)] = 1.0
    vec = {key: np.array([row[f] if row[f] is not None else np.nan for f in FEATURES]) for key, row in rows.items()}
    out = {}
    for e in emotions:
        out[e] = {}
        unit = [vec[e, 1.0, i] - vec["neutral", 1.0, i] for i in range(n)]
        for w in levels:
            move = [vec[e, w, i] - vec["neutral", 1.0, i] for i in range(n)]
            per = {f: float(np.nansum([m[k] for m in move]) / np.nansum([u[k] for u in unit]))
                   for k, f in enumerate(FEATURES)}
            dots = [np.nansum((m / scale) * (u / scale)) for m, u in zip(move, unit, strict=True)]
            norms = [np.nansum((u / scale) ** 2) for u in unit]
            per["line"] = float(np.sum(dots) / np.sum(norms))
            out[e][w] = per
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="espeak")
    parser.add_argument("--features", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--emotions", nargs="+", help="only these emotions (default: every one but neutral)")
    parser.add_argument("--set", action="append", default=[], help="a SynthesisOptions field, key=value")
    parser.add_argument("--json", help="write the positions here")
    parser.add_argument("--whisper", action="store_true", help="also Whisper tiny.en's WER per emotion and w")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_tts(model_path(args.model), device="cpu")  # a shipped model's name or a path
    vocoder = load_default_vocoder(bundle)
    changes = dict(item.split("=", 1) for item in args.set)
    options = dataclasses.replace(SynthesisOptions(), **{k: parse_value(v) for k, v in changes.items()})
    options = options.resolve(bundle)
    sentences = choose_sentences(FeatureStore(args.features), bundle, args.split, args.sentences)
    emotions = [e for e in bundle.emotions if e != "neutral" and (not args.emotions or e in args.emotions)]
    unknown = sorted(set(args.emotions or []) - set(emotions))
    if unknown:
        parser.error(f"unknown emotion(s) {', '.join(unknown)}; the model has {', '.join(bundle.emotions)}")
    levels = sorted(set([1.0] + args.levels))
    started = time.perf_counter()
    asr = WhisperASR(threads=args.threads) if args.whisper else None
    rows = measure(bundle, vocoder, sentences, emotions, levels, options, asr)
    table = positions(rows, len(sentences), emotions, levels)
    print(cpu_description())
    speakers = sorted({s["speaker"] for s in sentences})
    print(f"model {args.model}, {args.split} split, {len(sentences)} sentences over {len(speakers)} speakers, "
          f"options {changes or 'default'} (guidance reference {options.guidance_reference}), "
          f"{time.perf_counter() - started:.0f} s\n")
    wer = {}
    if asr is not None:
        for e, w in [("neutral", 1.0)] + [(e, w) for e in emotions for w in levels]:
            keys = [k for k in rows if k[:2] == (e, w)]
            wer[e, w] = wer_cer([sentences[k[2]]["text"] for k in keys], [rows[k]["hyp"] for k in keys])["wer"]
        print(f"Neutral WER {wer['neutral', 1.0]:.2f}\n")
    print("| emotion | w | line | " + " | ".join(FEATURES) + (" | WER |" if wer else " |"))
    print("|---|---:|---:|" + "---:|" * (len(FEATURES) + bool(wer)))
    for e in emotions:
        for w in levels:
            p = table[e][w]
            cells = [f"{p[f]:.2f}" for f in FEATURES] + ([f"{wer[e, w]:.2f}"] if wer else [])
            print(f"| {e} | {w:g} | **{p['line']:.2f}** | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"options": changes, "sentences": len(sentences),
                                               "positions": {e: {str(w): p for w, p in t.items()} for e, t in table.items()},
                                               "rows": [{"emotion": k[0], "w": k[1], "i": k[2], **v} for k, v in rows.items()]},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
