"""The real-audio gate of the ``demo-natural`` corpus (docs/demo_corpus.md), judged by tools that
owe nothing to emomix: Whisper tiny.en (WER), DNSMOS P.808, pYIN (voicing, F0, loudness, rate)
and the mel -> HiFi-GAN UNIVERSAL_V1 round trip (voicing kept), per speaker x emotion cell.

    python benchmarks/natural_gate.py --render /tmp/nat --speakers 4 --sentences 6 [--ser A.pt B.pt]

renders the corpus (resumable) when ``--render`` is given, else judges ``--corpus ROOT`` as it
is; ``--ser`` adds the test UA each SER checkpoint recorded. Prints a table per cell and the gate's
lines; ``--json`` writes every figure. ``tests/test_natural_corpus.py`` runs it in a slow test.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

GATE = {"wer_cell": 0.08, "dnsmos": 3.7, "vocoded_voicing": 0.9, "ser_ua": 0.9}


def cpu_name() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_cold_start import cpu_description  # the CPU line every benchmark prints

    return cpu_description()


def judge_corpus(root: Path, threads: int = 1) -> dict:
    """Every figure of the gate for the ESD-layout tree at ``root``, per (speaker, emotion)."""
    import torch

    from emomix_cli.audio import AudioConfig, load_wav, mel_spectrogram
    from emomix_cli.corpora import read_corpus
    from emomix_cli.evaluate.judges import DNSMOS, PYIN, WhisperASR, prosody, resample
    from emomix_cli.evaluate.metrics import count_phones
    from emomix_cli.progress import progress_bar
    from emomix_cli.synthesis import vocode
    from emomix_cli.text import phonemize
    from emomix_cli.vocoder import load_vocoder

    torch.set_num_threads(threads)
    records = read_corpus("esd", root).records
    audio = AudioConfig()
    asr, dnsmos = WhisperASR(threads=threads), DNSMOS(threads=threads)
    vocoder = load_vocoder("hifigan", audio=audio)
    phones = phonemize([r.text for r in records], "en")
    cells: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    with progress_bar("judging demo-natural", len(records)) as bar:
        for record, phonemes in zip(records, phones, strict=True):
            wav = load_wav(record.wav, audio)
            cell = cells[(record.speaker, record.emotion)]
            cell["refs"].append(record.text)
            cell["hyps"].append(asr(resample(wav, audio.sample_rate, 16000)))
            cell["dnsmos"].append(dnsmos(resample(wav, audio.sample_rate, 16000))["p808"])
            n_phones = count_phones(phonemes)
            real = prosody(wav, audio.sample_rate, n_phones)
            mel = mel_spectrogram(torch.from_numpy(wav), audio)[0].numpy()
            vocoded = prosody(vocode(vocoder, mel), audio.sample_rate, n_phones)
            for key in ("voiced_fraction", "f0_median", "loudness_db", "rate"):
                cell[key].append(real[key])
            cell["vocoded_voiced"].append(vocoded["voiced_fraction"])
            bar.advance()
    assert PYIN["sr"] == audio.sample_rate
    return {f"{s}/{e}": summarise(c) for (s, e), c in sorted(cells.items())}


def summarise(cell: dict[str, list]) -> dict:
    from emomix_cli.evaluate.judges import wer_cer

    def mean(key):
        values = [v for v in cell[key] if v is not None]
        return float(np.mean(values)) if values else None

    return {"wer": wer_cer(cell["refs"], cell["hyps"])["wer"], "n": len(cell["refs"]),
            "dnsmos": mean("dnsmos"), "voiced": mean("voiced_fraction"),
            "vocoded_voiced": mean("vocoded_voiced"), "f0_median": mean("f0_median"),
            "loudness_db": mean("loudness_db"), "rate": mean("rate"),
            "refs": cell["refs"], "hyps": cell["hyps"]}  # fmt: skip


def gate_lines(cells: dict, ser_ua: dict[str, float]) -> list[tuple[str, bool, str]]:
    """(line, passed, figures) for each line of the gate."""
    speakers = sorted({k.split("/")[0] for k in cells})
    by_speaker = {s: {k.split("/")[1]: v for k, v in cells.items() if k.startswith(s + "/")} for s in speakers}
    worst = max(cells.items(), key=lambda kv: kv[1]["wer"])
    mos = float(np.mean([c["dnsmos"] for c in cells.values()]))
    ratios = {k: c["vocoded_voiced"] / c["voiced"] for k, c in cells.items() if c["voiced"]}
    low = min(ratios.items(), key=lambda kv: kv[1])
    speaker_ratio = {s: np.mean([c["vocoded_voiced"] for c in e.values()]) / np.mean([c["voiced"] for c in e.values()])
                     for s, e in by_speaker.items()}
    f0 = {s: by_speaker[s]["neutral"]["f0_median"] for s in speakers if "neutral" in by_speaker[s]}
    order = []
    for e in by_speaker.values():
        order.append(e["sad"]["rate"] < e["angry"]["rate"] and e["sad"]["f0_median"] < e["angry"]["f0_median"]
                     and e["angry"]["loudness_db"] > e["sad"]["loudness_db"]
                     and min(e["happy"]["f0_median"], e["surprise"]["f0_median"]) > e["neutral"]["f0_median"])
    lines = [
        (f"Whisper WER <= {GATE['wer_cell']} in every cell", worst[1]["wer"] <= GATE["wer_cell"],
         f"worst {worst[0]} {worst[1]['wer']:.3f}"),
        (f"DNSMOS P.808 >= {GATE['dnsmos']}", mos >= GATE["dnsmos"], f"mean {mos:.2f}"),
        (f"vocoded voicing >= {GATE['vocoded_voicing']} x the wav's, every speaker",
         min(speaker_ratio.values()) >= GATE["vocoded_voicing"],
         ", ".join(f"{s} {r:.2f}" for s, r in speaker_ratio.items()) + f"; lowest cell {low[0]} {low[1]:.2f}"),
        ("a speaker at F0 >= 165 Hz and one <= 130 Hz (neutral median)",
         max(f0.values()) >= 165 and min(f0.values()) <= 130, ", ".join(f"{s} {v:.0f}" for s, v in f0.items())),
        ("sad slower and lower than angry, angry louder than sad, happy and surprise above neutral, every speaker",
         all(order), f"{sum(order)}/{len(order)} speakers"),
    ]
    for name, ua in ser_ua.items():
        lines.append((f"SER {name} test UA >= {GATE['ser_ua']}", ua >= GATE["ser_ua"], f"{ua:.3f}"))
    return lines


def ser_test_ua(paths: list[str]) -> dict[str, float]:
    from emomix_cli.ser import load_ser

    return {Path(p).parent.name or p: float(load_ser(p).metrics["test"]["ua"]) for p in paths}


def print_report(cells: dict, lines) -> None:
    print(f"CPU: {cpu_name()}")
    print(f"{'cell':<16}{'n':>4}{'WER':>7}{'DNSMOS':>8}{'voiced':>8}{'vocoded':>9}{'F0 Hz':>7}{'dBFS':>7}{'ph/s':>6}")
    for key, c in cells.items():
        print(f"{key:<16}{c['n']:>4}{c['wer']:>7.3f}{c['dnsmos']:>8.2f}{c['voiced']:>8.2f}"
              f"{c['vocoded_voiced']:>9.2f}{c['f0_median']:>7.0f}{c['loudness_db']:>7.1f}{c['rate']:>6.1f}")
    for line, passed, figures in lines:
        print(f"{'PASS' if passed else 'FAIL'}  {line}: {figures}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", type=Path, help="render the corpus here first (resumable)")
    parser.add_argument("--corpus", type=Path, help="judge this ESD-layout tree as it is")
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--sentences", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ser", nargs="*", default=[], help="SER checkpoints trained on the full render")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    if (args.render is None) == (args.corpus is None):
        parser.error("give exactly one of --render DIR or --corpus DIR")
    root = args.corpus
    if args.render is not None:
        from emomix_cli.natural_corpus import render_natural_corpus

        root = render_natural_corpus(args.render, args.speakers, args.sentences, workers=args.workers)
    cells = judge_corpus(root, args.threads)
    lines = [(line, bool(passed), figures) for line, passed, figures in gate_lines(cells, ser_test_ua(args.ser))]
    print_report(cells, lines)
    if args.json:
        from emomix_cli.config import atomic_write_text

        atomic_write_text(args.json, json.dumps({"cpu": cpu_name(), "cells": cells,
                                                 "gate": [list(x) for x in lines]}, indent=1))
    return 0 if all(passed for _, passed, _ in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
