import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console

from emomix_cli.audio import AudioConfig, load_wav, mel_spectrogram
from emomix_cli.datasets import (
    SILENCE_LOG_MEL,
    ClassBalancedSampler,
    FeatureStore,
    LengthBucketSampler,
    MelDataset,
    collate,
    pad_mels,
)
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


def test_wrong_directory_is_not_a_feature_store(tmp_path):
    with pytest.raises(EmomixError, match="not an emomix feature store.*emomix prep"):
        FeatureStore(tmp_path)


def test_unknown_dataset_is_a_user_error(corpus, tmp_path):
    with pytest.raises(EmomixError, match="choose one of"):
        prep("vctk", corpus, tmp_path / "out", progress=False)


def test_dataset_and_collate_pad_with_silence_and_report_lengths(tiny_store):
    dataset = MelDataset(FeatureStore(tiny_store), "train")
    items = [dataset[0], dataset[1], dataset[2]]
    batch = collate(items)
    lengths = [it["mel"].shape[1] for it in items]
    assert batch["mel"].shape == (3, 80, max(lengths))
    assert batch["mel_lengths"].tolist() == lengths
    assert batch["token_lengths"].tolist() == [len(it["tokens"]) for it in items]
    for i, it in enumerate(items):
        assert torch.equal(batch["mel"][i, :, : lengths[i]], it["mel"])
        assert torch.all(batch["mel"][i, :, lengths[i] :] == SILENCE_LOG_MEL)
        assert batch["tokens"][i, len(it["tokens"]) :].abs().sum() == 0
    assert batch["ids"] == [it["id"] for it in items]
    assert batch["speaker"].dtype == torch.long and batch["emotion"].tolist() == [it["emotion"] for it in items]


def test_pad_mels_pads_with_the_log_mel_of_silence_up_to_min_frames():
    quiet = mel_spectrogram(torch.zeros(256 * 4), AudioConfig())[0]  # digital silence
    assert torch.allclose(quiet, torch.full_like(quiet, SILENCE_LOG_MEL))
    a, b = torch.randn(80, 5), torch.randn(80, 3)
    batch, lengths = pad_mels([a, b], min_frames=8)
    assert batch.shape == (2, 80, 8) and lengths.tolist() == [5, 3]
    assert torch.equal(batch[0, :, :5], a) and torch.equal(batch[1, :, :3], b)
    assert torch.all(batch[0, :, 5:] == SILENCE_LOG_MEL) and torch.all(batch[1, :, 3:] == SILENCE_LOG_MEL)
    assert pad_mels([a, b])[0].shape == (2, 80, 5)


def test_dataset_without_tokens_keeps_utterances_without_transcript(tiny_store):
    rows = [json.loads(line) for line in (tiny_store / "manifest.jsonl").read_text().splitlines()]
    rows[0]["phonemes"] = ""
    (tiny_store / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = FeatureStore(tiny_store)
    assert len(MelDataset(store, None, with_tokens=False)) == len(rows)
    assert len(MelDataset(store, None, with_tokens=True)) == len(rows) - 1


def test_bucket_sampler_covers_every_index_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=203).tolist()
    sampler = LengthBucketSampler(lengths, batch_size=8, seed=1, bucket_size_multiplier=5)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(203)) and len(batches) == len(sampler) == 26
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    random_spread = np.mean([np.ptp(rng.choice(lengths, 8)) for _ in range(100)])
    assert spread < random_spread / 3
    sampler.set_epoch(1)
    assert list(sampler) != batches
    dropped = LengthBucketSampler(lengths, batch_size=8, seed=1, drop_last=True)
    assert all(len(b) == 8 for b in dropped) and len(dropped) == 25


def test_bucket_sampler_splits_batches_across_ranks():
    lengths = list(range(50))
    ranks = [list(LengthBucketSampler(lengths, 4, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    covered = {i for r in ranks for b in r for i in b}
    assert covered == set(range(50))


def test_class_balanced_sampler_evens_out_rare_classes():
    labels = [0] * 90 + [1] * 10
    sampler = ClassBalancedSampler(labels, batch_size=10, seed=0, num_batches=100)
    drawn = np.array([labels[i] for b in sampler for i in b])
    assert len(sampler) == 100 and 0.4 < drawn.mean() < 0.6
    first = list(ClassBalancedSampler(labels, 10, seed=0))
    assert len(first) == 10 and all(len(b) == 10 for b in first)


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
