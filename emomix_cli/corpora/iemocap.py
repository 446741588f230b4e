"""IEMOCAP (Busso et al. 2008): 5 sessions, each one female and one male actor.

Layout::

    <root>/Session<N>/sentences/wav/<dialog>/<utterance>.wav
    <root>/Session<N>/dialog/EmoEvaluation/<dialog>.txt
        "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5000, 2.5000, 2.5000]"
    <root>/Session<N>/dialog/transcriptions/<dialog>.txt
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."

The usual 4 classes: ang, hap + exc (merged), neu, sad; ``keep_exc`` keeps exc as "excited".
Split by session: ``test_sessions`` -> test, a stable ~5% of the rest -> val, the rest train.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import EmomixError
from .base import (
    CorpusReadResult,
    Record,
    check_root,
    find_layout_root,
    hash_bucket,
    read_lines,
    safe_id,
    subdirs,
    visible,
    wav_problem,
)

LABELS = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}
VAL_PERCENT = 5
EXPECTED = "<root>/Session1..5/sentences/wav/<dialog>/<utterance>.wav and <root>/Session<N>/dialog/EmoEvaluation/<dialog>.txt"

_SESSION = re.compile(r"^session(\d+)$", re.IGNORECASE)
_LABEL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s*(.*)$")
_SPEAKER = re.compile(r"^Ses(\d{2})[FM]_.*_([FM])\w{3}$")


def speaker_of(utterance: str) -> str | None:
    """``Ses01F_impro01_M003`` -> ``Ses01M``: the session plus the gender of the turn's speaker."""
    match = _SPEAKER.match(utterance)
    return f"Ses{match.group(1)}{match.group(2)}" if match else None


def _session_number(folder: Path) -> int | None:
    match = _SESSION.match(folder.name)
    return int(match.group(1)) if match else None


def _has_sessions(folder: Path) -> bool:
    return any(_session_number(d) is not None for d in subdirs(folder))


def _text_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and visible(p))


def parse_labels(path: Path, where: str) -> tuple[dict[str, str], list[str]]:
    """``{utterance: raw label}`` from one EmoEvaluation file, plus warnings for broken lines."""
    labels: dict[str, str] = {}
    warnings = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.startswith("["):
            continue  # header, evaluator lines ("C-E1: ..."), blanks
        match = _LABEL_LINE.match(line)
        if match is None:
            warnings.append(
                f"{where} line {number}: expected '[start - end]<TAB>utterance<TAB>label<TAB>[v, a, d]', got {line[:60]!r}"
            )
            continue
        labels[match.group(3)] = match.group(4).lower()
    return labels, warnings


def parse_transcriptions(folder: Path) -> dict[str, str]:
    """``{utterance: text}`` from every file in a ``transcriptions`` folder."""
    texts: dict[str, str] = {}
    for path in _text_files(folder):
        for line in read_lines(path):
            match = _TRANSCRIPT_LINE.match(line.strip())
            if match and match.group(2).strip():
                texts[match.group(1)] = match.group(2).strip()
    return texts


def _label_map(keep_exc: bool) -> dict[str, str]:
    return {**LABELS, "exc": "excited"} if keep_exc else LABELS


def _read_session(
    folder: Path, root: Path, labels_wanted: dict[str, str], improvised_only: bool, is_test: bool
):
    records: list[Record] = []
    warnings: list[str] = []
    label_files = _text_files(folder / "dialog" / "EmoEvaluation")
    if not label_files:
        return [], [
            f"IEMOCAP {folder.name}: no label files in dialog/EmoEvaluation/*.txt; session skipped"
        ]
    texts = parse_transcriptions(folder / "dialog" / "transcriptions")
    for path in label_files:
        labels, problems = parse_labels(path, str(path.relative_to(root)))
        warnings.extend(problems)
        for utterance, raw in labels.items():
            emotion = labels_wanted.get(raw)
            dialog = utterance.rsplit("_", 1)[0]
            if emotion is None or (improvised_only and "_impro" not in dialog):
                continue
            wav = folder / "sentences" / "wav" / dialog / f"{utterance}.wav"
            speaker = speaker_of(utterance)
            problem = (
                wav_problem(wav)
                or (None if speaker else "cannot tell the speaker from the name")
                or (
                    None if utterance in texts else f"no line in dialog/transcriptions/{dialog}.txt"
                )
            )
            if problem:
                warnings.append(f"IEMOCAP {utterance}: {problem}; skipped")
                continue
            split = (
                "test" if is_test else ("val" if hash_bucket(utterance) < VAL_PERCENT else "train")
            )
            records.append(
                Record(
                    id=safe_id(utterance),
                    wav=wav,
                    text=texts[utterance],
                    speaker=speaker,
                    emotion=emotion,
                    split=split,
                    extra={"label": raw, "dialog": dialog},
                )
            )
    return records, warnings


def _test_session_numbers(test_sessions: Iterable[int] | int | str | None) -> set[int]:
    if test_sessions is None:
        return set()
    if isinstance(test_sessions, (int, str)):
        test_sessions = str(test_sessions).replace(",", " ").split()
    try:
        return {int(s) for s in test_sessions}
    except (TypeError, ValueError):
        raise EmomixError(
            f"IEMOCAP test_sessions must be session numbers like [5], got {test_sessions!r}"
        ) from None


def read_iemocap(
    root: str | Path,
    keep_exc: bool = False,
    improvised_only: bool = False,
    test_sessions: Iterable[int] | int | str | None = (5,),
) -> CorpusReadResult:
    """The 4-class (5 with ``keep_exc``) IEMOCAP utterances under ``root``."""
    root = check_root(root, "IEMOCAP", EXPECTED)
    layout_root = find_layout_root(root, _has_sessions)
    if layout_root is None:
        raise EmomixError(
            f"no IEMOCAP session folders found under {root}: expected {EXPECTED.replace('<root>', str(root))}"
        )
    tests = _test_session_numbers(test_sessions)
    sessions = [(n, d) for d in subdirs(layout_root) if (n := _session_number(d)) is not None]
    labels_wanted = _label_map(keep_exc)
    records: list[Record] = []
    warnings: list[str] = []
    for number, folder in sessions:
        found, problems = _read_session(
            folder, layout_root, labels_wanted, improvised_only, number in tests
        )
        records.extend(found)
        warnings.extend(problems)
    missing = sorted(tests - {n for n, _ in sessions})
    if missing:
        warnings.append(
            f"IEMOCAP test session(s) {missing} not found under {layout_root}; fewer test utterances"
        )
    if not records:
        first = f"; first problem: {warnings[0]}" if warnings else ""
        raise EmomixError(f"no usable IEMOCAP utterances under {layout_root}{first}")
    return CorpusReadResult(records=sorted(records, key=lambda r: r.id), warnings=warnings)
