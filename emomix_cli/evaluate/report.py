"""Writing and printing an evaluation report: report.json, PNGs, sample wavs, rich tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.markup import escape

from ..audio import save_wav
from ..config import atomic_write_text
from .judges import missing_note
from .metrics import mean_defined
from .plots import (
    plot_blends,
    plot_confusion,
    plot_guidance,
    plot_intensity,
    plot_prosody,
    plot_speakers,
)
from .schema import (
    BarLine,
    Blends,
    Classification,
    GroundTruth,
    Guidance,
    Intensity,
    Report,
    Summary,
    Timing,
    WordErrors,
)
from .scoring import BLEND


def write_outputs(out_dir: Path, report: Report, samples: dict[str, np.ndarray], sample_rate: int) -> Report:
    """report.json, the PNGs and samples/<emotion>.wav (sentence 0); returns the report as
    report.json holds it (NaN -> None)."""
    data = report.to_json()
    report = Report.from_json(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    for emotion, wav in samples.items():
        save_wav(out_dir / "samples" / f"{emotion}.wav", wav, sample_rate)
    plot_confusion(report, out_dir / "confusion.png")
    plot_intensity(report.intensity, out_dir / "intensity.png")
    plot_blends(report.blends, out_dir / "blends.png")
    plot_prosody(report.per_emotion, out_dir / "prosody.png")
    if report.guidance and report.guidance.rows:
        plot_guidance(report.guidance, out_dir / "guidance.png")
    if report.per_speaker:
        plot_speakers(report, out_dir / "speakers.png")
    atomic_write_text(out_dir / "report.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return report


def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _pair(synth, truth, spec: str = ".2f") -> str:
    return f"{_fmt(synth, spec)} / {_fmt(truth, spec)}"


def _triple(synth, truth, copy, spec: str = ".2f") -> str:
    return f"{_fmt(synth, spec)} / {_fmt(truth, spec)} / {_fmt(copy, spec)}"


def _accuracy(classification: Classification | None, emotion: str):
    return None if not classification else classification.accuracy.get(emotion)


def _mean_accuracy(classification: Classification | None):
    return None if not classification else classification.mean_accuracy


def _table(title: str, columns, right=lambda name: True):
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name, justify="right" if right(name) else "left")
    return table


def print_report(report: Report, console=None) -> None:
    """Rich tables of a :func:`~.run.run_eval` report: judges per emotion, prosody, intensity,
    blends, the guidance sweep, the quality bar and what it cost."""
    from rich.console import Console

    console = console or Console()
    _print_header(report, console)
    console.print(judges_table(report))
    console.print("* conditioning SER (not independent): the SER the TTS was trained with")
    if len(report.per_speaker) > 1:
        console.print(speakers_table(report))
    console.print(prosody_table(report))
    console.print(intensity_table(report.intensity))
    console.print(blends_table(report.blends))
    if report.guidance and report.guidance.rows:
        console.print(guidance_table(report.guidance))
    console.print(bar_table(report.bar, report.config.model))
    _print_timing(report.timing, console)


def _print_header(report: Report, console) -> None:
    config = report.config
    console.print(f"model {model_label(config.model)}: split {config.split}, {config.n_sentences} "
                  f"sentence{'s' * (config.n_sentences != 1)}, vocoder {config.vocoder}; "
                  f"emotion judged by the second SER {config.judge_ser or '(none: pass --judge-ser)'}")  # fmt: skip
    note = missing_note(config.missing_judges or {})
    if note:
        console.print(f"[yellow]{escape(note)}[/]")  # escape: the hint holds [judges]


def judges_table(report: Report):
    """Per emotion and pooled: voicing, WER/CER, both SERs' accuracy, DNSMOS."""
    table = _table("judges per emotion: synthesized / ground truth (real audio) / ground truth vocoded",
                   ("emotion", "voiced frac", "WER", "CER", "2nd-SER acc", "cond. SER acc*", "DNSMOS P.808"),
                   lambda name: name != "emotion")  # fmt: skip
    gt = report.ground_truth or GroundTruth()
    judged, cond = report.judge_classification, report.classification
    for emotion, row in report.per_emotion.items():
        synth, truth, copy = row.synth, row.gt or Summary(), row.gt_vocoded or Summary()
        table.add_row(
            emotion, _triple(synth.voiced_fraction, truth.voiced_fraction, copy.voiced_fraction),
            _pair(synth.wer, truth.wer), _pair(synth.cer, truth.cer),
            _triple(_accuracy(judged, emotion), _accuracy(gt.judge_classification, emotion),
                    _accuracy(gt.vocoded_judge_classification, emotion)),
            _pair(_accuracy(cond, emotion), _accuracy(gt.classification, emotion)),
            _pair(synth.p808, truth.p808),
        )  # fmt: skip
    asr = report.intelligibility
    asr_gt = asr.gt or WordErrors()
    table.add_row("all / UA", "", _pair(asr.synth.wer, asr_gt.wer), _pair(asr.synth.cer, asr_gt.cer),
                  _triple(_mean_accuracy(judged), _mean_accuracy(gt.judge_classification),
                          _mean_accuracy(gt.vocoded_judge_classification)),
                  _pair(_mean_accuracy(cond), _mean_accuracy(gt.classification)), "")  # fmt: skip
    return table


def speakers_table(report: Report):
    """Per speaker × emotion: voiced fraction synthesized / vocoded ground truth, and WER."""
    emotions = list(report.emotions)
    table = _table("voiced fraction per speaker: synthesized / ground truth vocoded; WER synthesized / real",
                   ("speaker", *emotions, "WER"), lambda name: name != "speaker")  # fmt: skip
    for speaker, rows in report.per_speaker.items():
        cells = []
        for emotion in emotions:
            row = rows.get(emotion)
            copy = (row.gt_vocoded or Summary()) if row else Summary()
            cells.append(_pair(row.synth.voiced_fraction if row else None, copy.voiced_fraction))
        # every emotion speaks the same sentences, so the mean of the per-emotion WERs is the pooled one
        wer = mean_defined(row.synth.wer for row in rows.values())
        truth = mean_defined((row.gt or Summary()).wer for row in rows.values())
        table.add_row(speaker, *cells, _pair(wer, truth))
    return table


def prosody_table(report: Report):
    table = _table("prosody per emotion: synthesized / ground truth",
                   ("emotion", "F0 median Hz", "F0 range st", "loudness dB", "phones/s"),
                   lambda name: name != "emotion")  # fmt: skip
    for emotion, row in report.per_emotion.items():
        synth, truth = row.synth, row.gt or Summary()
        table.add_row(emotion, *[_pair(getattr(synth, k), getattr(truth, k), spec) for k, spec in (
            ("f0_median", ".0f"), ("f0_range_st", ".1f"), ("loudness_db", ".1f"), ("rate", ".1f"))])  # fmt: skip
    return table


def intensity_table(intensity: Intensity):
    table = _table("intensity vs Neutral: second-SER P(emotion) | prosody-line position",
                   ("emotion", *[f"{w:g}" for w in intensity.weights], "ρ 2nd SER", "ρ prosody", "ρ cond.*"),
                   lambda name: name != "emotion")  # fmt: skip
    for emotion, positions in intensity.prosody_curves.items():
        judged = intensity.judge_curves.get(emotion) or [None] * len(positions)
        table.add_row(emotion, *[f"{_fmt(p)} | {_fmt(q)}" for p, q in zip(judged, positions, strict=True)],
                      _fmt(intensity.judge_spearman.get(emotion)), _fmt(intensity.prosody_spearman.get(emotion)),
                      _fmt(intensity.spearman.get(emotion)))  # fmt: skip
    return table


def blends_table(blends: Blends):
    table = _table(f"blends {BLEND[0]:g}/{BLEND[1]:g}: prosody position (0 = minor, 1 = major), "
                   "second-SER posteriors vs plain Neutral",
                   ("major", "minor", "position", "between", "P2(major) | Neutral", "P2(minor) | Neutral", "top-2*"),
                   lambda name: name not in ("major", "minor"))  # fmt: skip
    for pair in blends.pairs:
        judged, neutral = pair.judge_posteriors or {}, pair.neutral_posteriors or {}
        positions = [p for p in pair.positions if p is not None]
        table.add_row(pair.major, pair.minor, _fmt(float(np.mean(positions)) if positions else None),
                      _fmt(pair.between_rate),
                      f"{_fmt(judged.get(pair.major))} | {_fmt(neutral.get(pair.major))}",
                      f"{_fmt(judged.get(pair.minor))} | {_fmt(neutral.get(pair.minor))}",
                      _fmt(pair.top2_rate))  # fmt: skip
    return table


def guidance_table(sweep: Guidance):
    emotions = list(sweep.rows[0].distance)
    table = _table("guidance: prosody distance from Neutral (scaled), WER, voiced fraction, second-SER UA",
                   ("w", *emotions, "mean", "WER", "voiced", "2nd-SER UA"))
    for row in sweep.rows:
        table.add_row(f"{row.w:g}", *[_fmt(row.distance[e]) for e in emotions], _fmt(row.mean_distance),
                      _fmt(row.wer), _fmt(row.voiced_fraction), _fmt(row.judge_accuracy))  # fmt: skip
    return table


def model_label(model: str | None) -> str:
    """What a report calls the model it judged: a shipped model's name ("espeak"), else its path."""
    from ..assets import shipped_model_of

    shipped = shipped_model_of(model) if model else None
    return shipped.name if shipped else (model or "model not recorded")


def bar_table(bar: list[BarLine], model: str | None = None):
    """The bar line by line, titled with the model it judged (:func:`model_label`)."""
    table = _table(f"quality bar ({model_label(model)})", ("check", "value", "threshold", "result", "note"),
                   lambda name: name in ("value", "threshold"))
    for line in bar:
        result = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "n/a"}[line.passed]
        table.add_row(line.check, _fmt(line.value, ".3f"), _fmt(line.threshold, ".3f"), result, line.note)
    return table


def _print_timing(timing: Timing, console) -> None:
    costs = ", ".join(f"{k} {_fmt(v, '.2f')} s" for k, v in timing.judge_s_per_utterance.items())
    console.print(f"{timing.utterances} utterances: synthesis {_fmt(timing.synthesis_s, '.0f')} s, "
                  f"vocoder {_fmt(timing.vocoder_s, '.0f')} s; judges per utterance: {costs}")  # fmt: skip
