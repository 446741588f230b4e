"""Any other corpus, described by a manifest: CSV with a header row, or JSON lines.

Columns: ``wav, text, speaker, emotion`` (required), ``split``, ``language``, ``id``
(optional); any other column goes into ``Record.extra``. ``path`` is the manifest file or a
folder holding ``manifest.jsonl`` or ``manifest.csv``. Relative wav paths resolve against the
manifest's folder. Without a split, a hash of the wav path gives a stable 90/5/5 split.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import EmomixError
from .base import (
    CorpusReadResult,
    Record,
    canonical_emotion,
    canonical_split,
    decode_text,
    hash_split,
    make_unique,
    safe_id,
    wav_problem,
)

REQUIRED = ("wav", "text", "speaker", "emotion")
OPTIONAL = ("split", "language", "id")
NAMES = ("manifest.jsonl", "manifest.csv")
EXPECTED = "a .csv (header wav,text,speaker,emotion[,split][,language]) or .jsonl file, or a folder holding manifest.jsonl or manifest.csv"


def find_manifest(path: str | Path) -> Path:
    """The manifest file named by ``path`` (a file, or a folder holding one)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in NAMES:
            if (path / name).is_file():
                return path / name
        raise EmomixError(f"no manifest.jsonl or manifest.csv in {path}: expected {EXPECTED}")
    if not path.is_file():
        raise EmomixError(f"manifest {path} does not exist: expected {EXPECTED}")
    return path


def _csv_rows(text: str, where: str) -> tuple[list[tuple[int, dict]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise EmomixError(
            f"manifest {where} has no '{missing[0]}' column (header: {','.join(header) or 'empty'}): "
            f"the first row must name the columns {','.join(REQUIRED)}[,split][,language]"
        )
    reader.fieldnames = header
    rows, warnings = [], []
    for row in reader:
        number = reader.line_num
        if None in row or any(row[c] is None for c in header):
            warnings.append(f"{where} line {number}: expected {len(header)} fields; row skipped")
            continue
        rows.append((number, row))
    return rows, warnings


def _jsonl_rows(text: str, where: str) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, warnings = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            warnings.append(f"{where} line {number}: not valid JSON ({error.msg}); row skipped")
            continue
        if not isinstance(row, dict):
            warnings.append(f"{where} line {number}: expected a JSON object; row skipped")
            continue
        rows.append((number, {str(k).strip().lower(): v for k, v in row.items()}))
    present = set().union(*(row.keys() for _, row in rows)) if rows else set()
    missing = [c for c in REQUIRED if c not in present]
    if rows and missing:
        raise EmomixError(
            f"manifest {where} has no '{missing[0]}' field in any row: every line must hold "
            f"{', '.join(REQUIRED)} (optional: split, language)"
        )
    return rows, warnings


def _record(row: dict, folder: Path) -> Record | str:
    """A record from one manifest row, or why the row cannot be used."""
    values = {k: ("" if v is None else str(v).strip()) for k, v in row.items()}
    empty = [c for c in REQUIRED if not values.get(c)]
    if empty:
        return f"empty or missing {', '.join(empty)}"
    wav = Path(values["wav"]).expanduser()
    wav = wav if wav.is_absolute() else folder / wav
    problem = wav_problem(wav)
    if problem:
        return f"{values['wav']}: {problem}"
    split = values.get("split", "")
    if split and canonical_split(split) is None:
        return f"unknown split {split!r} (use train, val or test)"
    extra = {k: v for k, v in row.items() if k not in REQUIRED + OPTIONAL}
    return Record(
        id=safe_id(values.get("id") or wav.stem),
        wav=wav,
        text=values["text"],
        speaker=values["speaker"],
        emotion=canonical_emotion(values["emotion"]),
        split=canonical_split(split) if split else hash_split(values["wav"]),
        language=(values.get("language") or "en").lower(),
        extra=extra,
    )


def read_manifest(path: str | Path) -> CorpusReadResult:
    """The utterances listed in a CSV or JSONL manifest (broken rows become warnings)."""
    manifest = find_manifest(path)
    text, _ = decode_text(manifest.read_bytes())
    text = text.lstrip("\ufeff")
    where = str(manifest)
    is_csv = manifest.suffix.lower() == ".csv" or (
        manifest.suffix.lower() != ".jsonl" and not text.lstrip().startswith("{")
    )
    rows, warnings = (_csv_rows if is_csv else _jsonl_rows)(text, where)
    records: list[Record] = []
    for number, row in rows:
        result = _record(row, manifest.parent)
        if isinstance(result, str):
            warnings.append(f"{where} line {number}: {result}; row skipped")
        else:
            records.append(result)
    if not records:
        first = f"; first problem: {warnings[0]}" if warnings else ""
        raise EmomixError(f"manifest {where} lists no usable utterances{first}")
    for record, unique in zip(records, make_unique(r.id for r in records), strict=True):
        record.id = unique
    return CorpusReadResult(records=records, warnings=warnings)
