"""Writing and printing an evaluation report: report.json, PNGs, sample wavs, rich tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from rich.markup import escape

from ..audio import save_wav
from ..config import atomic_write_text
from .judges import missing_note
from .plots import plot_blends, plot_confusion, plot_guidance, plot_intensity, plot_prosody
from .scoring import BLEND

PNGS = ("confusion.png", "intensity.png", "blends.png", "prosody.png")


def json_safe(value):
    """Plain JSON types: numpy scalars/arrays converted, NaN/inf -> None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_outputs(out_dir: Path, report: dict, samples: dict[str, np.ndarray], sample_rate: int) -> dict:
    """report.json, the PNGs and samples/<emotion>.wav (sentence 0); returns the JSON-safe report."""
    report = json_safe(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    for emotion, wav in samples.items():
        save_wav(out_dir / "samples" / f"{emotion}.wav", wav, sample_rate)
    plot_confusion(report, out_dir / "confusion.png")
    plot_intensity(report["intensity"], out_dir / "intensity.png")
    plot_blends(report["blends"], out_dir / "blends.png")
    plot_prosody(report["per_emotion"], out_dir / "prosody.png")
    if (report.get("guidance") or {}).get("rows"):
        plot_guidance(report["guidance"], out_dir / "guidance.png")
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _pair(synth, truth, spec: str = ".2f") -> str:
    return f"{_fmt(synth, spec)} / {_fmt(truth, spec)}"


def _triple(synth, truth, copy, spec: str = ".2f") -> str:
    return f"{_fmt(synth, spec)} / {_fmt(truth, spec)} / {_fmt(copy, spec)}"


def _accuracy(classification: dict | None, emotion: str):
    return None if not classification else classification["accuracy"].get(emotion)


def print_report(report: dict, console=None) -> None:
    """Rich tables of a :func:`~.run.run_eval` report: judges per emotion, prosody, intensity,
    blends and the quality bar."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    config, gt = report["config"], report.get("ground_truth") or {}
    console.print(f"split {config['split']}, {config['n_sentences']} sentences, vocoder {config['vocoder']}; "
                  f"emotion judged by the second SER {config['judge_ser'] or '(none: pass --judge-ser)'}")  # fmt: skip
    note = missing_note(config.get("missing_judges") or {})
    if note:
        console.print(f"[yellow]{escape(note)}[/]")  # escape: the hint holds [judges]

    table = Table(title="judges per emotion: synthesized / ground truth (real audio) / ground truth vocoded")
    for name in ("emotion", "voiced frac", "WER", "CER", "2nd-SER acc", "cond. SER acc*", "DNSMOS P.808"):
        table.add_column(name, justify="left" if name == "emotion" else "right")
    for emotion, row in report["per_emotion"].items():
        synth, truth, copy = row["synth"], row.get("gt") or {}, row.get("gt_vocoded") or {}
        table.add_row(
            emotion, _triple(synth["voiced_fraction"], truth.get("voiced_fraction"), copy.get("voiced_fraction")),
            _pair(synth["wer"], truth.get("wer")), _pair(synth["cer"], truth.get("cer")),
            _triple(_accuracy(report.get("judge_classification"), emotion),
                    _accuracy(gt.get("judge_classification"), emotion),
                    _accuracy(gt.get("vocoded_judge_classification"), emotion)),
            _pair(_accuracy(report["classification"], emotion), _accuracy(gt.get("classification"), emotion)),
            _pair(synth["p808"], truth.get("p808")),
        )  # fmt: skip
    asr = report.get("intelligibility") or {}
    judged, cond = report.get("judge_classification") or {}, report["classification"] or {}
    table.add_row("all / UA", "", _pair((asr.get("synth") or {}).get("wer"), (asr.get("gt") or {}).get("wer")),
                  _pair((asr.get("synth") or {}).get("cer"), (asr.get("gt") or {}).get("cer")),
                  _triple(judged.get("mean_accuracy"), (gt.get("judge_classification") or {}).get("mean_accuracy"),
                          (gt.get("vocoded_judge_classification") or {}).get("mean_accuracy")),
                  _pair(cond.get("mean_accuracy"), (gt.get("classification") or {}).get("mean_accuracy")), "")  # fmt: skip
    console.print(table)
    console.print("* conditioning SER (not independent): the SER the TTS was trained with")

    table = Table(title="prosody per emotion: synthesized / ground truth")
    for name in ("emotion", "F0 median Hz", "F0 range st", "loudness dB", "phones/s"):
        table.add_column(name, justify="left" if name == "emotion" else "right")
    for emotion, row in report["per_emotion"].items():
        synth, truth = row["synth"], row.get("gt") or {}
        table.add_row(emotion, *[_pair(synth[k], truth.get(k), spec) for k, spec in (
            ("f0_median", ".0f"), ("f0_range_st", ".1f"), ("loudness_db", ".1f"), ("rate", ".1f"))])  # fmt: skip
    console.print(table)

    intensity = report["intensity"]
    table = Table(title="intensity vs Neutral: second-SER P(emotion) | prosody-line position")
    table.add_column("emotion")
    for w in intensity["weights"]:
        table.add_column(f"{w:g}", justify="right")
    for name in ("ρ 2nd SER", "ρ prosody", "ρ cond.*"):
        table.add_column(name, justify="right")
    for emotion, positions in intensity["prosody_curves"].items():
        judged = intensity["judge_curves"].get(emotion) or [None] * len(positions)
        table.add_row(emotion, *[f"{_fmt(p)} | {_fmt(q)}" for p, q in zip(judged, positions, strict=True)],
                      _fmt(intensity["judge_spearman"].get(emotion)), _fmt(intensity["prosody_spearman"].get(emotion)),
                      _fmt(intensity["spearman"].get(emotion)))  # fmt: skip
    console.print(table)

    blends = report["blends"]
    table = Table(title=f"blends {BLEND[0]:g}/{BLEND[1]:g}: prosody position (0 = minor, 1 = major), "
                        "second-SER posteriors vs plain Neutral")  # fmt: skip
    for name in ("major", "minor", "position", "between", "P2(major) | Neutral", "P2(minor) | Neutral", "top-2*"):
        table.add_column(name, justify="left" if name in ("major", "minor") else "right")
    for pair in blends["pairs"]:
        judged, neutral = pair.get("judge_posteriors") or {}, pair.get("neutral_posteriors") or {}
        positions = [p for p in pair["positions"] if p is not None]
        table.add_row(pair["major"], pair["minor"], _fmt(float(np.mean(positions)) if positions else None),
                      _fmt(pair["between_rate"]),
                      f"{_fmt(judged.get(pair['major']))} | {_fmt(neutral.get(pair['major']))}",
                      f"{_fmt(judged.get(pair['minor']))} | {_fmt(neutral.get(pair['minor']))}",
                      _fmt(pair["top2_rate"]))  # fmt: skip
    console.print(table)

    sweep = report.get("guidance") or {}
    if sweep.get("rows"):
        table = Table(title="guidance: prosody distance from Neutral (scaled), WER, voiced fraction, "
                            "second-SER UA")
        emotions = list(sweep["rows"][0]["distance"])
        for name in ("w", *emotions, "mean", "WER", "voiced", "2nd-SER UA"):
            table.add_column(name, justify="right")
        for row in sweep["rows"]:
            table.add_row(f"{row['w']:g}", *[_fmt(row["distance"][e]) for e in emotions], _fmt(row["mean_distance"]),
                          _fmt(row["wer"]), _fmt(row["voiced_fraction"]),
                          _fmt(row.get("judge_accuracy")))  # fmt: skip
        console.print(table)

    table = Table(title="quality bar (demo model)")
    for name in ("check", "value", "threshold", "result", "note"):
        table.add_column(name, justify="right" if name in ("value", "threshold") else "left")
    for line in report.get("bar", []):
        result = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "n/a"}[line["passed"]]
        table.add_row(line["check"], _fmt(line["value"], ".3f"), _fmt(line["threshold"], ".3f"), result,
                      line.get("note", ""))  # fmt: skip
    console.print(table)
    timing = report.get("timing") or {}
    costs = ", ".join(f"{k} {_fmt(v, '.2f')} s" for k, v in (timing.get("judge_s_per_utterance") or {}).items())
    console.print(f"{timing.get('utterances')} utterances: synthesis {_fmt(timing.get('synthesis_s'), '.0f')} s, "
                  f"vocoder {_fmt(timing.get('vocoder_s'), '.0f')} s; judges per utterance: {costs}")  # fmt: skip
