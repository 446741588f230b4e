"""Move a feature store to another machine compactly: pack to one .npz, unpack back.

    python recipes/demo/pack_features.py pack data/demo/features store.npz
    python recipes/demo/pack_features.py unpack store.npz data/demo/features

Mels are stored as 8-bit codes with a per-utterance offset and scale (step ≈ 0.05 in log
amplitude, i.e. under ±3 % amplitude error); the manifest, configs and lists travel as text.
Used to ship the 3000-utterance demo store (178 MB of float32) to a GPU box in ~40 MB.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TEXT_FILES = ("manifest.jsonl", "config.yaml", "speakers.json", "emotions.json")


def pack(store: Path, out: Path) -> None:
    rows = [json.loads(line) for line in (store / "manifest.jsonl").read_text().splitlines() if line]
    codes, offsets, scales, lengths = [], [], [], []
    for row in rows:
        mel = np.load(store / "mels" / f"{row['id']}.npy")
        low, high = float(mel.min()), float(mel.max())
        scale = max(high - low, 1e-6) / 255.0
        codes.append(np.round((mel - low) / scale).astype(np.uint8))
        offsets.append(low)
        scales.append(scale)
        lengths.append(mel.shape[1])
    np.savez_compressed(
        out,
        codes=np.concatenate(codes, axis=1),
        offsets=np.array(offsets, dtype=np.float64),
        scales=np.array(scales, dtype=np.float64),
        lengths=np.array(lengths),
        ids=np.array([row["id"] for row in rows]),
        **{name: np.array((store / name).read_text()) for name in TEXT_FILES},
    )


def unpack(packed: Path, store: Path) -> None:
    data = np.load(packed)
    (store / "mels").mkdir(parents=True, exist_ok=True)
    for name in TEXT_FILES:
        (store / name).write_text(str(data[name]))
    all_codes = data["codes"]  # decompress once
    start = 0
    for item_id, length, low, scale in zip(data["ids"], data["lengths"], data["offsets"], data["scales"], strict=True):
        code = all_codes[:, start : start + length]
        np.save(store / "mels" / f"{item_id}.npy", (code.astype(np.float32) * scale + low).astype(np.float32))
        start += length


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(Path(sys.argv[2]), Path(sys.argv[3]))
