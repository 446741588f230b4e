"""datasets.py: reading the feature store back (FeatureStore, MelDataset, collate, pad_mels, samplers)."""

import json

import numpy as np
import pytest
import torch

from emomix_cli.audio import AudioConfig, mel_spectrogram
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


def test_wrong_directory_is_not_a_feature_store(tmp_path):
    with pytest.raises(EmomixError, match="not an emomix feature store.*emomix prep"):
        FeatureStore(tmp_path)


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
