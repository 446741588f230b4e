"""PNG plots of an evaluation report (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..config import atomic_write_bytes
from .schema import Blends, EmotionRow, Guidance, Intensity, Report


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, axes


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def _matrix(axis, values: np.ndarray, rows, columns, cmap: str, title: str, xlabel: str, ylabel: str):
    axis.imshow(np.nan_to_num(values, nan=0.0), cmap=cmap, vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(values):
        text = "—" if np.isnan(value) else f"{value:.2f}"
        axis.text(j, i, text, ha="center", va="center", color="white" if value > 0.5 else "black")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)


def plot_confusion(report: Report, path: Path) -> None:
    """Row-normalised confusion of the synthesized emotions: second SER and conditioning SER."""
    panels = [(report.judge_classification, "second SER (independent)"),
              (report.classification, "conditioning SER (not independent)")]  # fmt: skip
    panels = [(c, t) for c, t in panels if c]
    width = sum(max(4.8, 1.2 + 0.9 * len(c.columns)) for c, _ in panels)
    figure, axes = _figure(width, 1.4 + 0.8 * len(report.emotions), len(panels))
    for axis, (classification, title) in zip(axes, panels, strict=True):
        counts = np.asarray(classification.confusion, dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        _matrix(axis, share, classification.rows, classification.columns, "Blues", title,
                "recognised", "intended")  # fmt: skip
    _save(figure, path)


def plot_speakers(report: Report, path: Path) -> None:
    """Per speaker × emotion: the synthesized voiced fraction as a share of the vocoded real
    mel's (the bar asks ≥ 0.8 everywhere); a cell without a judged pair is "—"."""
    from .bar import speaker_voicing_ratios

    ratios = speaker_voicing_ratios(report)
    speakers, emotions = list(ratios), list(report.emotions)
    ratio = np.array([[ratios[s].get(e, np.nan) for e in emotions] for s in speakers], dtype=float)
    figure, (axis,) = _figure(1.6 + 0.9 * len(emotions), 1.4 + 0.6 * len(speakers))
    _matrix(axis, np.clip(ratio, 0, 1), speakers, emotions, "RdYlGn",
            "voiced fraction: synthesized / real mel vocoded", "emotion", "speaker")  # fmt: skip
    _save(figure, path)


def plot_intensity(intensity: Intensity, path: Path) -> None:
    """Per emotion vs weight: the second SER's and the conditioning SER's posterior, and the
    position on the prosody line Neutral (0) -> emotion (1)."""
    panels = [("judge_curves", "judge_spearman", "second SER: P(emotion)"),
              ("curves", "spearman", "conditioning SER: P(emotion)"),
              ("prosody_curves", "prosody_spearman", "prosody line position")]  # fmt: skip
    panels = [p for p in panels if getattr(intensity, p[0])]
    figure, axes = _figure(4.4 * max(len(panels), 1), 3.6, max(len(panels), 1))
    for axis, (curves, rhos, title) in zip(axes, panels, strict=False):
        for emotion, curve in getattr(intensity, curves).items():
            rho = getattr(intensity, rhos).get(emotion)
            values = [np.nan if v is None else v for v in curve]
            label = f"{emotion} (ρ={rho:.2f})" if rho is not None else emotion
            axis.plot(intensity.weights, values, marker="o", label=label)
        axis.set(xlabel="weight vs neutral", title=title)
        axis.legend(fontsize=7)
    _save(figure, path)


def plot_blends(blends: Blends, path: Path) -> None:
    """0.6/0.4 blends: share strictly between the parents on the prosody line; SER top-2."""
    names = blends.emotions
    if len(names) < 2:
        figure, axes = _figure(4, 2)
        axes[0].text(0.5, 0.5, "no blends: fewer than 2 non-neutral emotions", ha="center", va="center")
        axes[0].set_axis_off()
        _save(figure, path)
        return
    between = np.full((len(names), len(names)), np.nan)
    for pair in blends.pairs:
        between[names.index(pair.major), names.index(pair.minor)] = pair.between_rate
    top2 = np.asarray(blends.top2_matrix, dtype=float).reshape(len(names), len(names))
    size = max(4.8, 1.5 + 0.9 * len(names))
    figure, axes = _figure(2 * size, 1.2 + 0.8 * len(names), 2)
    _matrix(axes[0], between, names, names, "Greens", "prosody strictly between parents",
            "minor (0.4)", "major (0.6)")  # fmt: skip
    _matrix(axes[1], top2, names, names, "Greens", "conditioning SER: both in top 2",
            "minor (0.4)", "major (0.6)")  # fmt: skip
    _save(figure, path)


def plot_prosody(per_emotion: dict[str, EmotionRow], path: Path) -> None:
    """Synthesized vs ground truth (real audio, and its mel through the same vocoder) per
    emotion: voiced fraction, F0 median and range, loudness, speaking rate."""
    keys = [("voiced_fraction", "voiced fraction"), ("f0_median", "F0 median (Hz)"),
            ("f0_range_st", "F0 range (st)"), ("loudness_db", "loudness (dB)"), ("rate", "phones/s")]  # fmt: skip
    emotions = list(per_emotion)
    figure, axes = _figure(3.0 * len(keys), 3.2, len(keys))
    x = np.arange(len(emotions))
    for axis, (key, title) in zip(axes, keys, strict=True):
        for offset, side, label in ((-0.27, "synth", "synthesized"), (0.0, "gt", "ground truth"),
                                    (0.27, "gt_vocoded", "ground truth, vocoded")):
            values = [getattr(getattr(per_emotion[e], side), key, None) for e in emotions]
            axis.bar(x + offset, [np.nan if v is None else v for v in values], width=0.27, label=label)
        axis.set_xticks(x, emotions, rotation=45, ha="right")
        axis.set_title(title)
    axes[0].legend(fontsize=7)
    _save(figure, path)


def plot_guidance(sweep: Guidance, path: Path) -> None:
    """Guidance w against each emotion's prosody distance from Neutral, and against WER."""
    rows = sweep.rows
    levels = [row.w for row in rows]
    figure, axes = _figure(8.0, 3.2, 2)
    for emotion in rows[0].distance:
        values = [row.distance.get(emotion) for row in rows]
        axes[0].plot(levels, [np.nan if v is None else v for v in values], marker="o", label=emotion)
    axes[0].set_xlabel("guidance w")
    axes[0].set_title("prosody distance from Neutral")
    axes[0].legend(fontsize=7)
    axes[1].plot(levels, [np.nan if row.wer is None else row.wer for row in rows], marker="o")
    axes[1].set_xlabel("guidance w")
    axes[1].set_title("Whisper WER (all emotions)")
    _save(figure, path)
