"""ESD (Emotional Speech Dataset, Zhou et al. 2021): 10 Mandarin + 10 English speakers.

Layouts accepted (both may appear in one copy)::

    <root>/<spk>/<Emotion>/{train,evaluation,test}/<spk>_<idx>.wav   (the official release)
    <root>/<spk>/<Emotion>/<spk>_<idx>.wav                           (flat)
    <root>/<spk>/<spk>.txt   lines "<spk>_<idx>\\t<text>\\t<emotion>", any encoding

The emotion comes from the folder; the split from the split folder or, in the flat layout,
from ESD's standard split of every 350-utterance emotion block: the first 20 utterances are
"evaluation" (val), the next 30 test, the last 300 train.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmomixError
from .base import (
    CorpusReadResult,
    Record,
    canonical_split,
    check_root,
    find_layout_root,
    has_cjk,
    hash_split,
    read_lines,
    safe_id,
    subdirs,
    wav_files,
)

EMOTIONS = {
    "angry": "angry",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprise",
}
LANGUAGES = ("en", "zh")
BLOCK = 350  # utterances per emotion and speaker
VAL_PER_BLOCK, TEST_PER_BLOCK = 20, 30

EXPECTED = "<root>/<speaker>/<Emotion>/*.wav (or .../<Emotion>/{train,evaluation,test}/*.wav) and <root>/<speaker>/<speaker>.txt"
_ID_THEN_TEXT = re.compile(r"^(\d{4}_\d{6})\s+(.+)$")
# The emotion column, written in English (English speakers) or Chinese (Mandarin speakers).
_LABELS = {"neutral", "angry", "happy", "sad", "surprise", "中立", "生气", "快乐", "伤心", "惊喜"}


def standard_split(index: int) -> str:
    """ESD's split of utterance number ``index`` (1-based, counted over all emotions)."""
    position = (index - 1) % BLOCK
    if position < VAL_PER_BLOCK:
        return "val"
    if position < VAL_PER_BLOCK + TEST_PER_BLOCK:
        return "test"
    return "train"


def speaker_language(speaker: str, sample_text: str = "") -> str:
    """ESD speakers 0001-0010 speak Mandarin, 0011-0020 English; others: guessed from text."""
    if speaker.isdigit() and 1 <= int(speaker) <= 20:
        return "zh" if int(speaker) <= 10 else "en"
    return "zh" if has_cjk(sample_text) else "en"


def _is_speaker_dir(folder: Path) -> bool:
    return any(d.name.lower() in EMOTIONS for d in subdirs(folder))


def _has_speakers(folder: Path) -> bool:
    return any(_is_speaker_dir(d) for d in subdirs(folder))


def parse_transcript(path: Path, where: str) -> tuple[dict[str, str], list[str]]:
    """``{utterance id: text}`` of an ESD transcript, plus one warning per broken line."""
    texts: dict[str, str] = {}
    warnings = []
    for number, raw in enumerate(read_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < 2:  # some copies use spaces; accept "<id> <text> [<emotion>]"
            match = _ID_THEN_TEXT.match(line)
            fields = [match.group(1), *match.group(2).rsplit(None, 1)] if match else fields
            if len(fields) == 3 and fields[2].lower() not in _LABELS:
                fields = [fields[0], f"{fields[1]} {fields[2]}"]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            warnings.append(
                f"{where} line {number}: expected '<id>\\t<text>\\t<emotion>', got {line[:60]!r}"
            )
            continue
        utt, text = fields[0], fields[1]
        if utt in texts:
            warnings.append(f"{where} line {number}: duplicate id {utt}; keeping the first line")
            continue
        texts[utt] = text
    return texts, warnings


def _normalise_speakers(speakers: list[str] | str | None) -> list[str] | None:
    if speakers is None:
        return None
    if isinstance(speakers, (str, int)):
        speakers = [s for s in str(speakers).replace(",", " ").split()]
    names = [str(s).strip() for s in speakers if str(s).strip()]
    return [s.zfill(4) if s.isdigit() else s for s in names]


def _wavs_with_split(emotion_dir: Path) -> list[tuple[Path, str | None]]:
    """(wav, split folder's split or None for the flat layout) under one emotion folder."""
    found: list[tuple[Path, str | None]] = [(w, None) for w in wav_files(emotion_dir)]
    for child in subdirs(emotion_dir):
        split = canonical_split(child.name)
        if split is not None:
            found.extend((w, split) for w in wav_files(child))
    return found


def _flat_split(stem: str) -> str:
    tail = stem.rsplit("_", 1)[-1]
    return standard_split(int(tail)) if tail.isdigit() and int(tail) > 0 else hash_split(stem)


def _read_speaker(folder: Path, root: Path, language: str | None) -> tuple[list[Record], list[str]]:
    speaker = folder.name
    transcript = folder / f"{speaker}.txt"
    emotion_dirs = [d for d in subdirs(folder) if d.name.lower() in EMOTIONS]
    wavs = [(w, s, d.name.lower()) for d in emotion_dirs for w, s in _wavs_with_split(d)]
    if not transcript.is_file():
        return [], [
            f"ESD speaker {speaker}: transcript {transcript.relative_to(root)} not found; its {len(wavs)} wavs skipped"
        ]
    texts, warnings = parse_transcript(transcript, str(transcript.relative_to(root)))
    spoken = speaker_language(speaker, next(iter(texts.values()), ""))
    if language is not None and spoken != language:
        return [], []
    records: list[Record] = []
    seen: set[str] = set()
    for wav, split, emotion in wavs:
        utt = wav.stem
        if utt not in texts:
            warnings.append(
                f"ESD {wav.relative_to(root)}: no line for {utt} in {transcript.name}; skipped"
            )
            continue
        record_id = safe_id(utt)
        if record_id in seen:
            warnings.append(
                f"ESD {wav.relative_to(root)}: {utt} appears twice (flat and split folders?); keeping the first"
            )
            continue
        seen.add(record_id)
        records.append(
            Record(
                id=record_id,
                wav=wav,
                text=texts[utt],
                speaker=speaker,
                emotion=EMOTIONS[emotion],
                split=split or _flat_split(utt),
                language=spoken,
            )
        )
    return records, warnings


def read_esd(
    root: str | Path,
    speakers: list[str] | str | None = None,
    language: str | None = None,
) -> CorpusReadResult:
    """All ESD utterances under ``root``, optionally only some speakers or one language."""
    root = check_root(root, "ESD", EXPECTED)
    if language is not None and language not in LANGUAGES:
        raise EmomixError(f"ESD language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    layout_root = find_layout_root(root, _has_speakers)
    if layout_root is None:
        raise EmomixError(
            f"no ESD speaker folders found under {root}: expected {EXPECTED.replace('<root>', str(root))}"
        )
    folders = [d for d in subdirs(layout_root) if _is_speaker_dir(d)]
    wanted = _normalise_speakers(speakers)
    if wanted is not None:
        present = {d.name for d in folders}
        unknown = [s for s in wanted if s not in present]
        if unknown:
            raise EmomixError(
                f"ESD speaker(s) {', '.join(unknown)} not found under {layout_root}; "
                f"available: {', '.join(sorted(present))}"
            )
        folders = [d for d in folders if d.name in wanted]
    records: list[Record] = []
    warnings: list[str] = []
    for folder in folders:
        found, problems = _read_speaker(folder, layout_root, language)
        records.extend(found)
        warnings.extend(problems)
    if not records:
        filters = f" (speakers={wanted}, language={language})" if wanted or language else ""
        first = f"; first problem: {warnings[0]}" if warnings else ""
        raise EmomixError(f"no usable ESD utterances under {layout_root}{filters}{first}")
    return CorpusReadResult(records=sorted(records, key=lambda r: r.id), warnings=warnings)
