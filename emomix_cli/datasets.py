"""Reading a feature store and feeding training: ``FeatureStore``, ``MelDataset``/``collate``,
:func:`pad_mels` and the epoch-deterministic batch samplers (bucketed, class-balanced).

The store is written by :func:`emomix_cli.prep.prep` (layout in that module's docstring).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import yaml

from .audio import SILENCE_LOG_MEL, AudioConfig
from .config import from_dict
from .errors import EmomixError
from .store_layout import CONFIG, EMOTIONS, MANIFEST, SPEAKERS, mel_path
from .text import SymbolTable


def pad_mels(mels: list[torch.Tensor], min_frames: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mels ``[n_mels, T_i]`` -> ``(mel [B, n_mels, max(T_max, min_frames)], lengths [B])``,
    padded with :data:`emomix_cli.audio.SILENCE_LOG_MEL` (see its comment); ``lengths`` are the true ``T_i``."""
    lengths = torch.tensor([m.shape[-1] for m in mels], dtype=torch.long)
    frames = max(int(lengths.max()), min_frames)
    out = mels[0].new_full((len(mels), mels[0].shape[0], frames), SILENCE_LOG_MEL)
    for i, mel in enumerate(mels):
        out[i, :, : mel.shape[-1]] = mel
    return out, lengths


class FeatureStore:
    """Read access to a feature store written by ``prep``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        hint = f"run `emomix prep --dataset ... SRC --out {self.root}` first"
        for name in (MANIFEST, CONFIG):
            if not (self.root / name).is_file():
                raise EmomixError(f"{self.root} is not an emomix feature store (no {name}): {hint}")
        try:
            config = yaml.safe_load((self.root / CONFIG).read_text(encoding="utf-8")) or {}
            self.audio: AudioConfig = from_dict(AudioConfig, config["audio"])
            self.symbols: SymbolTable = SymbolTable.from_dict(config["symbols"])
        except (yaml.YAMLError, KeyError, TypeError) as error:
            raise EmomixError(f"{self.root}/{CONFIG} is broken: {hint} again") from error
        self.dataset: str = str(config.get("dataset", ""))
        self._rows = self._read_manifest(hint)
        self.speakers: list[str] = self._names(SPEAKERS, "speaker")
        self.emotions: list[str] = self._names(EMOTIONS, "emotion")

    def _read_manifest(self, hint: str) -> list[dict]:
        rows = []
        path = self.root / MANIFEST
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise EmomixError(f"{path} line {number} is not valid JSON: {hint} again") from error
        return rows

    def _names(self, filename: str, key: str) -> list[str]:
        path = self.root / filename
        if path.is_file():
            return list(json.loads(path.read_text(encoding="utf-8")))
        return sorted({row[key] for row in self._rows})

    def __len__(self) -> int:
        return len(self._rows)

    def items(self, split: str | None = None) -> list[dict]:
        """Manifest rows (id, speaker, emotion, text, phonemes, wav, n_frames, split, ...)."""
        if split is None:
            return list(self._rows)
        if split not in ("train", "val", "test"):
            raise EmomixError(f"unknown split {split!r}; use train, val or test")
        return [row for row in self._rows if row["split"] == split]

    def mel(self, item_id: str) -> np.ndarray:
        """The log-mel float32 [n_mels, T] of utterance ``item_id``."""
        path = mel_path(self.root, item_id)
        if not path.is_file():
            raise EmomixError(f"mel {path} is missing; re-run `emomix prep ... --out {self.root}`")
        return np.load(path).astype(np.float32, copy=False)

    def tokens(self, item: dict) -> list[int]:
        return self.symbols.encode(item["phonemes"])


# ---------------------------------------------------------------- training data
class MelDataset(torch.utils.data.Dataset):
    """Utterances of one split as dict(id, mel[80,T], tokens[L], speaker, emotion).

    With ``with_tokens`` utterances without phonemes (no transcript) are left out.
    """

    def __init__(self, store: FeatureStore, split: str | None = "train", with_tokens: bool = True):
        self.store = store
        self.with_tokens = with_tokens
        items = store.items(split)
        self.items = [it for it in items if it.get("phonemes")] if with_tokens else items
        self.speaker_ids = {name: i for i, name in enumerate(store.speakers)}
        self.emotion_ids = {name: i for i, name in enumerate(store.emotions)}

    @property
    def lengths(self) -> list[int]:
        """Mel frames per item (from the manifest, no file reads): for the bucket sampler."""
        return [int(it["n_frames"]) for it in self.items]

    @property
    def labels(self) -> list[int]:
        """Emotion id per item: for the class-balanced sampler."""
        return [self.emotion_ids[it["emotion"]] for it in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        tokens = self.store.tokens(item) if self.with_tokens else []
        return {
            "id": item["id"],
            "mel": torch.from_numpy(self.store.mel(item["id"])),
            "tokens": torch.tensor(tokens, dtype=torch.long),
            "speaker": self.speaker_ids[item["speaker"]],
            "emotion": self.emotion_ids[item["emotion"]],
        }


def collate(batch: list[dict]) -> dict:
    """Pad a list of items: mel [B,80,Tmax] (:func:`pad_mels`), tokens [B,Lmax] (0 = pad
    symbol), with their lengths [B]."""
    mel, mel_lengths = pad_mels([b["mel"] for b in batch])
    token_lengths = torch.tensor([b["tokens"].shape[0] for b in batch], dtype=torch.long)
    tokens = torch.zeros(len(batch), int(token_lengths.max()), dtype=torch.long)
    for i, b in enumerate(batch):
        tokens[i, : b["tokens"].shape[0]] = b["tokens"]
    return {
        "ids": [b["id"] for b in batch],
        "mel": mel,
        "mel_lengths": mel_lengths,
        "tokens": tokens,
        "token_lengths": token_lengths,
        "speaker": torch.tensor([b["speaker"] for b in batch], dtype=torch.long),
        "emotion": torch.tensor([b["emotion"] for b in batch], dtype=torch.long),
    }


class _EpochBatchSampler(torch.utils.data.Sampler):
    """Shared epoch/rank handling: subclasses build the global batch list for an epoch."""

    def __init__(self, seed: int, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise EmomixError(f"rank {rank} is outside world size {world_size}")
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self, rng: np.random.Generator) -> list[list[int]]:
        raise NotImplementedError

    def _rank_batches(self) -> list[list[int]]:
        batches = self._batches(np.random.default_rng([self.seed, self.epoch]))
        if self.world_size > 1 and batches:
            # every rank gets the same number of batches (DDP steps in lockstep)
            per_rank = math.ceil(len(batches) / self.world_size)
            batches = (batches * self.world_size)[: per_rank * self.world_size]
            batches = batches[self.rank :: self.world_size]
        return batches

    def __iter__(self):
        return iter(self._rank_batches())

    def __len__(self) -> int:
        return len(self._rank_batches())


class LengthBucketSampler(_EpochBatchSampler):
    """Batches of indices of similar length (a ``batch_sampler``).

    Each epoch: shuffle, cut into pools of ``batch_size * bucket_size_multiplier``, sort each
    pool by length, cut into batches, shuffle the batch order. Every index appears once per
    epoch (``drop_last`` drops only the final short batch). With ``world_size > 1`` each rank
    takes every ``world_size``-th batch (batches repeated so all ranks get as many).
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 bucket_size_multiplier: int = 20, drop_last: bool = False, rank: int = 0,
                 world_size: int = 1):  # fmt: skip
        if batch_size < 1:
            raise EmomixError(f"batch size must be at least 1, got {batch_size}")
        super().__init__(seed, rank, world_size)
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.pool = batch_size * max(1, bucket_size_multiplier)

    def _batches(self, rng):
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pools = [order[i : i + self.pool] for i in range(0, n, self.pool)]
        flat = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pools]) if n else order
        batches = [flat[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches


class ClassBalancedSampler(_EpochBatchSampler):
    """Batches in which every class is equally likely (SER on unbalanced corpora).

    Each slot draws a class uniformly, then the next index of that class from a per-class
    shuffled queue (refilled when empty), so rare classes repeat and frequent ones rotate.
    ``num_batches`` defaults to ``ceil(len(labels) / batch_size)`` per epoch.
    """

    def __init__(self, labels: list[int], batch_size: int, seed: int = 0,
                 num_batches: int | None = None, rank: int = 0, world_size: int = 1):  # fmt: skip
        if batch_size < 1:
            raise EmomixError(f"batch size must be at least 1, got {batch_size}")
        super().__init__(seed, rank, world_size)
        self.batch_size = batch_size
        self.by_class: dict[int, np.ndarray] = {}
        labels = np.asarray(labels)
        for label in np.unique(labels):
            self.by_class[int(label)] = np.flatnonzero(labels == label)
        self.num_batches = num_batches or math.ceil(len(labels) / batch_size)

    def _batches(self, rng):
        if not self.by_class:
            return []
        classes = sorted(self.by_class)
        queues: dict[int, list[int]] = {c: [] for c in classes}
        batches = []
        for _ in range(self.num_batches):
            batch = []
            for c in rng.choice(classes, size=self.batch_size):
                if not queues[c]:
                    queues[c] = rng.permutation(self.by_class[c]).tolist()
                batch.append(queues[c].pop())
            batches.append(batch)
        return batches
