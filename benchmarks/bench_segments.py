"""Emotion that changes inside a sentence: one pass with per-frame weights against gluing.

Each sentence pair (A, B) becomes one sentence, "A, b", spoken sad then angry in two ways:
- **one pass**: ``[sad] A, [angry] b`` through the library (per-frame weights, one noise sample,
  one call per solver step with a row per emotion; docs/DESIGN.md §1.3);
- **glued**: "A," sad and "b" angry synthesized separately, the wavs concatenated (what the
  systems without per-frame mixing make you do).

A third row, "no change", is the one pass with the same emotion on both halves: the jumps that
the sentence has at that place anyway. The table gives, per method: wall seconds of synthesis
(mel + HiFi-GAN: CPU seconds of this process, the least of ``--repeats``; the ratio to gluing); the
jump across the boundary (the segments JSON's boundary; the glue point), silence skipped
(:func:`boundary_jumps`), in energy (RMS dB) and F0 (pYIN, semitones), and the silence there;
Whisper tiny.en WER of each whole wav. Sentences: the validation split of ``--features`` when present, else the demo
corpus's validation sentences (its text list, which the script names).

    .venv/bin/python benchmarks/bench_segments.py --pairs 4
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.evaluate.judges import (
    ACTIVE_RATIO,
    PYIN,
    Cost,
    WhisperASR,
    missing_extras,
    transcribe,
    wer_cer,
)
from emomix_cli.synthesis import SynthesisOptions, load_default_vocoder, synthesize
from emomix_cli.tts import load_tts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import cpu_description  # noqa: E402 (the CPU line every benchmark prints)

FIRST, SECOND = "sad", "angry"


def validation_sentences(features: Path) -> tuple[list[str], str]:
    """(distinct validation texts, where they came from)."""
    if (features / "manifest.jsonl").is_file():
        from emomix_cli.datasets import FeatureStore

        texts = list(dict.fromkeys(item["text"] for item in FeatureStore(features).items("val")))
        return texts, f"the val split of {features}"
    from emomix_cli.demo_corpus import SENTENCES, split_of

    texts = [text for i, text in enumerate(SENTENCES[:150]) if split_of(i, 150) == "val"]
    return texts, f"{features} absent: the demo corpus's val sentences (demo_corpus.SENTENCES, split_of)"


def one_sentence(a: str, b: str) -> tuple[str, str]:
    """("A,", "b"): the pair as the two halves of one sentence."""
    second = b if b.startswith("I ") else b[0].lower() + b[1:]
    return a.rstrip(".!?") + ",", second


def boundary_jumps(wav: np.ndarray, rate: int, boundary_s: float, energy_ms: float,
                   f0_ms: float) -> dict[str, float | None]:
    """Across ``boundary_s``, silence skipped (frames within 0.5 s; active: RMS above
    ``ACTIVE_RATIO`` of the peak): ``energy``, |dB| between the last active frames before and the
    first after (``energy_ms`` of each); ``f0``, |semitones| between the medians of the last and
    first voiced frames (``f0_ms`` of each; None without voicing on a side); ``gap``, the
    silence between them in ms."""
    import librosa

    hop = PYIN["hop_length"]
    f0, voiced, _ = librosa.pyin(wav, **PYIN)
    rms = librosa.feature.rms(y=wav, frame_length=PYIN["frame_length"], hop_length=hop)[0]
    db = 20 * np.log10(rms + 1e-5)
    frames = np.arange(len(rms))
    b, reach = int(round(boundary_s * rate / hop)), int(0.5 * rate / hop)
    near_before, near_after = (frames < b) & (frames >= b - reach), (frames >= b) & (frames < b + reach)
    active = rms > ACTIVE_RATIO * rms.max()

    def sides(keep, ms):
        count = max(1, int(round(ms / 1000 * rate / hop)))
        return frames[keep & near_before][-count:], frames[keep & near_after][:count]

    before, after = sides(active, energy_ms)
    if not len(before) or not len(after):
        return {"energy": None, "f0": None, "gap": None}
    result = {"energy": abs(float(db[after].mean() - db[before].mean())),
              "gap": (after[0] - before[-1] - 1) * hop / rate * 1000, "f0": None}
    before, after = sides(voiced & np.isfinite(f0) & active, f0_ms)
    if len(before) and len(after):
        result["f0"] = abs(12 * float(np.log2(np.median(f0[after]) / np.median(f0[before]))))
    return result


def best_time(function, repeats: int):
    """(the last result, the least CPU seconds of this process over ``repeats`` calls). CPU
    time, not wall time: on a shared machine it does not count the other processes' turns."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return result, best


def run_pair(bundle, vocoder, options, a: str, b: str, repeats: int):
    """{method: (wav, boundary seconds, synthesis seconds)} for one pair, and its text."""
    first, second = one_sentence(a, b)
    tagged = f"[{FIRST}] {first} [{SECOND}] {second}"
    one, one_s = best_time(lambda: synthesize(bundle, tagged, {}, options, vocoder), repeats)

    def glue():
        return [synthesize(bundle, text, {emotion: 1.0}, options, vocoder)
                for text, emotion in ((first, FIRST), (second, SECOND))]

    parts, glue_s = best_time(glue, repeats)
    glued = np.concatenate([part.wav for part in parts])
    same = f"[{FIRST}] {first} [{FIRST}] {second}"  # no change: the same boundary, one emotion
    steady, steady_s = best_time(lambda: synthesize(bundle, same, {}, options, vocoder), repeats)
    return {"one pass": (one.wav, one.segments[1]["start"], one_s),
            "glued": (glued, len(parts[0].wav) / parts[0].sample_rate, glue_s),
            f"no change ({FIRST} only)": (steady.wav, steady.segments[1]["start"], steady_s),
            }, f"{first} {second}"


def _mean(values) -> float:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--features", type=Path, default=Path("data/demo/features"))
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--speaker", default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--energy-ms", type=float, default=50.0)
    parser.add_argument("--f0-ms", type=float, default=150.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_tts(args.model)
    vocoder = load_default_vocoder(bundle)
    options = SynthesisOptions(speaker=args.speaker, seed=0)
    texts, source = validation_sentences(args.features)
    pairs = list(zip(texts[0::2], texts[1::2], strict=False))[: args.pairs]
    rows: dict[str, dict[str, list]] = {}
    references = []
    for a, b in pairs:
        results, reference = run_pair(bundle, vocoder, options, a, b, args.repeats)
        references.append(reference)
        for method, (wav, boundary, seconds) in results.items():
            row = rows.setdefault(method, {"wav": [], "s": [], "jumps": []})
            row["wav"].append(wav)
            row["s"].append(seconds)
            row["jumps"].append(boundary_jumps(wav, bundle.audio.sample_rate, boundary,
                                               args.energy_ms, args.f0_ms))
    asr = None if "whisper" in missing_extras() else WhisperASR(threads=args.threads)
    print(f"# bench_segments, {date.today()}: {args.model}, {len(pairs)} pairs from {source};"
          f" {FIRST} then {SECOND}, speaker {options.speaker or bundle.speakers[0]}, the model's sampler")
    print("| method | synthesis CPU s | cost / glued | energy jump dB | F0 jump st (defined) | "
          "silence at the boundary ms | WER |")
    print("|---|---|---|---|---|---|---|")
    glued_s = sum(rows["glued"]["s"])
    for method, row in rows.items():
        wer = "n/a (no emomix[judges])" if asr is None else format(wer_cer(references, transcribe(
            asr, row["wav"], bundle.audio.sample_rate, Cost()))["wer"], ".2f")
        mean = {key: _mean([j[key] for j in row["jumps"]]) for key in ("energy", "f0", "gap")}
        defined = sum(j["f0"] is not None for j in row["jumps"])
        print(f"| {method} | {sum(row['s']):.1f} | {sum(row['s']) / glued_s:.2f} | "
              f"{mean['energy']:.1f} | {mean['f0']:.2f} ({defined}/{len(pairs)}) | "
              f"{mean['gap']:.0f} | {wer} |")
    print(f"CPU: {cpu_description()}, torch threads {args.threads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
