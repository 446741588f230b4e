"""The evaluation report: what ``run_eval`` returns and report.json holds, as dataclasses.

report.json is :meth:`Report.to_json` (fields in declaration order, NaN -> null);
:meth:`Report.from_json` reads it back, and reads older or partial files too: an absent key
keeps its field's default (no judges installed: no WER, no second SER, no sweep).
``scoring`` builds each section as a plain dict; the classes here give it its attributes.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def _read(kind, value):
    """``value`` (JSON) as ``kind`` (a type hint): dataclasses built, lists and dicts followed."""
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _read(inner[0], value) if len(inner) == 1 else value
    if origin is list and args:
        return [_read(args[0], v) for v in value]
    if origin is dict and args:
        return {k: _read(args[1], v) for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _read(hints[f.name], value[f.name])
                       for f in dataclasses.fields(kind) if f.name in value})  # fmt: skip
    return value


class Section:
    """A part of the report: read from and written to its JSON dict."""

    @classmethod
    def from_json(cls, data: dict | None):
        return _read(cls, data)

    def to_json(self) -> dict:
        return json_safe(dataclasses.asdict(self))


@dataclass
class WordErrors(Section):
    """Whisper's errors pooled over utterances (``judges.wer_cer``)."""

    wer: float | None = None
    cer: float | None = None
    n: int = 0


@dataclass
class Summary(Section):
    """One emotion's utterances on one side (synthesized, ground truth, vocoded ground truth)."""

    voiced_fraction: float | None = None
    f0_median: float | None = None
    f0_range_st: float | None = None
    loudness_db: float | None = None
    rate: float | None = None  # phones per second
    wer: float | None = None
    cer: float | None = None
    p808: float | None = None  # DNSMOS
    n: int = 0


@dataclass
class EmotionRow(Section):
    synth: Summary = field(default_factory=Summary)
    gt: Summary | None = None  # the real recordings
    gt_vocoded: Summary | None = None  # their stored mels through the same vocoder


@dataclass
class Classification(Section):
    """An SER's verdict on utterances of intended emotions ``rows`` (``metrics.classification``)."""

    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    accuracy: dict[str, float | None] = field(default_factory=dict)
    mean_accuracy: float | None = None  # UA
    wa: float | None = None


@dataclass
class Intelligibility(Section):
    synth: WordErrors = field(default_factory=WordErrors)  # the single emotions
    gt: WordErrors | None = None


@dataclass
class Intensity(Section):
    """Per emotion, against Neutral at ``weights``: curves and their Spearman ρ (``scoring.intensity``)."""

    weights: list[float] = field(default_factory=list)
    monotonic_tolerance: float | None = None
    curves: dict[str, list[float]] = field(default_factory=dict)  # conditioning SER
    spearman: dict[str, float | None] = field(default_factory=dict)
    monotonic: dict[str, bool] = field(default_factory=dict)
    judge_curves: dict[str, list[float | None]] = field(default_factory=dict)  # second SER
    judge_spearman: dict[str, float | None] = field(default_factory=dict)
    prosody_curves: dict[str, list[float | None]] = field(default_factory=dict)  # prosody line position
    prosody_spearman: dict[str, float | None] = field(default_factory=dict)


@dataclass
class BlendPair(Section):
    """One ordered pair ``major``/``minor`` at ``weights`` (``scoring.blends``)."""

    major: str | None = None
    minor: str | None = None
    weights: list[float] = field(default_factory=list)
    top2_rate: float | None = None
    mean_posteriors: dict[str, float] = field(default_factory=dict)
    positions: list[float | None] = field(default_factory=list)  # per sentence, 0 = minor, 1 = major
    between_rate: float | None = None
    judge_posteriors: dict[str, float | None] | None = None
    neutral_posteriors: dict[str, float | None] | None = None
    parents_above_neutral: bool | None = None


@dataclass
class Blends(Section):
    emotions: list[str] = field(default_factory=list)
    pairs: list[BlendPair] = field(default_factory=list)
    top2_matrix: list[list[float | None]] = field(default_factory=list)
    mean_top2_rate: float | None = None
    between_rate: float | None = None
    between_margin: float | None = None


@dataclass
class GuidanceRow(Section):
    """The single emotions at guidance ``w`` (``scoring.guidance``)."""

    w: float = 1.0
    distance: dict[str, float | None] = field(default_factory=dict)  # prosody from Neutral, scaled
    mean_distance: float | None = None
    wer: float | None = None
    cer: float | None = None
    judge_accuracy: float | None = None  # second-SER UA
    voiced_fraction: float | None = None


@dataclass
class Guidance(Section):
    reference_w: float = 1.0
    rows: list[GuidanceRow] = field(default_factory=list)


@dataclass
class GroundTruth(Section):
    classification: Classification | None = None
    judge_classification: Classification | None = None
    vocoded_judge_classification: Classification | None = None
    n: int = 0


@dataclass
class Transcript(Section):
    label: str | None = None
    i: int | None = None  # sentence index; None for ground truth
    ref: str | None = None
    hyp: str | None = None


@dataclass
class Timing(Section):
    utterances: int | None = None
    synthesis_s: float | None = None
    vocoder_s: float | None = None
    audio_s: float | None = None
    rtf_synthesis: float | None = None
    rtf_vocoder: float | None = None
    judge_s_per_utterance: dict[str, float | None] = field(default_factory=dict)


@dataclass
class BarLine(Section):
    """One check of the quality bar (``bar``); ``passed`` None when its judge did not run."""

    check: str = ""
    value: float | None = None
    threshold: float | None = None
    passed: bool | None = None
    note: str = ""
    extra: bool = False  # a line emomix adds beside the bar's own (not counted in it)


@dataclass
class Config(Section):
    """What was evaluated and how: models, judges, the sampler settings, the sentences."""

    model: str | None = None
    features: str | None = None
    split: str | None = None
    conditioning_ser: str | None = None
    judge_ser: str | None = None
    asr: str | None = None
    dnsmos: bool | None = None
    missing_judges: dict[str, list[str]] = field(default_factory=dict)
    # the sampler (synthesis.FALLBACK_SAMPLER's keys)
    steps: int | None = None
    temperature: float | None = None
    solver: str | None = None
    k_max: float | None = None
    k_min: float | None = None
    guidance: float | None = None
    encoder_condition: str | None = None
    guidance_reference: str | None = None  # null | neutral (reports before it: null)
    guide_durations: bool | None = None  # guidance from neutral moves the timing too (reports before it: no)
    guidance_smoothing: float | None = None  # σ in mel bins of the guidance term (reports before it: 0)
    guidance_interval: float | None = None  # guided steps: noise level <= this (reports before it: 1, every step)
    seed: int | None = None
    vocoder: str | None = None
    n_sentences: int | None = None
    sentences: list[dict[str, Any]] = field(default_factory=list)  # {"text", "speaker"}
    scored_on: str | None = None  # mel | audio (the conditioning SER's input)


@dataclass
class Report(Section):
    config: Config = field(default_factory=Config)
    emotions: list[str] = field(default_factory=list)
    ser_emotions: list[str] = field(default_factory=list)
    judge_ser_emotions: list[str] | None = None
    classification: Classification | None = None  # conditioning SER (not independent)
    judge_classification: Classification | None = None  # second SER
    per_emotion: dict[str, EmotionRow] = field(default_factory=dict)
    per_speaker: dict[str, dict[str, EmotionRow]] = field(default_factory=dict)  # speaker -> emotion -> row
    intelligibility: Intelligibility = field(default_factory=Intelligibility)
    intensity: Intensity = field(default_factory=Intensity)
    blends: Blends = field(default_factory=Blends)
    prosody: dict[str, dict[str, float | None]] = field(default_factory=dict)  # mean per condition label
    guidance: Guidance | None = None
    ground_truth: GroundTruth | None = None
    transcripts: list[Transcript] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)
    bar: list[BarLine] = field(default_factory=list)
