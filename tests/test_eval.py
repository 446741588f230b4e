"""Evaluation: metrics and scoring on hand-made numbers, run_eval end to end on tiny models."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch

from emomix_cli.audio import AudioConfig
from emomix_cli.checkpoint import save_checkpoint
from emomix_cli.config import to_dict
from emomix_cli.errors import EmomixError
from emomix_cli.evaluate import (
    DEFAULT_MAX_SENTENCES,
    Judges,
    confusion_matrix,
    count_phones,
    default_model_bar,
    is_monotonic,
    per_class_accuracy,
    print_report,
    quality_bar,
    run_eval,
    spearman,
    top2_rate,
    unweighted_accuracy,
    weighted_accuracy,
)
from emomix_cli.evaluate.metrics import ranks, scaled_distance
from emomix_cli.evaluate.run import parse_guidance_levels
from emomix_cli.evaluate.schema import BarLine, Blends, Report, WordErrors
from emomix_cli.evaluate.scoring import (
    blends,
    conditions,
    guidance,
    guidance_levels,
    intensity,
    per_speaker,
)
from emomix_cli.synthesis import SynthesisOptions

ROWS = ["angry", "neutral", "sad"]


# ---------------------------------------------------------------- pure helpers
def test_confusion_matrix_counts_pairs():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_accuracies_by_hand():
    # angry 1/2, neutral 1/1, sad 2/3 -> UA = (0.5 + 1 + 2/3) / 3, WA = 4/6
    matrix = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    acc = per_class_accuracy(matrix, ROWS, ROWS)
    assert acc == pytest.approx({"angry": 0.5, "neutral": 1.0, "sad": 2 / 3})
    assert unweighted_accuracy(matrix, ROWS, ROWS) == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    assert weighted_accuracy(matrix, ROWS, ROWS) == pytest.approx(4 / 6)


def test_accuracy_columns_may_differ_from_rows():
    # the SER knows [sad, angry] (other order, no neutral): neutral is undefined, counts wrong in WA
    matrix = np.array([[1, 3], [2, 0], [0, 2]])  # rows angry, neutral, sad; cols sad, angry
    acc = per_class_accuracy(matrix, ROWS, ["sad", "angry"])
    assert acc == {"angry": 0.75, "neutral": None, "sad": 0.0}
    assert unweighted_accuracy(matrix, ROWS, ["sad", "angry"]) == pytest.approx(0.375)
    assert weighted_accuracy(matrix, ROWS, ["sad", "angry"]) == pytest.approx(3 / 8)
    empty = np.zeros((3, 3), dtype=int)
    assert unweighted_accuracy(empty, ROWS, ROWS) is None and weighted_accuracy(empty, ROWS, ROWS) is None


def test_top2_rate_is_order_free():
    probs = np.array([
        [0.5, 0.3, 0.2],  # top2 {0, 1}: hit
        [0.3, 0.5, 0.2],  # top2 {1, 0}: hit
        [0.5, 0.1, 0.4],  # top2 {0, 2}: miss
        [0.1, 0.2, 0.7],  # top2 {2, 1}: miss
    ])  # fmt: skip
    assert top2_rate(probs, 0, 1) == pytest.approx(0.5)
    assert top2_rate(probs, 1, 0) == pytest.approx(0.5)
    assert top2_rate(probs, 0, 2) == pytest.approx(0.25)


def test_spearman_and_monotonic():
    weights = [0, 0.25, 0.5, 0.75, 1.0]
    assert spearman(weights, [0.1, 0.2, 0.3, 0.5, 0.9]) == pytest.approx(1.0)
    assert spearman(weights, [0.9, 0.5, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    # one swap of neighbours: rho = 1 - 6 * 2 / (5 * 24)
    assert spearman(weights, [0.1, 0.3, 0.2, 0.5, 0.9]) == pytest.approx(0.9)
    assert spearman(weights, [0.5] * 5) is None and spearman(weights, [0, 1, None, 2, 3]) is None
    # ties share their mean rank: x ranks 1 2 3 4 5, y ranks 1 2.5 2.5 4 5 -> rho = 9.5 / sqrt(10 * 9.5)
    assert ranks([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    assert spearman(weights, [0, 1, 1, 2, 3]) == pytest.approx(9.5 / np.sqrt(10 * 9.5))
    assert is_monotonic([0.1, 0.1, 0.3]) and not is_monotonic([0.1, 0.3, 0.29])
    assert is_monotonic([0.1, 0.3, 0.29], tolerance=0.02)


def test_count_phones_skips_stress_length_and_punctuation():
    assert count_phones("həlˈoʊ wˈɜːld.") == 9  # h ə l o ʊ w ɜ l d
    assert count_phones("ˈ ː , . ?") == 0


def test_small_evals_share_the_blend_pairs_out_and_stop_the_sweep_at_2():
    emotions = ["angry", "happy", "neutral", "sad", "surprise"]
    def pairs(i, n):
        return [label for label, _ in conditions(emotions, i, n) if "+" in label]
    assert all(len(pairs(i, 4)) == 12 for i in range(4)) and len(pairs(7, 8)) == 12  # the full grid
    assert pairs(0, 1) == ["angry+happy", "happy+sad", "sad+surprise"]  # pairs 0, 4, 8 of 12
    shared = [label for i in range(3) for label in pairs(i, 3)]
    assert len(shared) == len(set(shared)) == 9  # 3 sentences: 9 distinct pairs, each once
    assert len(conditions(emotions, 0, 1)) == 5 + 12 + 3  # one sentence: 20 mixes, not 29
    assert guidance_levels(1) == (1.0, 2.0) and guidance_levels(4) == (1.0, 2.0, 3.0)


def test_conditions_cover_emotions_intensity_and_ordered_blends():
    labels = [label for label, _ in conditions(["angry", "happy", "neutral", "sad"])]
    # 4 emotions + 3 x 3 inner intensity weights (.25 .5 .75) + 3 x 2 ordered pairs
    assert len(labels) == 4 + 9 + 6
    assert "angry@0.25" in labels and "sad+happy" in labels and "happy+sad" in labels
    weights = dict(conditions(["angry", "neutral"]))
    assert weights["angry@0.75"] == {"angry": 0.75, "neutral": 0.25}
    assert "angry@0.2" not in weights


# ---------------------------------------------------------------- scoring on hand-made records
COLS = ["angry", "neutral", "sad"]


def _record(label, i, cond, judge, line):
    f0, span, loud, rate = line
    return {"label": label, "i": i, "cond": np.array(cond), "judge": np.array(judge),
            "prosody": {"f0_median": f0, "f0_range_st": span, "loudness_db": loud, "rate": rate}}


def _records(sad_curve):
    """Sentence 0 only; angry rises with weight, sad follows ``sad_curve`` (P at .25 .5 .75)."""
    records = {}
    for label, p_angry, line in [("neutral", 0.1, (100, 2, -20, 10)), ("angry@0.25", 0.3, (125, 2, -20, 10)),
                                 ("angry@0.5", 0.5, (150, 2, -20, 10)), ("angry@0.75", 0.7, (175, 2, -20, 10)),
                                 ("angry", 0.9, (200, 2, -20, 10))]:  # fmt: skip
        records[label, 0] = _record(label, 0, [p_angry, 1 - p_angry, 0], [p_angry, 1 - p_angry, 0], line)
    for w, p_sad in zip((0.25, 0.5, 0.75), sad_curve, strict=True):
        records[f"sad@{w:g}", 0] = _record("x", 0, [0, 1 - p_sad, p_sad], [0, 1 - p_sad, p_sad], (100, 2, -20 - 40 * w, 10))
    records["sad", 0] = _record("sad", 0, [0, 0.2, 0.8], [0, 0.2, 0.8], (100, 2, -60, 10))
    # blends: angry+sad sits 60 % of the way from sad to angry; sad+angry lies past angry, away from sad (not between)
    records["angry+sad", 0] = _record("x", 0, [0.5, 0.1, 0.4], [0.5, 0.1, 0.4], (160, 2, -36, 10))
    records["sad+angry", 0] = _record("x", 0, [0.2, 0.5, 0.3], [0.05, 0.9, 0.05], (220, 2, -12, 10))
    return records


def test_intensity_curves_rho_and_monotonic_by_hand():
    scale = [1.0, 1.0, 1.0, 1.0]
    out = intensity(_records([0.3, 0.2, 0.6]), 1, COLS, COLS, COLS, scale)
    assert out["weights"] == [0, 0.25, 0.5, 0.75, 1]
    assert out["curves"]["angry"] == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert out["spearman"]["angry"] == pytest.approx(1.0) and out["monotonic"] == {"angry": True, "sad": False}
    # sad posteriors 0, .3, .2, .6, .8: one swap -> rho 0.9
    assert out["judge_spearman"]["sad"] == pytest.approx(0.9)
    # prosody: F0 100 -> 200 Hz along the angry line; loudness -20 -> -60 dB along the sad line
    assert out["prosody_curves"]["angry"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert out["prosody_curves"]["sad"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])


def test_blends_positions_top2_and_parents_vs_neutral_by_hand():
    out = blends(_records([0.3, 0.5, 0.7]), 1, COLS, COLS, COLS, [1.0, 1.0, 1.0, 1.0])
    pairs = {(p["major"], p["minor"]): p for p in out["pairs"]}
    major = pairs["angry", "sad"]
    # from sad (100 Hz, -60 dB) to angry (200 Hz, -20 dB): (160, -36) is at 0.6 on both axes
    assert major["positions"] == [pytest.approx(0.6)] and major["between_rate"] == 1.0
    assert major["top2_rate"] == 1.0  # angry .5 and sad .4 are the top 2
    assert major["parents_above_neutral"] is True  # .5 > .1 (angry), .4 > 0 (sad)
    minor = pairs["sad", "angry"]
    assert minor["positions"] == [pytest.approx(-0.2)] and minor["between_rate"] == 0.0
    assert minor["top2_rate"] == 0.0  # neutral .5 is on top
    assert minor["parents_above_neutral"] is False  # P(angry) .05 < .1 under plain neutral
    assert out["between_rate"] == 0.5 and out["mean_top2_rate"] == 0.5


def _bar_report(**changes):
    report = {
        "config": {"vocoder": "hifigan"},
        "per_emotion": {"angry": {"synth": {"voiced_fraction": 0.7}, "gt": {"voiced_fraction": 0.8}},
                        "sad": {"synth": {"voiced_fraction": 0.6}, "gt": {"voiced_fraction": 0.8}}},
        "intelligibility": {"synth": {"wer": 0.30}, "gt": {"wer": 0.20}},
        "judge_classification": {"accuracy": {"angry": 1.0, "sad": 0.5}, "mean_accuracy": 0.75},
        "intensity": {"judge_spearman": {"angry": 1.0}, "prosody_spearman": {"angry": 0.8}},
        "blends": {"pairs": [{"parents_above_neutral": True}, {"parents_above_neutral": False}],
                   "between_rate": 0.8},
    }  # fmt: skip
    report.update(changes)
    return {line.check: line for line in quality_bar(Report.from_json(report))}


def test_quality_bar_lines_pass_and_fail_with_their_numbers():
    bar = _bar_report()
    assert bar["voiced fraction angry ≥ 0.8×GT"].passed is True  # 0.7 >= 0.64
    assert bar["voiced fraction sad ≥ 0.8×GT"].passed is False  # 0.6 < 0.64
    assert bar["voiced fraction sad ≥ 0.8×GT"].threshold == pytest.approx(0.64)
    assert "voiced fraction sad ≥ 0.8×GT vocoded" not in bar  # no copy-synthesis row given
    copy = _bar_report(per_emotion={"sad": {"synth": {"voiced_fraction": 0.6}, "gt": {"voiced_fraction": 0.8},
                                            "gt_vocoded": {"voiced_fraction": 0.7}}})  # fmt: skip
    assert copy["voiced fraction sad ≥ 0.8×GT"].passed is False  # 0.6 < 0.64
    assert copy["voiced fraction sad ≥ 0.8×GT vocoded"].passed is True  # 0.6 >= 0.56
    wer = bar["Whisper WER ≤ GT + 0.05"]
    assert wer.passed is False and wer.threshold == pytest.approx(0.25)
    assert bar["second-SER accuracy mean ≥ 0.8"].passed is False
    every = bar["second-SER accuracy every emotion ≥ 0.6"]
    assert every.passed is False and every.value == 0.5 and "sad" in every.note
    assert bar["intensity ρ angry (second-SER posterior) ≥ 0.9"].passed is True
    assert bar["intensity ρ angry (prosody line) ≥ 0.9"].passed is False
    assert bar["blend prosody strictly between parents ≥ 80%"].passed is True  # 0.8 >= 0.8
    noise_space = _bar_report(config={"vocoder": "hifigan", "encoder_condition": "base"},
                              blends={"pairs": [{"parents_above_neutral": True}], "between_rate": 0.65})
    assert noise_space["blend prosody strictly between parents ≥ 60% (encoder: base)"].passed is True
    parents = bar["blend parents' second-SER posterior > Neutral's"]
    assert parents.passed is False and parents.note == "1/2 pairs"


def test_per_speaker_rows_and_their_bar_lines_by_hand():
    def rec(speaker, emotion, voiced, **extra):
        return {"label": emotion, "emotion": emotion, "speaker": speaker, "prosody": {"voiced_fraction": voiced},
                "hyp": None, **extra}  # fmt: skip

    synth = [rec("a", "angry", 0.6), rec("a", "sad", 0.2), rec("b", "angry", 0.5), rec("b", "sad", 0.9),
             rec("a", "angry+sad", 0.1)]  # a blend: in no emotion's row  # fmt: skip
    copies = [rec("a", "angry", 0.7), rec("a", "sad", 0.8), rec("b", "angry", 0.5), rec("b", "sad", 0.9)]
    rows = per_speaker(synth, [], ["angry", "sad"], copies)
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["sad"]["synth"]["voiced_fraction"] == pytest.approx(0.2)
    assert rows["a"]["sad"]["gt_vocoded"]["voiced_fraction"] == pytest.approx(0.8)
    assert rows["a"]["angry"]["synth"]["n"] == 1 and rows["a"]["angry"]["gt"] is None
    bar = _bar_report(per_speaker=rows)
    worst = bar["voiced fraction a, every emotion ≥ 0.8×GT vocoded"]
    assert worst.passed is False and worst.value == pytest.approx(0.25) and "sad" in worst.note  # 0.2 / 0.8
    assert bar["voiced fraction b, every emotion ≥ 0.8×GT vocoded"].passed is True  # ratios 1.0 and 1.0
    assert not any("every emotion ≥ 0.8×GT vocoded" in k for k in _bar_report(per_speaker=rows,
                   config={"vocoder": "griffinlim"}))  # fmt: skip


def test_quality_bar_without_judges_is_not_applicable():
    bar = _bar_report(intelligibility={"synth": {"wer": None}, "gt": None}, judge_classification=None,
                      config={"vocoder": "griffinlim"})  # fmt: skip
    assert bar["Whisper WER ≤ GT + 0.05"].passed is None
    assert bar["second-SER accuracy mean ≥ 0.8"].passed is None
    assert bar["voiced fraction angry ≥ 0.8×GT"].passed is None  # never judged on Griffin-Lim


def _default_bar(**changes):
    def cell(voiced, f0, rate, p808=3.8):
        return {"synth": {"voiced_fraction": voiced, "f0_median": f0, "rate": rate, "p808": p808},
                "gt": {"p808": 4.0}, "gt_vocoded": {"voiced_fraction": 0.7}}

    report = {
        "emotions": ["angry", "sad"],
        "config": {"vocoder": "hifigan", "sentences": [{"speaker": "a"}, {"speaker": "b"}]},
        "per_emotion": {"angry": cell(0.6, 200, 15), "sad": cell(0.5, 120, 11)},
        "per_speaker": {"a": {"angry": cell(0.6, 200, 15), "sad": cell(0.30, 120, 11)},
                        "b": {"angry": cell(0.6, 150, 12), "sad": cell(0.5, 140, 13)}},
        "intelligibility": {"synth": {"wer": 0.125}, "gt": {"wer": 0.0}},
        "judge_classification": {"accuracy": {"angry": 1.0, "sad": 0.9}, "mean_accuracy": 0.95},
        "intensity": {"judge_spearman": {"angry": 1.0}, "prosody_spearman": {"sad": 0.95}},
        "blends": {"pairs": [{}], "between_rate": 0.75},
        # speaker a: 0 of 4 words wrong; b: 2 of 4 (i = None is ground truth, left out)
        "transcripts": [{"label": "angry", "i": 0, "ref": "one two", "hyp": "one two"},
                        {"label": "sad", "i": 0, "ref": "one two", "hyp": "one two"},
                        {"label": "angry", "i": 1, "ref": "three four", "hyp": "three"},
                        {"label": "sad", "i": 1, "ref": "three four", "hyp": "three for"},
                        {"label": "sad", "i": None, "ref": "one two", "hyp": "nine"}],
        "guidance": {"rows": [{"w": 1.0, "distance": {"angry": 1.0, "sad": 1.0}, "voiced_fraction": 0.6, "wer": 0.1},
                              {"w": 2.0, "distance": {"angry": 1.2, "sad": 1.5}, "voiced_fraction": 0.5, "wer": 0.1},
                              {"w": 3.0, "distance": {"angry": 0.5, "sad": 2.0}, "voiced_fraction": 0.3,
                               "wer": 0.2}]},
    }  # fmt: skip
    report.update(changes)
    return {line.check: line for line in default_model_bar(Report.from_json(report))}


def test_default_model_bar_lines_pass_and_fail_with_their_numbers():
    bar = _default_bar()
    assert bar["Whisper WER ≤ GT + 0.1"].passed is False  # 0.125 > 0.0 + 0.1
    assert bar["Whisper WER ≤ 0.15"].passed is True
    speakers = bar["Whisper WER every speaker ≤ 0.25"]
    assert speakers.passed is False and speakers.value == pytest.approx(0.5) and "b" in speakers.note
    assert bar["voiced fraction sad ≥ 0.8×GT vocoded"].threshold == pytest.approx(0.56)
    assert bar["voiced fraction sad ≥ 0.8×GT vocoded"].passed is False  # 0.5 < 0.56
    cells = bar["voiced fraction every speaker × emotion ≥ 0.35"]
    assert cells.passed is False and cells.value == pytest.approx(0.30) and cells.note == "lowest: a sad"
    assert bar["DNSMOS P.808 ≥ GT − 0.3"].passed is True  # 3.8 >= 4.0 - 0.3
    assert bar["DNSMOS P.808 ≥ 3.6"].passed is True
    duller = _default_bar(per_emotion={"angry": {"synth": {"p808": 3.65}, "gt": {"p808": 4.0}}})
    assert duller["DNSMOS P.808 ≥ GT − 0.3"].passed is False and duller["DNSMOS P.808 ≥ 3.6"].passed is True
    assert bar["blend prosody strictly between parents ≥ 80%"].passed is False
    order = bar["sad slower and lower than angry, every speaker"]
    assert order.passed is False and order.note == "not: b"  # b's sad is faster (13 > 12)
    two, three = (bar[f"guidance w={w}: every emotion further from Neutral than at w=1"] for w in (2, 3))
    assert two.passed is True and two.value == pytest.approx(1.2) and "angry 1.20, sad 1.50" in two.note
    assert three.passed is False and "least: angry" in three.note
    assert bar["guidance w=2: voiced ≥ 0.8× that at w=1"].passed is True  # 0.5 >= 0.48
    assert bar["guidance w=3: voiced ≥ 0.8× that at w=1"].passed is False  # 0.3 < 0.48
    assert bar["guidance w=2: Whisper WER ≤ GT + 0.1"].passed is True  # 0.1 <= 0.0 + 0.1
    assert bar["guidance w=3: Whisper WER ≤ GT + 0.1"].passed is False
    fine = _default_bar(per_speaker={"a": {"angry": {"synth": {"voiced_fraction": 0.6, "f0_median": 200, "rate": 15}},
                                           "sad": {"synth": {"voiced_fraction": 0.5, "f0_median": 120, "rate": 11}}}},
                        guidance=None)  # fmt: skip
    assert fine["sad slower and lower than angry, every speaker"].passed is True
    assert fine["guidance w>1: every emotion further from Neutral than at w=1"].passed is None


def test_scaled_distance_by_hand():
    assert scaled_distance([3, 4], [0, 0]) == pytest.approx(5.0)
    assert scaled_distance([30, 4], [0, 0], scale=[10, 1]) == pytest.approx(5.0)  # 30/10 = 3
    assert scaled_distance([3, None], [0, 7]) == pytest.approx(3.0)  # undefined features left out
    assert scaled_distance([None], [1]) is None


def test_guidance_distance_wer_and_voicing_by_hand():
    def rec(label, f0, hyp="one two", voiced=0.5):
        return {"label": label, "prosody": {"f0_median": f0, "f0_range_st": 2, "loudness_db": -20, "rate": 10,
                                            "voiced_fraction": voiced}, "ref": "one two", "hyp": hyp}  # fmt: skip

    main = {("neutral", 0): rec("neutral", 100), ("angry", 0): rec("angry", 110), ("sad", 0): rec("sad", 95)}
    sweep = {(2.0, "neutral", 0): rec("neutral", 100, voiced=0.8), (2.0, "angry", 0): rec("angry", 130, "one"),
             (2.0, "sad", 0): rec("sad", 85)}  # fmt: skip
    out = guidance(main, sweep, [1.0, 2.0], 1.0, 1, ["angry", "neutral", "sad"], [10.0, 1, 1, 1])
    first, second = out["rows"]
    assert out["reference_w"] == 1.0 and first["w"] == 1.0 and second["w"] == 2.0
    # F0 distance from the main run's Neutral (100 Hz), scaled by 10 Hz
    assert first["distance"] == {"angry": pytest.approx(1.0), "sad": pytest.approx(0.5)}
    assert second["distance"] == {"angry": pytest.approx(3.0), "sad": pytest.approx(1.5)}
    assert first["mean_distance"] == pytest.approx(0.75) and second["mean_distance"] == pytest.approx(2.25)
    assert first["wer"] == 0.0 and second["wer"] == pytest.approx(1 / 6)  # one word lost of 3 x 2
    assert second["voiced_fraction"] == pytest.approx(0.6)
    assert first["judge_accuracy"] is None  # no judge columns given
    columns = ["angry", "neutral", "sad"]
    for record in [*main.values(), *sweep.values()]:
        record["judge"] = np.eye(3)[columns.index(record["label"])]
    sweep[2.0, "sad", 0]["judge"] = np.eye(3)[0]  # heard as angry at w = 2
    out = guidance(main, sweep, [1.0, 2.0], 1.0, 1, columns, [10.0, 1, 1, 1], judge_columns=columns)
    assert [row["judge_accuracy"] for row in out["rows"]] == [pytest.approx(1.0), pytest.approx(2 / 3)]


def test_quality_bar_guidance_lines():
    def row(w, angry, sad, wer):
        return {"w": w, "distance": {"angry": angry, "sad": sad}, "mean_distance": (angry + sad) / 2, "wer": wer}

    # w = 3 is further on average (1.5 > 1.0) but sad moved back: the bar asks every emotion
    sweep = {"rows": [row(1.0, 1.0, 1.0, 0.2), row(2.0, 1.5, 1.5, 0.28), row(3.0, 2.5, 0.5, 0.35)]}
    bar = _bar_report(guidance=sweep)  # ground-truth WER 0.20 -> guided threshold 0.30
    further = "every emotion's prosody further from Neutral than at w=1"
    assert bar[f"guidance w=2: {further}"].passed is True
    assert bar[f"guidance w=3: {further}"].passed is False
    assert bar[f"guidance w=3: {further}"].value == pytest.approx(1.5)
    assert "not further: sad" in bar[f"guidance w=3: {further}"].note
    assert bar["guidance w=2: Whisper WER ≤ GT + 0.1"].passed is True
    assert bar["guidance w=3: Whisper WER ≤ GT + 0.1"].threshold == pytest.approx(0.3)
    assert bar["guidance w=3: Whisper WER ≤ GT + 0.1"].passed is False
    assert not any(k.startswith("guidance") for k in _bar_report())  # no sweep, no lines


def test_headline_objective_from_a_report():
    from emomix_cli.evaluate.bar import headline

    report = Report.from_json({"config": {"vocoder": "hifigan"},
              "per_emotion": {"angry": {"synth": {"voiced_fraction": 0.7}}, "sad": {"synth": {"voiced_fraction": 0.5}}},
              "intelligibility": {"synth": {"wer": 0.2}}, "judge_classification": {"mean_accuracy": 0.9},
              "intensity": {"judge_spearman": {"angry": 1.0, "sad": 0.5}, "prosody_spearman": {"angry": 1.0}},
              "blends": {"between_rate": 0.75}})  # fmt: skip
    report.bar = quality_bar(report)
    h = headline(report)
    assert h["voiced"] == pytest.approx(0.6) and h["rho_ser"] == pytest.approx(0.75)
    assert h["objective"] == pytest.approx(0.9 + 0.6 - 0.2)
    assert h["passed"] == sum(line.passed is True for line in report.bar) and h["judged"] >= h["passed"]
    assert headline(dataclasses.replace(report, judge_classification=None))["objective"] is None
    extra = BarLine("x", 1, 0, True, "", extra=True)
    assert headline(dataclasses.replace(report, bar=[*report.bar, extra]))["passed"] == h["passed"]  # only the bar's own


def test_parse_guidance_levels():
    assert parse_guidance_levels(None) is None
    assert parse_guidance_levels("off") == [] and parse_guidance_levels("") == []
    assert parse_guidance_levels("1, 2,3") == [1.0, 2.0, 3.0]
    with pytest.raises(EmomixError, match="comma-separated numbers"):
        parse_guidance_levels("1;2")


# ---------------------------------------------------------------- end to end
def _tiny_models(tmp_path, emotions=("angry", "neutral", "sad"), cond_dropout=0.0):
    from emomix_cli.ser.model import SER, SERConfig
    from emomix_cli.ser.train import ser_payload
    from emomix_cli.text import default_symbol_table
    from emomix_cli.tts.model import EmoMixTTS, TTSConfig

    torch.manual_seed(0)
    ser = SER(SERConfig.compact(emotions=list(emotions), conv1_channels=4, conv_channels=8, n_conv=2,
                                linear_dim=16, lstm_hidden=8, embed_dim=8))  # fmt: skip
    ser_file = save_checkpoint(tmp_path / "ser.pt", "ser", ser_payload(ser, AudioConfig()))
    symbols = default_symbol_table()
    cfg = TTSConfig(n_vocab=len(symbols), emotion_dim=8, n_speakers=2, spk_emb_dim=4, emo_emb_dim=4,
                    n_enc_channels=16, filter_channels=32, filter_channels_dp=16, n_enc_layers=1,
                    dec_dim=8, dim_mults=(1, 2), cond_dropout=cond_dropout)  # fmt: skip
    model = EmoMixTTS(cfg)
    payload = {
        "config": to_dict(cfg), "audio": to_dict(AudioConfig()), "symbols": symbols.to_dict(),
        "emotions": list(emotions), "speakers": ["spk_a", "spk_b"], "speaker_encoder": "table",
        "prototypes": {"emotions": list(emotions), "vectors": 3 * torch.randn(len(emotions), 8),
                       "counts": [1] * len(emotions), "per_speaker": {}},
        "state_dict": model.state_dict(), "ser": ser_payload(ser, AudioConfig()),
    }  # fmt: skip
    return save_checkpoint(tmp_path / "tts.pt", "tts", payload), ser_file


class ToneVocoder:
    """A stand-in vocoder: a 150 Hz tone whose loudness follows the mel's mean per frame."""

    sample_rate, hop_length, name = 22050, 256, "tone"

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        frames = mel.shape[-1]
        t = torch.arange(frames * self.hop_length) / self.sample_rate
        level = torch.sigmoid(mel.mean(dim=1)).repeat_interleave(self.hop_length, dim=-1)
        return 0.5 * level * torch.sin(2 * torch.pi * 150 * t)


class SmearVocoder(ToneVocoder):
    """A stand-in whose samples near the end depend on the frames after them (as a real
    vocoder's receptive field does), so zero padding in a batch changes an utterance's tail."""

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        smeared = torch.nn.functional.avg_pool1d(mel.mean(dim=1, keepdim=True), 5, stride=1, padding=2)
        return smeared[:, 0].repeat_interleave(self.hop_length, dim=-1)


def test_vocoded_audio_does_not_depend_on_the_batch():
    from emomix_cli.evaluate.run import vocode_mels

    short, long = torch.randn(80, 20) - 5, torch.randn(80, 40) - 5
    alone = vocode_mels(SmearVocoder(), [short])[0]
    together = vocode_mels(SmearVocoder(), [short, long])[0]
    assert np.array_equal(alone, together)
    batched = vocode_mels(SmearVocoder(), [short, long], batch_size=2)[0]
    assert not np.array_equal(alone, batched)  # what the default avoids: padding reached the tail


def fake_prosody(wav, sample_rate, n_phones):
    rms = float(np.sqrt(np.mean(np.square(wav)))) if len(wav) else 0.0
    return {"voiced_fraction": 1.0, "f0_median": 150.0, "f0_range_st": 0.0,
            "loudness_db": 20 * np.log10(max(rms, 1e-6)), "rate": n_phones / max(len(wav) / sample_rate, 1e-3)}


def fake_judges(ser_file=None):
    from emomix_cli.ser import load_ser

    return Judges(asr=lambda wav: "synthetic", dnsmos=lambda wav: {"p808": 3.0},
                  prosody=fake_prosody, ser=load_ser(ser_file) if ser_file else None,
                  ser_name=str(ser_file) if ser_file else None)  # fmt: skip


def test_run_eval_end_to_end(tmp_path, tiny_store):
    model, ser = _tiny_models(tmp_path)
    out = tmp_path / "eval"
    report = run_eval(model, ser, out, features=tiny_store, split="val", max_sentences=2,
                      options=SynthesisOptions(steps=2), vocoder=ToneVocoder(), judges=fake_judges(ser),
                      progress=False)  # fmt: skip
    assert report.config.split == "val" and report.config.judge_ser == str(ser)
    # tiny store: all texts are "synthetic", so the two sentences are (synthetic, spk_a) and (synthetic, spk_b)
    assert [s["speaker"] for s in report.config.sentences] == ["spk_a", "spk_b"]
    confusion = np.array(report.classification.confusion)
    assert confusion.shape == (3, 3) and confusion.sum(axis=1).tolist() == [2, 2, 2]
    assert np.array(report.judge_classification.confusion).sum() == 6
    # the fake ASR always hears the reference: WER 0 on all 3 emotions x 2 sentences, DNSMOS as given
    assert report.intelligibility.synth == WordErrors(wer=0.0, cer=0.0, n=6)
    assert report.per_emotion["angry"].synth.p808 == 3.0
    assert report.per_emotion["angry"].gt.voiced_fraction is None  # the tiny store has no wavs
    assert report.per_emotion["angry"].gt_vocoded.n == 2  # ... but its mels can be vocoded
    assert report.ground_truth.n == 6  # parallel: 3 emotions x 2 sentences of the val split
    assert sorted(report.per_speaker) == ["spk_a", "spk_b"]  # one sentence each, every emotion
    assert report.per_speaker["spk_b"]["sad"].synth.n == 1 and report.per_speaker["spk_b"]["sad"].gt_vocoded.n == 1
    intensity = report.intensity
    assert set(intensity.judge_curves) == {"angry", "sad"}
    assert intensity.prosody_curves["angry"][0] == pytest.approx(0.0)
    assert intensity.prosody_curves["angry"][-1] == pytest.approx(1.0)
    assert [(p.major, p.minor) for p in report.blends.pairs] == [("angry", "sad"), ("sad", "angry")]
    # below 4 sentences the sentences share the blend pairs out: each of the 2 pairs is spoken once
    assert [len(p.positions) for p in report.blends.pairs] == [1, 1]
    assert report.timing.utterances == 2 * (3 + 2 * 3) + 2
    assert report.guidance is None  # trained without condition dropout: no sweep
    assert set(report.timing.judge_s_per_utterance) == {"pyin", "second_ser", "whisper", "dnsmos"}
    for name in ("report.json", "confusion.png", "intensity.png", "blends.png", "prosody.png", "speakers.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "report.json").read_text())
    assert saved["config"]["split"] == "val" and saved == report.to_json()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["angry.wav", "neutral.wav", "sad.wav"]

    from rich.console import Console

    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=250))
    text = buffer.getvalue()
    assert "split val" in text and "conditioning SER (not independent)" in text
    assert "voiced fraction per speaker" in text and "spk_b" in text
    wer_line = next(line for line in text.splitlines() if line.startswith("Whisper WER") or "Whisper WER" in line)
    assert "0.000" in wer_line and "n/a" in wer_line  # WER 0 measured, no ground-truth audio
    assert text.count("PASS") + text.count("FAIL") + text.count("n/a") >= len(report.bar)

    missing = dataclasses.replace(report, config=dataclasses.replace(report.config, missing_judges={"whisper": ["jiwer"]}))
    buffer = io.StringIO()
    print_report(missing, Console(file=buffer, width=250))
    assert "pip install 'emomix[judges]'" in buffer.getvalue()  # not eaten as rich markup


def test_run_eval_encoder_condition_changes_only_the_mixes(tmp_path, tiny_store, monkeypatch):
    import emomix_cli.evaluate.report as report_module

    for name in ("plot_confusion", "plot_intensity", "plot_blends", "plot_prosody"):
        monkeypatch.setattr(report_module, name, lambda *args: None)  # PNGs are tested above
    model, ser = _tiny_models(tmp_path)
    reports = {
        mode: run_eval(model, ser, tmp_path / mode, features=tiny_store, max_sentences=1, progress=False,
                       options=SynthesisOptions(steps=1, encoder_condition=mode), vocoder=ToneVocoder(),
                       judges=fake_judges())
        for mode in ("weighted", "base")
    }  # fmt: skip
    assert reports["base"].config.encoder_condition == "base"
    single = [np.array(reports[m].classification.confusion) for m in reports]
    assert (single[0] == single[1]).all()  # one emotion at weight 1: the same condition either way
    posteriors = [np.array([list(p.mean_posteriors.values()) for p in reports[m].blends.pairs])
                  for m in reports]  # fmt: skip
    assert np.abs(posteriors[0] - posteriors[1]).max() > 1e-4  # the blends' mels changed


def test_run_eval_rejects_bad_input(tmp_path):
    model, ser = _tiny_models(tmp_path)
    kwargs = {"progress": False, "vocoder": ToneVocoder(), "judges": fake_judges()}
    with pytest.raises(EmomixError, match="encoder condition"):
        run_eval(model, ser, tmp_path / "e", options=SynthesisOptions(encoder_condition="mean"), **kwargs)
    with pytest.raises(EmomixError, match="max_sentences"):
        run_eval(model, ser, tmp_path / "e", max_sentences=0, **kwargs)
    with pytest.raises(EmomixError, match="split"):
        run_eval(model, ser, tmp_path / "e", split="train", **kwargs)
    with pytest.raises(EmomixError, match="not an emomix feature store"):
        run_eval(model, ser, tmp_path / "e", features=tmp_path / "nowhere", **kwargs)


def test_run_eval_guidance_sweep(tmp_path, tiny_store, monkeypatch):
    import emomix_cli.evaluate.report as report_module

    for name in ("plot_confusion", "plot_intensity", "plot_blends", "plot_prosody"):
        monkeypatch.setattr(report_module, name, lambda *args: None)
    model, ser = _tiny_models(tmp_path, cond_dropout=0.2)
    out = tmp_path / "eval"
    report = run_eval(model, ser, out, features=tiny_store, max_sentences=1, progress=False,
                      options=SynthesisOptions(steps=2), vocoder=ToneVocoder(), judges=fake_judges())  # fmt: skip
    rows = report.guidance.rows
    # one sentence: the default sweep stops at w = 2 (w = 1, 2, 3 from 4 sentences on)
    assert [row.w for row in rows] == [1.0, 2.0] and report.guidance.reference_w == 1.0
    assert rows[0].wer == 0.0 and set(rows[0].distance) == {"angry", "sad"}
    assert rows[1].distance["angry"] != pytest.approx(rows[0].distance["angry"])  # w changed the audio
    assert "guidance w=2: every emotion's prosody further from Neutral than at w=1" in {line.check for line in report.bar}
    assert (out / "guidance.png").stat().st_size > 0
    from rich.console import Console

    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=250))
    assert "guidance: prosody distance from Neutral" in buffer.getvalue()

    plain, _ = _tiny_models(tmp_path / "plain")
    with pytest.raises(EmomixError, match="condition dropout"):
        run_eval(plain, ser, tmp_path / "e", max_sentences=1, progress=False, options=SynthesisOptions(steps=1),
                 vocoder=ToneVocoder(), judges=fake_judges(), guidance_levels=[1, 2])  # fmt: skip


def test_one_default_for_max_sentences():
    import inspect

    from emomix_cli.cli import evaluate as eval_command

    assert inspect.signature(run_eval).parameters["max_sentences"].default == DEFAULT_MAX_SENTENCES
    assert inspect.signature(eval_command).parameters["max_sentences"].default == DEFAULT_MAX_SENTENCES


def test_plots_handle_a_single_non_neutral_emotion(tmp_path):
    from emomix_cli.evaluate.plots import plot_blends

    plot_blends(Blends(emotions=["angry"], top2_matrix=[[None]], pairs=[]), tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def _report_with_bar(model, lines):
    from emomix_cli.evaluate.schema import Config

    return Report(config=Config(model=str(model), n_sentences=1), bar=lines)


BAR = [BarLine("voiced", 0.9, 0.8, True), BarLine("Whisper WER ≤ GT + 0.05", 0.4, 0.2, False),
       BarLine("second SER", None, 0.8, None), BarLine("voiced, vocoded GT", 0.1, 0.8, False, extra=True)]


def test_check_fails_on_the_bars_own_failed_lines_only():
    from emomix_cli.evaluate.bar import check_bar, failed_lines

    report = _report_with_bar("runs/x/tts.pt", BAR)
    assert [line.check for line in failed_lines(report)] == ["Whisper WER ≤ GT + 0.05"]  # not the extra, not n/a
    with pytest.raises(EmomixError, match=r"quality bar of runs/x/tts.pt: 1 of 2 judged lines fail: Whisper WER") as caught:
        check_bar(report)
    assert caught.value.code == 1
    check_bar(_report_with_bar("m.pt", [BAR[0], BAR[2], BAR[3]]))  # nothing of the bar's own failed: no error


def test_report_names_the_model_it_judged(tmp_path):
    from rich.console import Console

    from emomix_cli.assets import DEMO_MODEL
    from emomix_cli.evaluate.report import bar_table, model_label

    assert model_label(str(DEMO_MODEL)) == "espeak" and model_label("runs/x/tts.pt") == "runs/x/tts.pt"
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(bar_table(BAR, "runs/x/tts.pt"))
    assert "quality bar (runs/x/tts.pt)" in buffer.getvalue() and "demo model" not in buffer.getvalue()
