"""The demo model's quality bar, checked from the independent judges of a report, and the
headline numbers that choose between models and settings on validation (``headline``).

Each line is ``{"check", "value", "threshold", "passed"}``; ``passed`` is None when the judge
it needs did not run (a missing extra, no ground truth, Griffin-Lim audio for voicing).
"""

from __future__ import annotations

from .metrics import mean_defined

VOICED_RATIO = 0.8  # voiced fraction per emotion >= 0.8 x ground truth's
WER_MARGIN = 0.05  # Whisper WER <= ground truth + 0.05
SER_MEAN, SER_EACH = 0.8, 0.6  # second-SER accuracy: mean and every emotion
RHO_MIN = 0.9  # intensity Spearman rho per emotion
BETWEEN_MIN = 0.8  # blends strictly between their parents in >= 80 % of pair x sentence
GUIDED_WER_MARGIN = 0.1  # at w = 2, 3: Whisper WER <= ground truth + 0.1


def _line(check: str, value, threshold, passed: bool | None, note: str = "", extra: bool = False) -> dict:
    """One bar line; ``extra`` marks a line emomix adds beside the bar's own (not counted in it)."""
    return {"check": check, "value": value, "threshold": threshold, "passed": passed, "note": note, "extra": extra}


def _at_least(value, threshold) -> bool | None:
    return None if value is None or threshold is None else bool(value >= threshold)


def quality_bar(report: dict) -> list[dict]:
    """Pass/fail lines with their numbers (see the module docstring)."""
    lines: list[dict] = []
    table = report.get("per_emotion") or {}
    griffin = report["config"].get("vocoder") == "griffinlim"
    for emotion, row in table.items():
        gt = (row.get("gt") or {}).get("voiced_fraction")
        synth = row["synth"].get("voiced_fraction")
        threshold = None if gt is None else VOICED_RATIO * gt
        passed = None if griffin else _at_least(synth, threshold)
        lines.append(_line(f"voiced fraction {emotion} ≥ {VOICED_RATIO:g}×GT", synth, threshold, passed,
                           "Griffin-Lim audio: voicing not judged" if griffin else ""))
        # the acoustic model's own share: the real mels through the same vocoder are the ceiling
        # the vocoder leaves (UNIVERSAL_V1 on espeak voices: 0.69 voiced against 0.88 real)
        copy = (row.get("gt_vocoded") or {}).get("voiced_fraction")
        if copy is not None and not griffin:
            lines.append(_line(f"voiced fraction {emotion} ≥ {VOICED_RATIO:g}×GT vocoded", synth, VOICED_RATIO * copy,
                               _at_least(synth, VOICED_RATIO * copy), "extra: the vocoder's ceiling removed",
                               extra=True))

    asr = report.get("intelligibility") or {}
    gt_wer = (asr.get("gt") or {}).get("wer")
    wer = (asr.get("synth") or {}).get("wer")
    threshold = None if gt_wer is None else gt_wer + WER_MARGIN
    lines.append(_line(f"Whisper WER ≤ GT + {WER_MARGIN:g}", wer, threshold,
                       None if wer is None or threshold is None else bool(wer <= threshold)))

    judged = report.get("judge_classification")
    accuracy = (judged or {}).get("accuracy") or {}
    defined = {e: v for e, v in accuracy.items() if v is not None}
    mean = (judged or {}).get("mean_accuracy")
    lines.append(_line(f"second-SER accuracy mean ≥ {SER_MEAN:g}", mean, SER_MEAN, _at_least(mean, SER_MEAN)))
    worst = min(defined, key=defined.get) if defined else None
    lines.append(_line(f"second-SER accuracy every emotion ≥ {SER_EACH:g}",
                       defined.get(worst), SER_EACH, _at_least(defined.get(worst), SER_EACH),
                       f"lowest: {worst}" if worst else ""))  # fmt: skip

    intensity = report.get("intensity") or {}
    for source, key in (("second-SER posterior", "judge_spearman"), ("prosody line", "prosody_spearman")):
        for emotion, rho in (intensity.get(key) or {}).items():
            lines.append(_line(f"intensity ρ {emotion} ({source}) ≥ {RHO_MIN:g}", rho, RHO_MIN,
                               _at_least(rho, RHO_MIN)))

    blends = report.get("blends") or {}
    if blends.get("pairs"):
        rate = blends.get("between_rate")
        lines.append(_line(f"blend prosody strictly between parents ≥ {BETWEEN_MIN:.0%}", rate,
                           BETWEEN_MIN, _at_least(rate, BETWEEN_MIN),
                           f"{len(blends['pairs'])} pairs × sentences"))
        flags = [p["parents_above_neutral"] for p in blends["pairs"]]
        if None in flags:
            lines.append(_line("blend parents' second-SER posterior > Neutral's", None, 1.0, None))
        else:
            share = sum(flags) / len(flags)
            lines.append(_line("blend parents' second-SER posterior > Neutral's", share, 1.0,
                               bool(all(flags)), f"{sum(flags)}/{len(flags)} pairs"))
    lines += _guidance_lines(report.get("guidance"), gt_wer)
    return lines


def _guidance_lines(sweep: dict | None, gt_wer) -> list[dict]:
    """Guidance w > 1 moves the prosody further from Neutral than w = 1, with WER <= GT + 0.1."""
    rows = {row["w"]: row for row in (sweep or {}).get("rows", [])}
    base = rows.get(1.0)
    if base is None:
        return []
    lines = []
    threshold = None if gt_wer is None else gt_wer + GUIDED_WER_MARGIN
    for w, row in sorted(rows.items()):
        if w <= 1.0:
            continue
        further = None if None in (row["mean_distance"], base["mean_distance"]) else row["mean_distance"] > base["mean_distance"]
        lines.append(_line(f"guidance w={w:g}: prosody further from Neutral than at w=1", row["mean_distance"],
                           base["mean_distance"], further, "mean scaled distance"))
        lines.append(_line(f"guidance w={w:g}: Whisper WER ≤ GT + {GUIDED_WER_MARGIN:g}", row["wer"], threshold,
                           None if row["wer"] is None or threshold is None else bool(row["wer"] <= threshold)))
    return lines


def objective(ua: float | None, voiced: float | None, wer: float | None) -> float | None:
    """``second-SER UA + mean voiced fraction − WER`` (docs/DESIGN.md §9); None if one is missing."""
    return None if None in (ua, voiced, wer) else ua + voiced - wer


def headline(report: dict) -> dict:
    """The numbers one row of a tuning table or learning curve shows, from a report.

    ``objective = second-SER UA + mean voiced fraction − WER`` (docs/DESIGN.md §9): higher is
    better, so intelligibility and voicing count as much as emotion. None where a judge is missing.
    """
    wer = ((report.get("intelligibility") or {}).get("synth") or {}).get("wer")
    voiced = mean_defined(row["synth"].get("voiced_fraction") for row in report["per_emotion"].values())
    ua = (report.get("judge_classification") or {}).get("mean_accuracy")
    intensity = report.get("intensity") or {}
    lines = [line for line in report.get("bar") or [] if not line.get("extra")]  # the bar's own lines only
    return {
        "wer": wer, "voiced": voiced, "ua": ua,
        "rho_ser": mean_defined((intensity.get("judge_spearman") or {}).values()),
        "rho_prosody": mean_defined((intensity.get("prosody_spearman") or {}).values()),
        "between": (report.get("blends") or {}).get("between_rate"),
        "passed": sum(line["passed"] is True for line in lines),
        "judged": sum(line["passed"] is not None for line in lines),
        "objective": objective(ua, voiced, wer),
    }  # fmt: skip
