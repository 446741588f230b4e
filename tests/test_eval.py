"""Evaluation: metric helpers on hand-made numbers, and run_eval end to end on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emomix_cli.audio import AudioConfig
from emomix_cli.checkpoint import save_checkpoint
from emomix_cli.config import to_dict
from emomix_cli.errors import EmomixError
from emomix_cli.evaluate import (
    _conditions,
    confusion_matrix,
    count_phones,
    is_monotonic,
    mean_prosody,
    per_class_accuracy,
    print_report,
    prosody,
    run_eval,
    spearman,
    top2_rate,
    unweighted_accuracy,
    weighted_accuracy,
)

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
    assert (
        unweighted_accuracy(empty, ROWS, ROWS) is None
        and weighted_accuracy(empty, ROWS, ROWS) is None
    )


def test_top2_rate_is_order_free():
    probs = np.array(
        [
            [0.5, 0.3, 0.2],  # top2 {0, 1}: hit
            [0.3, 0.5, 0.2],  # top2 {1, 0}: hit
            [0.5, 0.1, 0.4],  # top2 {0, 2}: miss
            [0.1, 0.2, 0.7],  # top2 {2, 1}: miss
        ]
    )
    assert top2_rate(probs, 0, 1) == pytest.approx(0.5)
    assert top2_rate(probs, 1, 0) == pytest.approx(0.5)
    assert top2_rate(probs, 0, 2) == pytest.approx(0.25)


def test_spearman_and_monotonic():
    weights = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert spearman(weights, [0.1, 0.2, 0.3, 0.5, 0.6, 0.9]) == pytest.approx(1.0)
    assert spearman(weights, [0.9, 0.6, 0.5, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    # one swap of neighbours: rho = 1 - 6 * 2 / (6 * 35)
    assert spearman(weights, [0.1, 0.3, 0.2, 0.5, 0.6, 0.9]) == pytest.approx(1 - 12 / 210)
    assert spearman(weights, [0.5] * 6) is None
    assert is_monotonic([0.1, 0.1, 0.3]) and not is_monotonic([0.1, 0.3, 0.29])
    assert is_monotonic([0.1, 0.3, 0.29], tolerance=0.02)


def test_count_phones_skips_stress_length_and_punctuation():
    assert count_phones("həlˈoʊ wˈɜːld.") == 9  # h ə l o ʊ w ɜ l d
    assert count_phones("ˈ ː , . ?") == 0


def test_prosody_of_a_tone_and_of_silence():
    sr = 22050
    t = np.arange(sr) / sr
    wav = np.zeros(int(1.5 * sr), np.float32)
    wav[sr // 4 : sr // 4 + sr] = 0.5 * np.sin(2 * np.pi * 200 * t)  # 1 s of 200 Hz in silence
    stats = prosody(wav, sr, n_phones=10)
    assert stats["f0_mean"] == pytest.approx(200, rel=0.02)
    assert stats["f0_range"] < 5
    assert stats["energy_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1.5)
    assert stats["rate"] == pytest.approx(10.0, rel=0.1)  # silence trimmed: 10 phones in ~1 s
    assert prosody(np.zeros(sr, np.float32), sr, 5)["f0_mean"] is None
    mean = mean_prosody(
        [stats, {"f0_mean": None, "f0_range": None, "energy_db": 0.0, "rate": None}]
    )
    assert mean["f0_mean"] == stats["f0_mean"] and mean["n"] == 2


def test_conditions_cover_emotions_intensity_and_ordered_blends():
    labels = [label for label, _ in _conditions(["angry", "happy", "neutral", "sad"])]
    # 4 emotions + 3 x 4 inner intensity weights + 3 x 2 ordered pairs
    assert len(labels) == 4 + 12 + 6
    assert "angry@0.4" in labels and "sad+happy" in labels and "happy+sad" in labels
    weights = dict(_conditions(["angry", "neutral"]))
    assert weights["angry@0.2"] == {"angry": 0.2, "neutral": 0.8}


# ---------------------------------------------------------------- end to end
def _tiny_models(tmp_path, emotions=("angry", "neutral", "sad")):
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
                    dec_dim=8, dim_mults=(1, 2))  # fmt: skip
    model = EmoMixTTS(cfg)
    payload = {
        "config": to_dict(cfg), "audio": to_dict(AudioConfig()), "symbols": symbols.to_dict(),
        "emotions": list(emotions), "speakers": ["spk_a", "spk_b"], "speaker_encoder": "table",
        "prototypes": {"emotions": list(emotions), "vectors": 3 * torch.randn(len(emotions), 8),
                       "counts": [1] * len(emotions), "per_speaker": {}},
        "state_dict": model.state_dict(), "ser": ser_payload(ser, AudioConfig()),
    }  # fmt: skip
    return save_checkpoint(tmp_path / "tts.pt", "tts", payload), ser_file


def test_run_eval_end_to_end(tmp_path, tiny_store):
    model, ser = _tiny_models(tmp_path)
    out = tmp_path / "eval"
    report = run_eval(
        model, ser, out, features=tiny_store, steps=2, max_sentences=2, progress=False
    )
    assert set(report) >= {
        "config",
        "classification",
        "intensity",
        "blends",
        "prosody",
        "ground_truth",
    }
    classification = report["classification"]
    confusion = np.array(classification["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum(axis=1).tolist() == [2, 2, 2]
    assert classification["mean_accuracy"] == pytest.approx(
        np.mean(list(classification["accuracy"].values()))
    )
    intensity = report["intensity"]
    assert set(intensity["curves"]) == {"angry", "sad"}
    assert all(len(c) == 6 and all(0 <= p <= 1 for p in c) for c in intensity["curves"].values())
    assert all(isinstance(intensity["monotonic"][e], bool) for e in ("angry", "sad"))
    pairs = report["blends"]["pairs"]
    assert [(p["major"], p["minor"]) for p in pairs] == [("angry", "sad"), ("sad", "angry")]
    assert all(p["top2_rate"] in (0.0, 0.5, 1.0) for p in pairs)  # 2 sentences, 3 classes
    assert set(report["prosody"]) == {"angry", "neutral", "sad", "angry+sad", "sad+angry"}
    assert (
        report["prosody"]["angry"]["n"] == 2 and report["prosody"]["angry"]["energy_db"] is not None
    )
    gt = report["ground_truth"]
    assert np.array(gt["confusion"]).sum() == 6  # tiny store: 2 test utterances per emotion
    assert report["config"]["scored_on"] == "mel" and report["timing"]["utterances"] == 2 * 13
    for name in ("report.json", "confusion.png", "intensity.png", "blends.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "report.json").read_text())["emotions"] == ["angry", "neutral", "sad"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "angry.wav",
        "neutral.wav",
        "sad.wav",
    ]
    print_report(report)  # renders without error


@pytest.mark.slow
def test_run_eval_builtin_sentences_embedded_ser_rescored_on_audio(tmp_path):
    model, _ = _tiny_models(tmp_path)
    report = run_eval(model, None, tmp_path / "eval", steps=2, max_sentences=1, rescore_audio=True,
                      progress=False)  # fmt: skip
    assert report["ground_truth"] is None and report["config"]["scored_on"] == "audio"
    assert report["config"]["ser"] == "embedded"
    assert np.array(report["classification"]["confusion"]).sum() == 3


def test_run_eval_encoder_condition_reaches_the_blends(tmp_path, tiny_store):
    model, ser = _tiny_models(tmp_path)
    reports = {
        mode: run_eval(model, ser, tmp_path / mode, features=tiny_store, steps=1, max_sentences=1,
                       progress=False, encoder_condition=mode)
        for mode in ("weighted", "base")
    }  # fmt: skip
    assert reports["base"]["config"]["encoder_condition"] == "base"
    minor = [p["mean_posteriors"] for mode in ("weighted", "base") for p in reports[mode]["blends"]["pairs"]]
    assert minor[:2] != minor[2:]  # the blends' encoder condition changed their mels


def test_run_eval_rejects_bad_input(tmp_path):
    model, ser = _tiny_models(tmp_path)
    with pytest.raises(EmomixError, match="encoder condition"):
        run_eval(model, ser, tmp_path / "e", max_sentences=1, progress=False, encoder_condition="mean")
    with pytest.raises(EmomixError, match="max_sentences"):
        run_eval(model, ser, tmp_path / "e", max_sentences=0, progress=False)
    with pytest.raises(EmomixError, match="not an emomix feature store"):
        run_eval(model, ser, tmp_path / "e", features=tmp_path / "nowhere", progress=False)


def test_plots_handle_a_single_non_neutral_emotion(tmp_path):
    from emomix_cli.evaluate import _plot_blends

    _plot_blends({"emotions": ["angry"], "top2_matrix": [[None]], "pairs": []}, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
