"""RAVDESS (Livingstone & Russo 2018): 24 actors, two fixed statements, 8 emotions.

Layout: ``<root>/Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (modality, vocal channel, emotion,
intensity, statement, repetition, actor). Only speech (VV = 01) is read; song is skipped.
Split by actor: 23-24 test, 21-22 val, 1-20 train.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmomixError
from .base import (
    CorpusReadResult,
    Record,
    check_root,
    find_layout_root,
    safe_id,
    subdirs,
    wav_files,
    wav_problem,
)

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
SPEECH = "01"
TEST_ACTORS, VAL_ACTORS = {23, 24}, {21, 22}
EXPECTED = "<root>/Actor_XX/MM-VV-EE-II-SS-RR-AA.wav (e.g. Actor_01/03-01-05-01-02-01-01.wav)"

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^actor_\d+$", re.IGNORECASE)


def actor_split(actor: int) -> str:
    if actor in TEST_ACTORS:
        return "test"
    if actor in VAL_ACTORS:
        return "val"
    return "train"


def _has_actors(folder: Path) -> bool:
    return any(_ACTOR_DIR.match(d.name) for d in subdirs(folder))


def parse_name(stem: str) -> dict[str, str] | str:
    """The fields of a RAVDESS file name, or a string saying what is wrong with it."""
    match = _NAME.match(stem)
    if match is None:
        return "name is not MM-VV-EE-II-SS-RR-AA"
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if emotion not in EMOTIONS:
        return f"unknown emotion code {emotion}"
    if intensity not in INTENSITIES:
        return f"unknown intensity code {intensity}"
    if statement not in STATEMENTS:
        return f"unknown statement code {statement}"
    return {
        "modality": modality,
        "channel": channel,
        "emotion": emotion,
        "intensity": intensity,
        "statement": statement,
        "repetition": repetition,
        "actor": actor,
    }


def read_ravdess(root: str | Path) -> CorpusReadResult:
    """The RAVDESS speech utterances under ``root`` (song files are skipped)."""
    root = check_root(root, "RAVDESS", EXPECTED)
    layout_root = find_layout_root(root, _has_actors)
    if layout_root is None:
        raise EmomixError(
            f"no RAVDESS actor folders found under {root}: expected {EXPECTED.replace('<root>', str(root))}"
        )
    records: list[Record] = []
    warnings: list[str] = []
    for folder in (d for d in subdirs(layout_root) if _ACTOR_DIR.match(d.name)):
        for wav in wav_files(folder):
            fields = parse_name(wav.stem)
            problem = fields if isinstance(fields, str) else wav_problem(wav)
            if problem:
                warnings.append(f"RAVDESS {folder.name}/{wav.name}: {problem}; skipped")
                continue
            if fields["channel"] != SPEECH:
                continue  # song
            actor = int(fields["actor"])
            records.append(
                Record(
                    id=safe_id(wav.stem),
                    wav=wav,
                    text=STATEMENTS[fields["statement"]],
                    speaker=f"Actor_{actor:02d}",
                    emotion=EMOTIONS[fields["emotion"]],
                    split=actor_split(actor),
                    extra={
                        "intensity": INTENSITIES[fields["intensity"]],
                        "repetition": int(fields["repetition"]),
                        "gender": "male" if actor % 2 else "female",
                    },
                )
            )
    if not records:
        first = f"; first problem: {warnings[0]}" if warnings else ""
        raise EmomixError(f"no RAVDESS speech wavs (vocal channel 01) under {layout_root}{first}")
    return CorpusReadResult(records=sorted(records, key=lambda r: r.id), warnings=warnings)
