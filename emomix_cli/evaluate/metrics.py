"""Pure metric functions of the evaluation: classification, rank correlation, text, prosody lines.

Nothing here loads a model or reads a file; every function is checked against hand-computed
numbers in tests/test_eval.py and tests/test_judges.py.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Sequence

import numpy as np


# ====================================================================== classification
def confusion_matrix(
    intended: list[int], recognised: list[int], n_rows: int, n_cols: int
) -> np.ndarray:
    """Counts [n_rows, n_cols]: row = intended class index, column = recognised class index."""
    matrix = np.zeros((n_rows, n_cols), dtype=np.int64)
    np.add.at(
        matrix, (np.asarray(intended, dtype=np.int64), np.asarray(recognised, dtype=np.int64)), 1
    )
    return matrix


def per_class_accuracy(
    confusion: np.ndarray, rows: list[str], columns: list[str]
) -> dict[str, float | None]:
    """Recall per intended class (the cell where the column name equals the row name).

    None for a row without samples or whose name the recogniser does not know.
    """
    result: dict[str, float | None] = {}
    for i, name in enumerate(rows):
        total = int(confusion[i].sum())
        result[name] = (
            float(confusion[i, columns.index(name)] / total) if total and name in columns else None
        )
    return result


def unweighted_accuracy(confusion: np.ndarray, rows: list[str], columns: list[str]) -> float | None:
    """UA: the mean of the per-class recalls that are defined."""
    values = [v for v in per_class_accuracy(confusion, rows, columns).values() if v is not None]
    return float(np.mean(values)) if values else None


def weighted_accuracy(confusion: np.ndarray, rows: list[str], columns: list[str]) -> float | None:
    """WA: correct / all samples (rows the recogniser cannot name count as wrong)."""
    total = int(confusion.sum())
    correct = sum(int(confusion[i, columns.index(n)]) for i, n in enumerate(rows) if n in columns)
    return correct / total if total else None


def classification(probs: np.ndarray, intended: list[str], rows: list[str], columns: list[str]) -> dict:
    """Confusion, per-class accuracy, UA and WA of posteriors ``probs`` [N, C] (C = ``columns``)."""
    confusion = confusion_matrix(
        [rows.index(e) for e in intended], list(np.argmax(probs, axis=1)), len(rows), len(columns)
    )
    return {
        "rows": rows,
        "columns": columns,
        "confusion": confusion.tolist(),
        "accuracy": per_class_accuracy(confusion, rows, columns),
        "mean_accuracy": unweighted_accuracy(confusion, rows, columns),
        "wa": weighted_accuracy(confusion, rows, columns),
    }


def top2_rate(probs: np.ndarray, a: int, b: int) -> float:
    """Fraction of rows of ``probs`` [N, C] whose two largest entries are classes ``a`` and ``b``."""
    probs = np.asarray(probs)
    if probs.shape[0] == 0:
        return float("nan")
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    hits = ((top2[:, 0] == a) & (top2[:, 1] == b)) | ((top2[:, 0] == b) & (top2[:, 1] == a))
    return float(hits.mean())


# ====================================================================== curves
def ranks(values) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank: [10, 20, 20, 5] -> [2, 3.5, 3.5, 1]."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    result = np.empty(len(values))
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or ordered[end] != ordered[start]:
            result[order[start:end]] = (start + end + 1) / 2  # mean of ranks start+1 .. end
            start = end
    return result


def spearman(x, y) -> float | None:
    """Spearman rank correlation (Pearson on tie-averaged ranks); None when either side is
    constant or undefined."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = ranks(x) - (len(x) + 1) / 2, ranks(y) - (len(y) + 1) / 2
    return float(rx @ ry / np.sqrt((rx @ rx) * (ry @ ry)))


# a mean posterior may dip by this much between weights and still count as rising: with a few
# sentences, differences of 1e-3 between posteriors that are all ~0 are noise, not a reversal
MONOTONIC_TOLERANCE = 0.01


def is_monotonic(values, tolerance: float = 0.0) -> bool:
    """True when ``values`` never drop by more than ``tolerance`` from one step to the next."""
    return bool(np.all(np.diff(np.asarray(values, dtype=float)) >= -tolerance))


def segment_position(point, start, end, scale=None) -> float | None:
    """Where ``point`` projects on the line ``start`` -> ``end`` (0 at start, 1 at end).

    All three are feature vectors; ``scale`` (one positive number per feature, e.g. standard
    deviations) divides each feature first, so features in different units weigh alike. A
    feature undefined (None/NaN) in any of the three is left out; None when no feature is left
    or the segment has zero length.
    """
    vectors = [np.array([np.nan if x is None else x for x in v], dtype=float) for v in (point, start, end)]
    if scale is not None:
        vectors = [v / np.asarray(scale, dtype=float) for v in vectors]
    defined = np.all([np.isfinite(v) for v in vectors], axis=0)
    p, s, e = (v[defined] for v in vectors)
    direction = e - s
    length2 = float(direction @ direction)
    if not defined.any() or length2 == 0.0:
        return None
    return float((p - s) @ direction / length2)


def scaled_distance(point, reference, scale=None) -> float | None:
    """Euclidean distance between two feature vectors, each feature divided by ``scale`` first.

    Features undefined (None/NaN) in either vector are left out; None when none is left.
    """
    vectors = [np.array([np.nan if x is None else x for x in v], dtype=float) for v in (point, reference)]
    if scale is not None:
        vectors = [v / np.asarray(scale, dtype=float) for v in vectors]
    defined = np.isfinite(vectors[0]) & np.isfinite(vectors[1])
    if not defined.any():
        return None
    return float(np.linalg.norm(vectors[0][defined] - vectors[1][defined]))


def strictly_between(position: float | None, margin: float = 0.05) -> bool:
    """True when a segment position lies in (margin, 1 - margin)."""
    return position is not None and margin < position < 1.0 - margin


def feature_scale(vectors: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Per-feature standard deviation over ``vectors`` (undefined entries skipped; 1 if flat)."""
    array = np.array([[np.nan if v is None else v for v in row] for row in vectors], dtype=float)
    with warnings.catch_warnings():  # all-NaN / single-value columns: handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(array, axis=0) if array.size else np.ones(0)
    return np.where(np.isfinite(std) & (std > 0), std, 1.0)


# ====================================================================== text
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def number_to_words(n: int) -> str:
    """English words for a non-negative integer: 1205 -> 'one thousand two hundred five'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in _SCALES:
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_to_words(head)} {name}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def _spell_number(match: re.Match) -> str:
    whole, _, fraction = match.group(0).replace(",", "").partition(".")
    words = number_to_words(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def normalise_text(text: str) -> str:
    """Lowercase words for WER/CER: numbers spelled out, punctuation (apostrophes too) removed.

    'The museum opened at 10, on Sunday!' -> 'the museum opened at ten on sunday'.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NUMBER.sub(_spell_number, text)
    text = "".join(
        ch if ch.isalnum() or ch.isspace() else ("" if ch in "'’" else " ") for ch in text
    )
    return " ".join(text.split())


def count_phones(phonemes: str) -> int:
    """Phone letters in an IPA string (stress, length marks, spaces and punctuation excluded)."""
    return sum(unicodedata.category(ch) in ("Ll", "Lu", "Lo") for ch in phonemes)


# ====================================================================== prosody from pitch tracks
def voiced_fraction(voiced: np.ndarray, rms: np.ndarray, active_ratio: float = 0.1) -> float | None:
    """Share of voiced frames among the active ones (RMS above ``active_ratio`` x the peak RMS)."""
    voiced, rms = np.asarray(voiced, dtype=bool), np.asarray(rms, dtype=float)
    n = min(len(voiced), len(rms))
    voiced, rms = voiced[:n], rms[:n]
    if n == 0 or not np.any(rms > 0):
        return None
    active = rms > active_ratio * rms.max()
    return float(voiced[active].mean())


def semitone_range(f0_hz: np.ndarray, low: float = 5.0, high: float = 95.0) -> float | None:
    """The ``low``-``high`` percentile span of F0 in semitones (12 log2 of the ratio)."""
    f0 = np.asarray(f0_hz, dtype=float)
    f0 = f0[np.isfinite(f0) & (f0 > 0)]
    if f0.size < 2:
        return None
    lo, hi = np.percentile(f0, [low, high])
    return float(12.0 * np.log2(hi / lo))


def rms_db(rms: np.ndarray, active_ratio: float = 0.1) -> float | None:
    """Loudness: the mean RMS (dBFS) of the active frames."""
    rms = np.asarray(rms, dtype=float)
    if rms.size == 0 or not np.any(rms > 0):
        return None
    active = rms > active_ratio * rms.max()
    return float(20 * np.log10(np.sqrt(np.mean(rms[active] ** 2))))


PROSODY_KEYS = ("voiced_fraction", "f0_median", "f0_range_st", "loudness_db", "rate")


def prosody_from_track(f0, voiced, rms, duration_s: float, n_phones: int,
                       active_ratio: float = 0.1) -> dict[str, float | None]:
    """Voicing and prosody from a pitch track (f0 Hz with NaN where unvoiced, voiced flags, RMS
    per frame): voiced fraction of the active frames, F0 median (Hz) and 5-95 % range
    (semitones) of the voiced active frames, loudness (dB) of the active frames, and
    ``n_phones / duration_s`` (the speech's duration, silences at the ends excluded)."""
    f0, voiced, rms = np.asarray(f0, dtype=float), np.asarray(voiced, dtype=bool), np.asarray(rms, dtype=float)
    n = min(len(f0), len(voiced), len(rms))
    f0, voiced, rms = f0[:n], voiced[:n], rms[:n]
    if n == 0 or not np.any(rms > 0):
        return dict.fromkeys(PROSODY_KEYS)
    active = rms > active_ratio * rms.max()
    pitch = f0[active & voiced & np.isfinite(f0)]
    return {
        "voiced_fraction": voiced_fraction(voiced, rms, active_ratio),
        "f0_median": float(np.median(pitch)) if pitch.size else None,
        "f0_range_st": semitone_range(pitch),
        "loudness_db": rms_db(rms, active_ratio),
        "rate": float(n_phones / duration_s) if duration_s > 0 and n_phones else None,
    }


def mean_defined(values) -> float | None:
    """The mean of the entries that are not None/NaN; None if there are none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(kept)) if kept else None


# ====================================================================== batching
def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted by length)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
