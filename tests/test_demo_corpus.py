"""The rendered demo corpus: files, manifest, splits, determinism, resume and distinct styles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from emomix_cli import demo_corpus
from emomix_cli.demo_corpus import (
    EMOTIONS,
    SENTENCES,
    apply_tilt,
    check_voice,
    plan_corpus,
    render_audio,
    render_demo_corpus,
    split_sizes,
)
from emomix_cli.errors import EmomixError

N_SENTENCES = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return render_demo_corpus(
        root, n_speakers=1, n_sentences=N_SENTENCES, seed=0, workers=1, progress=False
    )


def read_manifest(root):
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def audio_of(root, emotion, sentence=0):
    audio, sample_rate = sf.read(
        root / "wavs" / f"demo_spk1_{emotion}_{sentence:04d}.wav", dtype="float32"
    )
    return audio, sample_rate


def median_f0(audio):
    import librosa

    f0 = librosa.yin(audio, fmin=60, fmax=500, sr=22050, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0]
    return float(np.median(f0[rms > 0.2 * rms.max()]))


def wav_bytes_by_name(root):
    return {p.name: p.read_bytes() for p in sorted((root / "wavs").glob("*.wav"))}


def test_every_planned_utterance_is_a_non_silent_22050_hz_mono_wav(corpus):
    wavs = sorted((corpus / "wavs").glob("*.wav"))
    assert len(wavs) == len(EMOTIONS) * N_SENTENCES
    for path in wavs:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        audio, _ = sf.read(path, dtype="float32")
        assert 0.5 < len(audio) / 22050 < 6.0
        assert np.sqrt(np.mean(audio**2)) > 0.01


def test_manifest_rows_are_parallel_across_emotions_with_relative_wavs(corpus):
    rows = read_manifest(corpus)
    assert len(rows) == len(EMOTIONS) * N_SENTENCES
    assert {r["emotion"] for r in rows} == set(EMOTIONS)
    for row in rows:
        assert set(row) >= {"wav", "text", "speaker", "emotion", "split", "language"}
        assert not row["wav"].startswith("/") and (corpus / row["wav"]).is_file()
        assert row["speaker"] == "demo_spk1" and row["language"] == "en"
        index = int(row["id"].rsplit("_", 1)[1])
        assert row["text"] == SENTENCES[index]
        assert row["split"] == ("val" if index == 0 else "test")
        assert row["id"] == f"demo_spk1_{row['emotion']}_{index:04d}"


def test_splits_follow_sentence_index_and_scale_with_at_least_one_val_and_test():
    assert split_sizes(150) == (10, 15)
    assert split_sizes(2) == (1, 1)
    assert split_sizes(30) == (2, 3)
    splits = {u.id: u.split for u in plan_corpus(n_speakers=2, n_sentences=150)}
    assert splits["demo_spk2_sad_0009"] == "val"
    assert splits["demo_spk2_sad_0010"] == "test"
    assert splits["demo_spk1_happy_0024"] == "test"
    assert splits["demo_spk1_happy_0025"] == "train"


def test_same_seed_gives_byte_identical_wavs_with_any_worker_count(corpus, tmp_path):
    again = render_demo_corpus(
        tmp_path / "again", n_speakers=1, n_sentences=N_SENTENCES, seed=0, workers=2, progress=False
    )
    assert wav_bytes_by_name(again) == wav_bytes_by_name(corpus)
    assert (again / "manifest.jsonl").read_bytes() == (corpus / "manifest.jsonl").read_bytes()


def test_render_audio_returns_what_the_corpus_files_hold_without_writing(corpus):
    plan = plan_corpus(n_speakers=1, n_sentences=N_SENTENCES)
    keep = {"demo_spk1_sad_0001", "demo_spk1_neutral_0000"}
    audio = render_audio(plan, keep, workers=2)
    assert set(audio) == keep
    for key, samples in audio.items():
        stored, _ = sf.read(corpus / "wavs" / f"{key}.wav", dtype="float32")
        assert samples.dtype == np.float32 and np.array_equal(samples, stored)
    assert render_audio(plan, set()) == {}


def test_a_speaker_list_plans_other_voices_with_the_corpus_jitter_for_their_position():
    mine = plan_corpus(1, 10, speakers=[("cand", "en-us+f5")])
    assert {u.voice for u in mine} == {"en-us+f5"} and mine[0].id == "cand_neutral_0000"
    corpus = plan_corpus(1, 10)
    assert [(u.pitch, u.rate, u.noise_seed) for u in mine] == [
        (u.pitch, u.rate, u.noise_seed) for u in corpus
    ]
    with pytest.raises(EmomixError, match="n_speakers"):
        plan_corpus(2, 10, speakers=[("cand", "en-us+f5")])


def test_an_unknown_voice_variant_is_an_error_not_the_base_voice():
    check_voice("en-us+f2")
    check_voice("en-gb-x-rp")
    with pytest.raises(EmomixError, match="no voice variant 'nope'"):
        check_voice("en-us+nope")
    with pytest.raises(EmomixError, match="base voice"):
        check_voice("+f2")


def test_another_seed_changes_the_jitter():
    first = {u.id: (u.pitch, u.rate, u.noise_seed) for u in plan_corpus(1, 10, seed=0)}
    second = {u.id: (u.pitch, u.rate, u.noise_seed) for u in plan_corpus(1, 10, seed=1)}
    assert first.keys() == second.keys() and first != second
    assert {u.id: u.pitch for u in plan_corpus(1, 10, seed=0)} == {
        k: v[0] for k, v in first.items()
    }


def test_resume_keeps_existing_wavs_and_renders_only_missing_ones(corpus, tmp_path):
    root = tmp_path / "resume"
    shutil.copytree(corpus, root)
    (root / "manifest.jsonl").unlink()
    deleted = root / "wavs" / "demo_spk1_sad_0001.wav"
    deleted.unlink()
    kept = root / "wavs" / "demo_spk1_angry_0000.wav"
    kept.write_bytes(b"marker: must not be re-rendered")
    stale = root / "wavs" / ".demo_spk1_sad_0001.wav.abc.tmp"
    stale.write_bytes(b"half a file")

    render_demo_corpus(root, n_speakers=1, n_sentences=N_SENTENCES, progress=False)

    assert kept.read_bytes() == b"marker: must not be re-rendered"
    assert deleted.read_bytes() == (corpus / "wavs" / deleted.name).read_bytes()
    assert not stale.exists()
    assert len(read_manifest(root)) == len(EMOTIONS) * N_SENTENCES


def test_sad_is_slower_than_neutral_and_angry_for_the_same_sentence(corpus):
    for sentence in range(N_SENTENCES):
        sad, _ = audio_of(corpus, "sad", sentence)
        angry, _ = audio_of(corpus, "angry", sentence)
        neutral, _ = audio_of(corpus, "neutral", sentence)
        assert len(sad) > 1.3 * len(angry)
        assert len(sad) > len(neutral) > len(angry)


def test_happy_and_surprise_are_higher_pitched_than_neutral_and_sad(corpus):
    f0 = {emotion: median_f0(audio_of(corpus, emotion)[0]) for emotion in EMOTIONS}
    assert f0["happy"] > 1.25 * f0["sad"]
    assert f0["surprise"] > 1.25 * f0["sad"]
    assert min(f0["happy"], f0["surprise"]) > f0["neutral"] > f0["sad"]


def test_angry_is_louder_than_neutral_which_is_louder_than_sad(corpus):
    rms = {e: float(np.sqrt(np.mean(audio_of(corpus, e)[0] ** 2))) for e in EMOTIONS}
    assert rms["angry"] > rms["neutral"] > rms["sad"]


def test_tilt_brightens_with_pre_emphasis_and_darkens_with_low_pass():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(22050)

    def high_band_share(audio):
        power = np.abs(np.fft.rfft(audio)) ** 2
        return power[len(power) // 2 :].sum() / power.sum()

    flat = high_band_share(noise)
    assert high_band_share(apply_tilt(noise, 0.8)) > flat + 0.2
    assert high_band_share(apply_tilt(noise, -0.75)) < flat - 0.2
    assert np.array_equal(apply_tilt(noise, 0.0), noise)


def test_sentence_list_has_at_least_150_unique_short_sentences():
    assert len(SENTENCES) >= 150
    assert len(set(SENTENCES)) == len(SENTENCES)
    assert all(4 <= len(s.split()) <= 10 for s in SENTENCES)


def test_there_are_at_least_four_distinct_speaker_voices():
    voices = [voice for _, voice in demo_corpus.SPEAKERS]
    assert len(set(voices)) == len(voices) >= 4


@pytest.mark.parametrize(
    "options",
    [
        {"n_speakers": 0},
        {"n_speakers": 99},
        {"n_sentences": 0},
        {"n_sentences": 10_000},
        {"workers": 0},
    ],
)
def test_out_of_range_sizes_raise_a_user_error(tmp_path, options):
    with pytest.raises(EmomixError):
        render_demo_corpus(tmp_path, progress=False, **options)


def test_a_worker_error_reaches_the_caller_as_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_corpus, "SPEAKERS", [("demo_spk1", "no-such-voice+x")])
    with pytest.raises(EmomixError, match="no voice"):
        render_demo_corpus(tmp_path, n_speakers=1, n_sentences=1, progress=False)
    assert not (tmp_path / "manifest.jsonl").exists()
