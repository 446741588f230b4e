"""prep.py: a corpus -> the feature store (resumable, skipped files listed, summary table)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console

from emomix_cli.audio import AudioConfig, load_wav, mel_spectrogram
from emomix_cli.datasets import FeatureStore
from emomix_cli.errors import EmomixError
from emomix_cli.prep import prep, summary_table

SENTENCES = ["Hello there.", "I have 42 apples!", "Is Dr. Smith here?"]


def make_tone_corpus(root: Path, n_per_class: int = 3) -> Path:
    """Manifest corpus of tone wavs: 2 speakers x 2 emotions, plus a corrupt and an empty wav."""
    wavs = root / "wavs"
    wavs.mkdir(parents=True)
    rows = []
    for s, speaker in enumerate(["spk_a", "spk_b"]):
        for e, emotion in enumerate(["angry", "sad"]):
            for i in range(n_per_class):
                name = f"{speaker}_{emotion}_{i}"
                seconds = 0.2 + 0.05 * i
                t = np.arange(int(22050 * seconds)) / 22050
                freq = 150 + 50 * s + 100 * e + 10 * i
                sf.write(wavs / f"{name}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 22050)
                split = "train" if i < n_per_class - 1 else "test"
                rows.append({"wav": f"wavs/{name}.wav", "text": SENTENCES[i % 3], "speaker": speaker,
                             "emotion": emotion, "split": split})
    (wavs / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    sf.write(wavs / "empty.wav", np.zeros(0, dtype=np.float32), 22050)
    for name in ("corrupt", "empty"):
        rows.append({"wav": f"wavs/{name}.wav", "text": "broken", "speaker": "spk_a",
                     "emotion": "sad", "split": "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_tone_corpus(tmp_path / "corpus")


def test_prep_writes_a_readable_store_and_lists_skipped_files(corpus, tmp_path):
    out = tmp_path / "features"
    summary = prep("manifest", corpus, out, progress=False)
    assert summary.n_utterances == 12 and summary.n_new == 12
    assert summary.counts == {"spk_a": {"angry": 3, "sad": 3}, "spk_b": {"angry": 3, "sad": 3}}
    skipped = {Path(path).name: reason for path, reason in summary.skipped}
    assert set(skipped) == {"corrupt.wav", "empty.wav"}
    assert "empty" in skipped["empty.wav"] and "corrupt.wav" in skipped["corrupt.wav"]
    assert summary.hours == pytest.approx(12 * 0.25 / 3600, rel=0.05)

    store = FeatureStore(out)
    assert store.speakers == ["spk_a", "spk_b"] and store.emotions == ["angry", "sad"]
    assert store.audio == AudioConfig() and len(store.symbols) > 100
    assert len(store.items()) == 12 and len(store.items("test")) == 4
    item = store.items()[0]
    expected = mel_spectrogram(torch.from_numpy(load_wav(item["wav"], AudioConfig())), AudioConfig())[0]
    mel = store.mel(item["id"])
    assert mel.dtype == np.float32 and mel.shape == (80, item["n_frames"])
    np.testing.assert_allclose(mel, expected.numpy(), atol=1e-5)
    assert "ˈ" in item["phonemes"] and item["phonemes"].endswith(".")
    tokens = store.tokens(item)
    assert tokens[0] == store.symbols.blank_id and len(tokens) == 2 * len(item["phonemes"]) + 1
    console = Console(width=200, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "spk_a" in text and "angry" in text and "2 skipped" in text


def test_rerun_is_a_no_op_that_keeps_files(corpus, tmp_path):
    out = tmp_path / "features"
    prep("manifest", corpus, out, progress=False)
    files = [out / "manifest.jsonl", out / "config.yaml", out / "speakers.json", *(out / "mels").glob("*.npy")]
    before = {p: p.stat().st_mtime_ns for p in files}
    summary = prep("manifest", corpus, out, progress=False)
    assert summary.n_new == 0 and summary.n_utterances == 12
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_partial_store_is_completed(corpus, tmp_path):
    out = tmp_path / "features"
    prep("manifest", corpus, out, progress=False)
    full = (out / "manifest.jsonl").read_text()
    lines = full.splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:5]) + lines[5][:20])  # cut mid-line
    victim = json.loads(lines[0])["id"]
    (out / "mels" / f"{victim}.npy").unlink()
    kept = out / "mels" / f"{json.loads(lines[1])['id']}.npy"
    kept_mtime = kept.stat().st_mtime_ns
    summary = prep("manifest", corpus, out, progress=False)
    assert summary.n_new == 12 - 4  # rows 1..4 were intact with their mels
    assert (out / "manifest.jsonl").read_text() == full
    assert (out / "mels" / f"{victim}.npy").is_file()
    assert kept.stat().st_mtime_ns == kept_mtime


def test_other_audio_config_on_resume_asks_for_a_new_out(corpus, tmp_path):
    out = tmp_path / "features"
    prep("manifest", corpus, out, progress=False)
    with pytest.raises(EmomixError, match="new --out"):
        prep("manifest", corpus, out, progress=False, audio=AudioConfig(fmax=11025.0))


@pytest.mark.slow
def test_two_workers_give_the_same_store_as_one(corpus, tmp_path, monkeypatch):
    import emomix_cli.prep as prep_module

    monkeypatch.setattr(prep_module, "_CHUNK", 4)  # several chunks, so the process pool runs
    monkeypatch.setattr(prep_module, "_MIN_POOL_RECORDS", 0)
    prep("manifest", corpus, tmp_path / "one", progress=False)
    prep("manifest", corpus, tmp_path / "two", workers=2, progress=False)
    assert (tmp_path / "one" / "manifest.jsonl").read_text() == (tmp_path / "two" / "manifest.jsonl").read_text()
    for mel in (tmp_path / "one" / "mels").glob("*.npy"):
        np.testing.assert_array_equal(np.load(mel), np.load(tmp_path / "two" / "mels" / mel.name))


def test_demo_dataset_is_rendered_then_prepared(tmp_path):
    summary = prep("demo", tmp_path / "demo", tmp_path / "out", progress=False, n_speakers=1, n_sentences=2)
    assert (tmp_path / "demo" / "manifest.jsonl").is_file()
    assert summary.n_utterances == len(FeatureStore(tmp_path / "out").items()) >= 2
    assert not summary.skipped


def test_unknown_dataset_is_a_user_error(corpus, tmp_path):
    with pytest.raises(EmomixError, match="choose one of"):
        prep("vctk", corpus, tmp_path / "out", progress=False)


def test_prep_journal_survives_a_kill_between_utterances(corpus, tmp_path, monkeypatch):
    """A crash mid-run keeps finished utterances: the rerun computes only the rest."""
    import emomix_cli.prep as prep_module

    out = tmp_path / "features"
    real = prep_module._process_chunk
    calls = {"n": 0}

    def crash_on_second_chunk(records, out_dir, audio):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(records, out_dir, audio)

    monkeypatch.setattr(prep_module, "_CHUNK", 5)
    monkeypatch.setattr(prep_module, "_process_chunk", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        prep("manifest", corpus, out, progress=False)
    assert not (out / "manifest.jsonl").exists()
    monkeypatch.setattr(prep_module, "_process_chunk", real)
    summary = prep("manifest", corpus, out, progress=False)
    assert summary.n_new == 12 - 5 and summary.n_utterances == 12
    assert os.path.getsize(out / ".prep" / "rows.jsonl") == 0
