"""From judged utterances to the report's sections: per emotion, intensity, blends, the bar.

A *record* is one judged utterance: ``{"label", "i" (sentence index), "emotion" (ground truth
only), "cond" (conditioning-SER posteriors), "judge" (second-SER posteriors or None),
"prosody" (dict, see ``judges.prosody``), "ref"/"hyp" (ASR reference and transcript or None),
"mos" (DNSMOS dict or None)}``. Everything here is pure: records in, plain dicts out.
"""

from __future__ import annotations

import itertools

import numpy as np

from .judges import LINE_KEYS, wer_cer
from .metrics import (
    MONOTONIC_TOLERANCE,
    PROSODY_KEYS,
    classification,
    feature_scale,
    is_monotonic,
    mean_defined,
    scaled_distance,
    segment_position,
    spearman,
    strictly_between,
    top2_rate,
)

NEUTRAL = "neutral"
INTENSITY_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
BLEND = (0.6, 0.4)
BETWEEN_MARGIN = 0.05
GUIDANCE_LEVELS = (1.0, 2.0, 3.0)
# From this many sentences on (eval's default), every sentence speaks every blend pair and the
# guidance sweep goes to w = 3. A smaller eval is a quick check: its sentences share out the
# pairs (pair k to sentence k mod 4) and its sweep stops at w = 2, so that one sentence costs
# about 25 utterances instead of 39 (docs/performance.md, "Evaluation").
FULL_GRID_SENTENCES = 4


def intensity_label(emotion: str, weight: float) -> str:
    return f"{emotion}@{weight:g}"


def conditions(emotions: list[str], sentence: int = 0,
               n_sentences: int = FULL_GRID_SENTENCES) -> list[tuple[str, dict[str, float]]]:
    """(label, weights) for every mix sentence ``sentence`` of ``n_sentences`` speaks: each
    emotion, the inner intensity steps (the ends reuse the weight-1 rows) and its blend pairs
    (:func:`spoken_pairs`)."""
    others = [e for e in emotions if e != NEUTRAL]
    result = [(e, {e: 1.0}) for e in emotions]
    if NEUTRAL in emotions:
        for emotion in others:
            for w in INTENSITY_WEIGHTS[1:-1]:
                result.append((intensity_label(emotion, w), {emotion: w, NEUTRAL: round(1.0 - w, 6)}))
    for a, b in spoken_pairs(others, sentence, n_sentences):
        result.append((f"{a}+{b}", {a: BLEND[0], b: BLEND[1]}))
    return result


def spoken_pairs(others: list[str], sentence: int, n_sentences: int) -> list[tuple[str, str]]:
    """The ordered blend pairs sentence ``sentence`` speaks: all of them from
    :data:`FULL_GRID_SENTENCES` sentences on, else pair k when k mod 4 is the sentence."""
    pairs = list(itertools.permutations(others, 2))
    if n_sentences >= FULL_GRID_SENTENCES:
        return pairs
    return [pair for k, pair in enumerate(pairs) if k % FULL_GRID_SENTENCES == sentence]


def guidance_levels(n_sentences: int) -> tuple[float, ...]:
    """The default guidance sweep: w = 1, 2, 3 from :data:`FULL_GRID_SENTENCES` sentences on,
    else w = 1, 2."""
    return GUIDANCE_LEVELS if n_sentences >= FULL_GRID_SENTENCES else GUIDANCE_LEVELS[:2]


def line_vector(record: dict) -> list[float | None]:
    return [record["prosody"].get(key) for key in LINE_KEYS]


def _mean(values) -> float | None:
    return mean_defined(values)


def _posterior(records: list[dict], field: str, columns: list[str], emotion: str) -> float | None:
    if emotion not in columns or any(r[field] is None for r in records) or not records:
        return None
    return float(np.mean([r[field][columns.index(emotion)] for r in records]))


def _curve_rho(curve: list[float | None]) -> float | None:
    return None if any(v is None for v in curve) else spearman(INTENSITY_WEIGHTS, curve)


# ====================================================================== sections
def classify(records: list[dict], field: str, emotions: list[str], columns: list[str] | None,
             key: str = "label") -> dict | None:
    """Classification of the records whose ``key`` is an emotion, by the SER in ``field``."""
    chosen = [r for r in records if r.get(key) in emotions]
    if columns is None or not chosen or any(r[field] is None for r in chosen):
        return None
    return classification(np.stack([r[field] for r in chosen]), [r[key] for r in chosen], emotions, columns)


def per_emotion(synth: list[dict], truth: list[dict], emotions: list[str],
                copies: list[dict] | None = None) -> dict:
    """Voicing, prosody, WER/CER and DNSMOS per emotion: synthesized, ground truth (real audio)
    and, when given, the copy synthesis (the real mels through the same vocoder)."""

    def summary(rows: list[dict]) -> dict:
        out = {key: _mean(r["prosody"].get(key) for r in rows) for key in PROSODY_KEYS}
        asr = [r for r in rows if r.get("hyp") is not None]
        out.update(wer_cer([r["ref"] for r in asr], [r["hyp"] for r in asr]) if asr
                   else {"wer": None, "cer": None})  # fmt: skip
        out["p808"] = _mean((r.get("mos") or {}).get("p808") for r in rows)
        out["n"] = len(rows)
        return out

    return {
        e: {"synth": summary([r for r in synth if r["label"] == e]),
            "gt": summary([r for r in truth if r["emotion"] == e]) if truth else None,
            "gt_vocoded": summary([r for r in copies if r["emotion"] == e]) if copies else None}
        for e in emotions
    }  # fmt: skip


def per_speaker(synth: list[dict], truth: list[dict], emotions: list[str],
                copies: list[dict] | None = None) -> dict:
    """:func:`per_emotion` for each speaker's sentences (records carry ``speaker``; a model
    without speakers is ``default``)."""
    speakers = sorted({r.get("speaker") or "default" for r in synth})

    def mine(rows, speaker):
        return [r for r in rows if (r.get("speaker") or "default") == speaker]

    return {s: per_emotion(mine(synth, s), mine(truth, s), emotions, mine(copies, s) if copies else None)
            for s in speakers}  # fmt: skip


def pooled_asr(records: list[dict]) -> dict:
    asr = [r for r in records if r.get("hyp") is not None]
    return wer_cer([r["ref"] for r in asr], [r["hyp"] for r in asr]) if asr else {"wer": None, "cer": None, "n": 0}


def intensity(records: dict, n: int, emotions, cond_columns, judge_columns, scale) -> dict:
    """Per emotion, weights 0..1 vs Neutral: mean SER posteriors and the prosody-line position.

    ``records`` maps (label, sentence) -> record. The prosody position of a mix is its
    projection on the segment Neutral synthesis (0) -> full-emotion synthesis (1) of the same
    sentence, features scaled by ``scale``; the curve is its mean over sentences.
    """
    out = {"weights": list(INTENSITY_WEIGHTS), "monotonic_tolerance": MONOTONIC_TOLERANCE,
           "curves": {}, "spearman": {}, "monotonic": {}, "judge_curves": {}, "judge_spearman": {},
           "prosody_curves": {}, "prosody_spearman": {}}  # fmt: skip
    if NEUTRAL not in emotions:
        return out
    for emotion in (e for e in emotions if e != NEUTRAL):
        labels = [NEUTRAL] + [intensity_label(emotion, w) for w in INTENSITY_WEIGHTS[1:-1]] + [emotion]
        rows = [[records[label, i] for i in range(n)] for label in labels]
        curve = [_posterior(r, "cond", cond_columns, emotion) for r in rows]
        if None not in curve:
            out["curves"][emotion] = curve
            out["spearman"][emotion] = _curve_rho(curve)
            out["monotonic"][emotion] = is_monotonic(curve, MONOTONIC_TOLERANCE)
        if judge_columns is not None:
            judged = [_posterior(r, "judge", judge_columns, emotion) for r in rows]
            out["judge_curves"][emotion] = judged
            out["judge_spearman"][emotion] = _curve_rho(judged)
        positions = [
            _mean(segment_position(line_vector(records[label, i]), line_vector(records[NEUTRAL, i]),
                                   line_vector(records[emotion, i]), scale) for i in range(n))
            for label in labels
        ]  # fmt: skip
        out["prosody_curves"][emotion] = positions
        out["prosody_spearman"][emotion] = _curve_rho(positions)
    return out


def blends(records: dict, n: int, emotions, cond_columns, judge_columns, scale) -> dict:
    """0.6/0.4 blends of every ordered pair spoken (:func:`spoken_pairs`): top-2 (conditioning
    SER), the second SER's posteriors of both parents vs plain Neutral on the same sentences, and
    the prosody position between the parents (0 = the minor parent's synthesis, 1 = the major's;
    strictly between = in (0.05, 0.95))."""
    others = [e for e in emotions if e != NEUTRAL]
    pairs, between_all = [], []
    matrix = np.full((len(others), len(others)), np.nan)
    for a, b in itertools.permutations(others, 2):
        spoken = [i for i in range(n) if (f"{a}+{b}", i) in records]
        if not spoken:
            continue
        rows = [records[f"{a}+{b}", i] for i in spoken]
        neutral = [records[NEUTRAL, i] for i in spoken] if NEUTRAL in emotions else []
        probs = np.stack([r["cond"] for r in rows])
        known = a in cond_columns and b in cond_columns
        rate = top2_rate(probs, cond_columns.index(a), cond_columns.index(b)) if known else None
        positions = [segment_position(line_vector(records[f"{a}+{b}", i]), line_vector(records[b, i]),
                                      line_vector(records[a, i]), scale) for i in spoken]  # fmt: skip
        between = [strictly_between(p, BETWEEN_MARGIN) for p in positions]
        between_all += between
        pair = {
            "major": a, "minor": b, "weights": list(BLEND), "top2_rate": rate,
            "mean_posteriors": dict(zip(cond_columns, map(float, probs.mean(axis=0)), strict=True)),
            "positions": positions, "between_rate": float(np.mean(between)),
            "judge_posteriors": None, "neutral_posteriors": None, "parents_above_neutral": None,
        }  # fmt: skip
        if judge_columns is not None and neutral:
            pair["judge_posteriors"] = {e: _posterior(rows, "judge", judge_columns, e) for e in (a, b)}
            pair["neutral_posteriors"] = {e: _posterior(neutral, "judge", judge_columns, e) for e in (a, b)}
            pair["parents_above_neutral"] = all(
                None not in (pair["judge_posteriors"][e], pair["neutral_posteriors"][e])
                and pair["judge_posteriors"][e] > pair["neutral_posteriors"][e] for e in (a, b)
            )  # fmt: skip
        pairs.append(pair)
        matrix[others.index(a), others.index(b)] = np.nan if rate is None else rate
    valid = [p["top2_rate"] for p in pairs if p["top2_rate"] is not None]
    return {
        "emotions": others, "pairs": pairs, "top2_matrix": matrix.tolist(),
        "mean_top2_rate": float(np.mean(valid)) if valid else None,
        "between_rate": float(np.mean(between_all)) if between_all else None,
        "between_margin": BETWEEN_MARGIN,
    }  # fmt: skip


def guidance(main: dict, sweep: dict, levels, main_w: float, n: int, emotions, scale,
             judge_columns: list[str] | None = None) -> dict:
    """Per guidance level w: how far each emotion's prosody lies from Neutral, and WER/voicing.

    ``main`` maps (label, sentence) -> record of the main run (guidance ``main_w``); ``sweep``
    maps (w, label, sentence) -> record for the other levels. The reference is the main run's
    Neutral synthesis of the same sentence; the distance is Euclidean over the prosody line's
    features scaled by ``scale`` (``metrics.scaled_distance``), averaged over sentences. WER,
    voiced fraction and the second SER's UA (when ``judge_columns``) pool every emotion
    synthesized at that level.
    """
    others = [e for e in emotions if e != NEUTRAL]
    rows = []
    for w in levels:
        at = {(e, i): main[e, i] if w == main_w else sweep[w, e, i] for e in emotions for i in range(n)}
        at_w = list(at.values())
        distance = {
            e: _mean(scaled_distance(line_vector(at[e, i]), line_vector(main[NEUTRAL, i]), scale)
                     for i in range(n)) if NEUTRAL in emotions else None
            for e in others
        }  # fmt: skip
        asr = pooled_asr(at_w)
        judged = classify(at_w, "judge", emotions, judge_columns)
        rows.append({"w": float(w), "distance": distance, "mean_distance": _mean(distance.values()),
                     "wer": asr["wer"], "cer": asr["cer"],
                     "judge_accuracy": None if judged is None else judged["mean_accuracy"],
                     "voiced_fraction": _mean(r["prosody"].get("voiced_fraction") for r in at_w)})  # fmt: skip
    return {"reference_w": float(main_w), "rows": rows}


def prosody_by_label(records: list[dict], labels: list[str]) -> dict:
    """Mean prosody per condition label (means over sentences)."""
    table = {}
    for label in labels:
        rows = [r for r in records if r["label"] == label]
        table[label] = {key: _mean(r["prosody"].get(key) for r in rows) for key in PROSODY_KEYS}
        table[label]["n"] = len(rows)
    return table


def prosody_scale(records: list[dict]):
    """The per-feature standard deviation of the prosody line's features over ``records``."""
    return feature_scale([line_vector(r) for r in records])
