"""Where a feature store keeps its files (docs/DESIGN.md §3): ``prep`` writes them, ``datasets``
reads them, and both take the names from here.

    manifest.jsonl   one row per utterance (id, speaker, emotion, text, phonemes, split, ...)
    mels/<id>.npy    float32 log-mel [n_mels, T]
    config.yaml      dataset, audio config, symbol table
    speakers.json    sorted speaker names
    emotions.json    sorted emotion names
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.jsonl"
CONFIG = "config.yaml"
SPEAKERS = "speakers.json"
EMOTIONS = "emotions.json"
MELS = "mels"


def mel_path(root: str | Path, item_id: str) -> Path:
    """The mel file of utterance ``item_id`` in the store at ``root``."""
    return Path(root) / MELS / f"{item_id}.npy"
