"""The demo model's quality bar, checked from the independent judges of a report, and the
headline numbers that choose between models and settings on validation (``headline``).

Each line is a :class:`~.schema.BarLine`; ``passed`` is None when the judge
it needs did not run (a missing extra, no ground truth, Griffin-Lim audio for voicing).
"""

from __future__ import annotations

from ..errors import EmomixError
from .metrics import mean_defined
from .schema import BarLine, Guidance, Report

VOICED_RATIO = 0.8  # voiced fraction per emotion >= 0.8 x ground truth's
WER_MARGIN = 0.05  # Whisper WER <= ground truth + 0.05
SER_MEAN, SER_EACH = 0.8, 0.6  # second-SER accuracy: mean and every emotion
RHO_MIN = 0.9  # intensity Spearman rho per emotion
BETWEEN_MIN = 0.8  # blends strictly between their parents in >= 80 % of pair x sentence
# ... and >= 60 % with --encoder-condition base, where only the decoder's noise-space mix blends
# (the encoder speaks the major parent), which is the method's own claim
BETWEEN_MIN_BASE = 0.6
GUIDED_WER_MARGIN = 0.1  # at w = 2, 3: Whisper WER <= ground truth + 0.1


def _line(check: str, value, threshold, passed: bool | None, note: str = "", extra: bool = False) -> BarLine:
    """One bar line; ``extra`` marks a line emomix adds beside the bar's own (not counted in it)."""
    return BarLine(check, value, threshold, passed, note, extra)


def _at_least(value, threshold) -> bool | None:
    return None if value is None or threshold is None else bool(value >= threshold)


def _at_most(value, threshold) -> bool | None:
    return None if value is None or threshold is None else bool(value <= threshold)


def quality_bar(report: Report) -> list[BarLine]:
    """Pass/fail lines with their numbers (see the module docstring)."""
    gt_wer = report.intelligibility.gt.wer if report.intelligibility.gt else None
    return [*_voicing_lines(report), *_speaker_voicing_lines(report), *_wer_lines(report, gt_wer),
            *_emotion_lines(report), *_intensity_lines(report), *_blend_lines(report),
            *_guidance_lines(report.guidance, gt_wer)]


def _voicing_lines(report: Report) -> list[BarLine]:
    lines = []
    griffin = report.config.vocoder == "griffinlim"
    for emotion, row in report.per_emotion.items():
        gt = row.gt.voiced_fraction if row.gt else None
        synth = row.synth.voiced_fraction
        threshold = None if gt is None else VOICED_RATIO * gt
        passed = None if griffin else _at_least(synth, threshold)
        lines.append(_line(f"voiced fraction {emotion} ≥ {VOICED_RATIO:g}×GT", synth, threshold, passed,
                           "Griffin-Lim audio: voicing not judged" if griffin else ""))
        # the acoustic model's own share: the real mels through the same vocoder are the ceiling
        # the vocoder leaves (UNIVERSAL_V1 on espeak voices: 0.69 voiced against 0.88 real)
        copy = row.gt_vocoded.voiced_fraction if row.gt_vocoded else None
        if copy is not None and not griffin:
            lines.append(_line(f"voiced fraction {emotion} ≥ {VOICED_RATIO:g}×GT vocoded", synth, VOICED_RATIO * copy,
                               _at_least(synth, VOICED_RATIO * copy), "extra: the vocoder's ceiling removed",
                               extra=True))
    return lines


def speaker_voicing_ratios(report: Report) -> dict[str, dict[str, float]]:
    """speaker -> emotion -> synthesized voiced fraction / that of the real mel through the same
    vocoder (only pairs where both were judged)."""
    return {speaker: {e: row.synth.voiced_fraction / row.gt_vocoded.voiced_fraction
                      for e, row in rows.items()
                      if row.gt_vocoded and row.gt_vocoded.voiced_fraction and row.synth.voiced_fraction is not None}
            for speaker, rows in report.per_speaker.items()}  # fmt: skip


def _speaker_voicing_lines(report: Report) -> list[BarLine]:
    """One line per speaker: its lowest :func:`speaker_voicing_ratios` over the emotions ≥ 0.8,
    i.e. every speaker × emotion keeps 0.8 of what the vocoder leaves the real mel."""
    if report.config.vocoder == "griffinlim":
        return []
    lines = []
    for speaker, ratios in speaker_voicing_ratios(report).items():
        if not ratios:
            continue
        worst = min(ratios, key=ratios.get)
        lines.append(_line(f"voiced fraction {speaker}, every emotion ≥ {VOICED_RATIO:g}×GT vocoded",
                           ratios[worst], VOICED_RATIO, ratios[worst] >= VOICED_RATIO,
                           f"lowest: {worst} ({len(ratios)} of {len(report.per_speaker[speaker])} emotions judged)"))  # fmt: skip
    return lines


def _wer_lines(report: Report, gt_wer) -> list[BarLine]:
    wer = report.intelligibility.synth.wer
    threshold = None if gt_wer is None else gt_wer + WER_MARGIN
    return [_line(f"Whisper WER ≤ GT + {WER_MARGIN:g}", wer, threshold, _at_most(wer, threshold))]


def _emotion_lines(report: Report) -> list[BarLine]:
    judged = report.judge_classification
    accuracy = judged.accuracy if judged else {}
    defined = {e: v for e, v in accuracy.items() if v is not None}
    mean = judged.mean_accuracy if judged else None
    worst = min(defined, key=defined.get) if defined else None
    return [
        _line(f"second-SER accuracy mean ≥ {SER_MEAN:g}", mean, SER_MEAN, _at_least(mean, SER_MEAN)),
        _line(f"second-SER accuracy every emotion ≥ {SER_EACH:g}", defined.get(worst), SER_EACH,
              _at_least(defined.get(worst), SER_EACH), f"lowest: {worst}" if worst else ""),
    ]  # fmt: skip


def _intensity_lines(report: Report) -> list[BarLine]:
    intensity = report.intensity
    return [
        _line(f"intensity ρ {emotion} ({source}) ≥ {RHO_MIN:g}", rho, RHO_MIN, _at_least(rho, RHO_MIN))
        for source, rhos in (("second-SER posterior", intensity.judge_spearman),
                             ("prosody line", intensity.prosody_spearman))
        for emotion, rho in rhos.items()
    ]  # fmt: skip


def _blend_lines(report: Report) -> list[BarLine]:
    blends = report.blends
    if not blends.pairs:
        return []
    rate = blends.between_rate
    base = report.config.encoder_condition == "base"
    least = BETWEEN_MIN_BASE if base else BETWEEN_MIN
    lines = [_line(f"blend prosody strictly between parents ≥ {least:.0%}{' (encoder: base)' if base else ''}",
                   rate, least, _at_least(rate, least), f"{sum(len(p.positions) for p in blends.pairs)} blends of {len(blends.pairs)} pairs")]
    flags = [p.parents_above_neutral for p in blends.pairs]
    if None in flags:
        lines.append(_line("blend parents' second-SER posterior > Neutral's", None, 1.0, None))
    else:
        share = sum(flags) / len(flags)
        lines.append(_line("blend parents' second-SER posterior > Neutral's", share, 1.0,
                           bool(all(flags)), f"{sum(flags)}/{len(flags)} pairs"))
    return lines


def _guidance_lines(sweep: Guidance | None, gt_wer) -> list[BarLine]:
    """Guidance w > 1 moves every emotion's prosody further from Neutral than w = 1 (the line
    shows the mean distance and names the emotions that did not move further), with WER <= GT +
    0.1."""
    rows = {row.w: row for row in (sweep.rows if sweep else [])}
    base = rows.get(1.0)
    if base is None:
        return []
    lines = []
    threshold = None if gt_wer is None else gt_wer + GUIDED_WER_MARGIN
    for w, row in sorted(rows.items()):
        if w <= 1.0:
            continue
        pairs = {e: (d, base.distance.get(e)) for e, d in row.distance.items()}
        judged = {e: d > d1 for e, (d, d1) in pairs.items() if None not in (d, d1)}
        behind = [e for e, ahead in judged.items() if not ahead]
        further = None if not judged else not behind
        note = "mean scaled distance; every emotion" + (f"; not further: {', '.join(behind)}" if behind else "")
        lines.append(_line(f"guidance w={w:g}: every emotion's prosody further from Neutral than at w=1",
                           row.mean_distance, base.mean_distance, further, note))
        lines.append(_line(f"guidance w={w:g}: Whisper WER ≤ GT + {GUIDED_WER_MARGIN:g}", row.wer, threshold,
                           _at_most(row.wer, threshold)))
    return lines


def failed_lines(report: Report) -> list[BarLine]:
    """The bar's own lines that failed (extra lines are not the bar's; a line whose judge did not
    run, ``passed`` None, does not fail)."""
    return [line for line in report.bar if line.passed is False and not line.extra]


def check_bar(report: Report) -> None:
    """``emomix eval --check``: EmomixError (exit status 1) naming the failed lines, if any."""
    from .report import model_label

    failed = failed_lines(report)
    if failed:
        judged = sum(line.passed is not None and not line.extra for line in report.bar)
        names = "; ".join(line.check for line in failed)
        raise EmomixError(f"quality bar of {model_label(report.config.model)}: {len(failed)} of {judged} "
                          f"judged lines fail: {names}", code=1)


def objective(ua: float | None, voiced: float | None, wer: float | None) -> float | None:
    """``second-SER UA + mean voiced fraction − WER`` (docs/DESIGN.md §9); None if one is missing."""
    return None if None in (ua, voiced, wer) else ua + voiced - wer


def headline(report: Report) -> dict:
    """The numbers one row of a tuning table or learning curve shows, from a report.

    ``objective = second-SER UA + mean voiced fraction − WER`` (docs/DESIGN.md §9): higher is
    better, so intelligibility and voicing count as much as emotion. None where a judge is missing.
    """
    wer = report.intelligibility.synth.wer
    voiced = mean_defined(row.synth.voiced_fraction for row in report.per_emotion.values())
    ua = report.judge_classification.mean_accuracy if report.judge_classification else None
    lines = [line for line in report.bar if not line.extra]  # the bar's own lines only
    return {
        "wer": wer, "voiced": voiced, "ua": ua,
        "rho_ser": mean_defined(report.intensity.judge_spearman.values()),
        "rho_prosody": mean_defined(report.intensity.prosody_spearman.values()),
        "between": report.blends.between_rate,
        "passed": sum(line.passed is True for line in lines),
        "judged": sum(line.passed is not None for line in lines),
        "objective": objective(ua, voiced, wer),
    }  # fmt: skip


# The bar a model passes before it becomes the default (issue 27; docs/DESIGN.md §8): against the
# real renders of the same sentences, then absolute limits on every speaker and emotion.
DEFAULT_WER_MARGIN = 0.10  # Whisper WER <= ground truth + 0.10
DEFAULT_DNSMOS_MARGIN = 0.3  # DNSMOS P.808 >= ground truth - 0.3
DEFAULT_WER_MAX, DEFAULT_SPEAKER_WER_MAX = 0.15, 0.25  # overall, and every speaker
DEFAULT_DNSMOS_MIN = 3.6
DEFAULT_CELL_VOICED_MIN = 0.35  # every speaker x emotion
GUIDED_EMOTIONS = ("angry", "sad")  # guidance must strengthen these at every w > 1


def speaker_wer(report: Report) -> dict[str, float | None]:
    """Whisper WER pooled per speaker over the single emotions' transcripts (``i`` names the
    sentence and so its speaker; ground truth's have ``i`` None)."""
    from .judges import wer_cer

    speakers = [s.get("speaker") for s in report.config.sentences]
    pooled: dict[str, tuple[list[str], list[str]]] = {}
    for t in report.transcripts:
        if t.i is None or t.hyp is None or t.label not in report.emotions or t.i >= len(speakers):
            continue
        refs, hyps = pooled.setdefault(speakers[t.i], ([], []))
        refs.append(t.ref or "")
        hyps.append(t.hyp)
    return {speaker: wer_cer(refs, hyps)["wer"] for speaker, (refs, hyps) in sorted(pooled.items())}


def _mean_p808(rows) -> float | None:
    return mean_defined(row.p808 for row in rows if row is not None)


def default_model_bar(report: Report) -> list[BarLine]:
    """Issue 27's bar for the default model, from a test report with ground truth, the judges and
    the guidance sweep: WER <= GT + 0.10 and <= 0.15 (every speaker <= 0.25); second-SER UA >= 0.8
    and every recall >= 0.6; voiced >= 0.8 x vocoded GT per emotion and >= 0.35 in every speaker x
    emotion cell; every intensity rho >= 0.9; DNSMOS >= GT - 0.3 and >= 3.6; >= 80 % of blends
    between their parents; sad slower and lower than angry on every speaker; guidance w > 1 moves
    every emotion further from Neutral than w = 1 (angry and sad named) and keeps its voicing and
    intelligibility. ``passed`` None where a judge did not run."""
    lines = []
    gt_wer = report.intelligibility.gt.wer if report.intelligibility.gt else None
    wer = report.intelligibility.synth.wer
    lines.append(_line(f"Whisper WER ≤ GT + {DEFAULT_WER_MARGIN:g}", wer,
                       None if gt_wer is None else gt_wer + DEFAULT_WER_MARGIN,
                       _at_most(wer, None if gt_wer is None else gt_wer + DEFAULT_WER_MARGIN)))
    lines.append(_line(f"Whisper WER ≤ {DEFAULT_WER_MAX:g}", wer, DEFAULT_WER_MAX, _at_most(wer, DEFAULT_WER_MAX)))
    by_speaker = {s: w for s, w in speaker_wer(report).items() if w is not None}
    if by_speaker:
        worst = max(by_speaker, key=by_speaker.get)
        lines.append(_line(f"Whisper WER every speaker ≤ {DEFAULT_SPEAKER_WER_MAX:g}", by_speaker[worst],
                           DEFAULT_SPEAKER_WER_MAX, by_speaker[worst] <= DEFAULT_SPEAKER_WER_MAX,
                           "highest: " + worst))
    lines.extend(_emotion_lines(report))
    for emotion, row in report.per_emotion.items():
        copy = row.gt_vocoded.voiced_fraction if row.gt_vocoded else None
        threshold = None if copy is None else VOICED_RATIO * copy
        lines.append(_line(f"voiced fraction {emotion} ≥ {VOICED_RATIO:g}×GT vocoded", row.synth.voiced_fraction,
                           threshold, _at_least(row.synth.voiced_fraction, threshold)))
    cells = {(s, e): row.synth.voiced_fraction for s, rows in report.per_speaker.items()
             for e, row in rows.items() if row.synth.voiced_fraction is not None}  # fmt: skip
    if cells:
        low = min(cells, key=cells.get)
        lines.append(_line(f"voiced fraction every speaker × emotion ≥ {DEFAULT_CELL_VOICED_MIN:g}", cells[low],
                           DEFAULT_CELL_VOICED_MIN, cells[low] >= DEFAULT_CELL_VOICED_MIN, f"lowest: {low[0]} {low[1]}"))
    lines.extend(_intensity_lines(report))
    synth = _mean_p808(row.synth for row in report.per_emotion.values())
    gt = _mean_p808(row.gt for row in report.per_emotion.values())
    relative = None if gt is None else gt - DEFAULT_DNSMOS_MARGIN
    lines.append(_line(f"DNSMOS P.808 ≥ GT − {DEFAULT_DNSMOS_MARGIN:g}", synth, relative, _at_least(synth, relative)))
    lines.append(_line(f"DNSMOS P.808 ≥ {DEFAULT_DNSMOS_MIN:g}", synth, DEFAULT_DNSMOS_MIN,
                       _at_least(synth, DEFAULT_DNSMOS_MIN)))
    rate = report.blends.between_rate if report.blends.pairs else None
    lines.append(_line(f"blend prosody strictly between parents ≥ {BETWEEN_MIN:.0%}", rate, BETWEEN_MIN,
                       _at_least(rate, BETWEEN_MIN)))
    lines.append(_sad_below_angry_line(report))
    lines.extend(_default_guidance_lines(report.guidance, gt_wer))
    return lines


def _sad_below_angry_line(report: Report) -> BarLine:
    """On every speaker, sad's speaking rate and F0 median below angry's (the synthesized rows)."""
    judged, failing = 0, []
    for speaker, rows in report.per_speaker.items():
        sad, angry = rows.get("sad"), rows.get("angry")
        if sad is None or angry is None:
            continue
        pairs = [(sad.synth.rate, angry.synth.rate), (sad.synth.f0_median, angry.synth.f0_median)]
        if any(None in pair for pair in pairs):
            continue
        judged += 1
        if not all(s < a for s, a in pairs):
            failing.append(speaker)
    passed = None if not judged else not failing
    return _line("sad slower and lower than angry, every speaker", judged - len(failing), judged, passed,
                 f"not: {', '.join(failing)}" if failing else f"{judged} speakers")


def _default_guidance_lines(sweep: Guidance | None, gt_wer) -> list[BarLine]:
    """At every w > 1 of the sweep: every emotion further from Neutral than at w = 1 (the value is
    the least ratio of distances, angry and sad named in the note), still voiced (≥ 0.8 × the
    voiced fraction at w = 1) and intelligible (WER ≤ GT + 0.1)."""
    rows = {row.w: row for row in (sweep.rows if sweep else [])}
    base = rows.get(1.0)
    if base is None:
        return [_line("guidance w>1: every emotion further from Neutral than at w=1", None, 1.0, None,
                      "no guidance sweep")]
    lines = []
    for w, row in sorted(rows.items()):
        if w <= 1.0:
            continue
        ratios = {e: d / base.distance[e] for e, d in row.distance.items()
                  if d is not None and base.distance.get(e)}  # fmt: skip
        if not ratios:
            lines.append(_line(f"guidance w={w:g}: every emotion further from Neutral than at w=1", None, 1.0, None))
            continue
        least = min(ratios, key=ratios.get)
        named = ", ".join(f"{e} {ratios[e]:.2f}" for e in GUIDED_EMOTIONS if e in ratios)
        lines.append(_line(f"guidance w={w:g}: every emotion further from Neutral than at w=1", ratios[least], 1.0,
                           ratios[least] > 1.0, f"least: {least}; {named}"))
        # further must not mean broken: the distance leaves out the F0 of unvoiced speech
        kept = None if base.voiced_fraction is None else VOICED_RATIO * base.voiced_fraction
        lines.append(_line(f"guidance w={w:g}: voiced ≥ {VOICED_RATIO:g}× that at w=1", row.voiced_fraction, kept,
                           _at_least(row.voiced_fraction, kept)))
        threshold = None if gt_wer is None else gt_wer + GUIDED_WER_MARGIN
        lines.append(_line(f"guidance w={w:g}: Whisper WER ≤ GT + {GUIDED_WER_MARGIN:g}", row.wer, threshold,
                           _at_most(row.wer, threshold)))
    return lines
