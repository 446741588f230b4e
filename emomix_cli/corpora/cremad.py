"""CREMA-D (Cao et al. 2014): 91 actors (1001-1091), 12 sentences, 6 emotions.

Layout: ``<root>/AudioWAV/AAAA_SSS_EEE_LL.wav`` (actor, sentence, emotion, level), or the
wavs directly in ``<root>``. Split by actor, stable and ~80/10/10: the actor's number modulo
10 (1009, 1019, ... val; 1010, 1020, ... test).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmomixError
from .base import CorpusReadResult, Record, check_root, safe_id, wav_files, wav_problem

SENTENCES = {
    "IEO": "It's eleven o'clock.",
    "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
EXPECTED = "<root>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav (e.g. 1001_DFA_ANG_XX.wav)"

_NAME = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")


def actor_split(actor: int) -> str:
    position = (actor - 1001) % 10
    if position == 8:
        return "val"
    if position == 9:
        return "test"
    return "train"


def parse_name(stem: str) -> tuple[int, str, str, str] | str:
    """``(actor, sentence, emotion, level)`` codes of a CREMA-D name, or what is wrong with it."""
    match = _NAME.match(stem)
    if match is None:
        return "name is not AAAA_SSS_EEE_LL"
    actor, sentence, emotion, level = match.group(1), *(g.upper() for g in match.groups()[1:])
    for code, table, what in (
        (sentence, SENTENCES, "sentence"),
        (emotion, EMOTIONS, "emotion"),
        (level, LEVELS, "level"),
    ):
        if code not in table:
            return f"unknown {what} code {code}"
    return int(actor), sentence, emotion, level


def _wav_folder(root: Path) -> Path | None:
    for folder in (root / "AudioWAV", root):
        if folder.is_dir() and any(_NAME.match(w.stem) for w in wav_files(folder)):
            return folder
    return None


def read_cremad(root: str | Path) -> CorpusReadResult:
    """All CREMA-D utterances under ``root`` (empty files are reported and skipped)."""
    root = check_root(root, "CREMA-D", EXPECTED)
    folder = _wav_folder(root)
    if folder is None:
        raise EmomixError(
            f"no CREMA-D wavs found under {root}: expected {EXPECTED.replace('<root>', str(root))}"
        )
    records: list[Record] = []
    warnings: list[str] = []
    for wav in wav_files(folder):
        fields = parse_name(wav.stem)
        problem = fields if isinstance(fields, str) else wav_problem(wav)
        if problem:
            warnings.append(f"CREMA-D {wav.name}: {problem}; skipped")
            continue
        actor, sentence, emotion, level = fields
        records.append(
            Record(
                id=safe_id(wav.stem),
                wav=wav,
                text=SENTENCES[sentence],
                speaker=str(actor),
                emotion=EMOTIONS[emotion],
                split=actor_split(actor),
                extra={"intensity": LEVELS[level], "sentence": sentence},
            )
        )
    if not records:
        raise EmomixError(f"no usable CREMA-D wavs under {folder}; first problem: {warnings[0]}")
    return CorpusReadResult(records=sorted(records, key=lambda r: r.id), warnings=warnings)
