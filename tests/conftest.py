"""Shared fixtures: a tiny feature store and a tone wav, built in a temp dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

torch.set_num_threads(int(os.environ.get("EMOMIX_TEST_THREADS", "1")))

PHRASES = [
    "həlˈoʊ wˈɜːld.",
    "ðɪs ɪz ɐ tˈɛst!",
    "ˈaɪ lˈaɪk ɡɹˈiːn tˈiː.",
    "wˈɛɹ ɪz ðə kˈæt?",
    "ʃiː sˈɛd nˈoʊ, θˈæŋk juː.",
    "ɪt ɹˈeɪnd ˈɔːl dˈeɪ.",
    "ðə bˈʌs ɪz lˈeɪt.",
    "lˈɛts ɡˈoʊ hˈoʊm.",
]
EMOTION_BANDS = {"angry": (45, 65), "neutral": (15, 30), "sad": (2, 12)}


def make_tiny_store(root: Path, n_per_class: int = 8, seed: int = 0) -> Path:
    """A feature store (docs/DESIGN.md §3) of synthetic mels whose spectrum depends on the emotion."""
    from emomix_cli.audio import AudioConfig
    from emomix_cli.config import save_yaml, to_dict
    from emomix_cli.text import default_symbol_table

    rng = np.random.default_rng(seed)
    (root / "mels").mkdir(parents=True, exist_ok=True)
    speakers, emotions = ["spk_a", "spk_b"], sorted(EMOTION_BANDS)
    rows = []
    for speaker in speakers:
        for emotion in emotions:
            lo, hi = EMOTION_BANDS[emotion]
            for index in range(n_per_class):
                frames = int(rng.integers(40, 91))
                mel = rng.normal(-7.0, 0.7, size=(80, frames))
                mel[lo:hi] += 4.0 + np.sin(np.arange(frames) / (3 + index % 3))[None, :]
                if speaker == "spk_b":
                    mel[70:78] += 1.5
                item_id = f"{speaker}_{emotion}_{index:02d}"
                np.save(root / "mels" / f"{item_id}.npy", mel.astype(np.float32))
                split = "train" if index < n_per_class - 2 else ("val" if index == n_per_class - 2 else "test")
                rows.append(
                    {
                        "id": item_id,
                        "speaker": speaker,
                        "emotion": emotion,
                        "text": "synthetic",
                        "phonemes": PHRASES[index % len(PHRASES)],
                        "wav": "",
                        "n_frames": frames,
                        "split": split,
                        "language": "en",
                    }
                )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    save_yaml(root / "config.yaml", {"dataset": "tiny", "audio": to_dict(AudioConfig()), "symbols": default_symbol_table().to_dict()})
    (root / "speakers.json").write_text(json.dumps(speakers))
    (root / "emotions.json").write_text(json.dumps(emotions))
    return root


@pytest.fixture
def tiny_store(tmp_path) -> Path:
    return make_tiny_store(tmp_path / "features")


@pytest.fixture
def tiny_wav(tmp_path) -> Path:
    t = np.arange(22050) / 22050
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    return path
