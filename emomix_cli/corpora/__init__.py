"""Corpus readers: one per corpus, each turning a folder into a list of :class:`Record`.

``read_corpus("esd", root, speakers=["0011"])`` is the one entry point; ``READERS`` maps the
names to the reader functions. Readers only list files and check that they exist; ``prep``
reads the audio.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ..errors import EmomixError
from .base import CorpusReadResult, Reader, Record, make_unique
from .cremad import read_cremad
from .esd import read_esd
from .iemocap import read_iemocap
from .manifest import read_manifest
from .ravdess import read_ravdess

__all__ = ["READERS", "CorpusReadResult", "Record", "read_corpus", "reader_options"]

READERS: dict[str, Reader] = {
    "esd": read_esd,
    "iemocap": read_iemocap,
    "ravdess": read_ravdess,
    "cremad": read_cremad,
    "manifest": read_manifest,
}


def reader_options(name: str) -> list[str]:
    """The keyword options reader ``name`` accepts (besides the root)."""
    parameters = list(inspect.signature(READERS[name]).parameters)
    return parameters[1:]


def read_corpus(name: str, root: str | Path, **options) -> CorpusReadResult:
    """Records of corpus ``name`` under ``root``; EmomixError for a wrong name, option or layout.

    Options set to ``None`` are dropped, so a CLI can pass every flag it has.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in READERS:
        raise EmomixError(f"unknown corpus reader {name!r}: choose one of {', '.join(READERS)}")
    known = reader_options(key)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise EmomixError(
            f"the {key} reader has no option {unknown[0]!r}: its options are {', '.join(known) or 'none'}"
        )
    result = READERS[key](Path(root), **given)
    _check_unique_ids(result, key)
    return result


def _check_unique_ids(result: CorpusReadResult, name: str) -> None:
    """Every id once: a repeat (an odd copy of a corpus) is renamed and reported."""
    ids = [record.id for record in result.records]
    if len(set(ids)) == len(ids):
        return
    for record, unique in zip(result.records, make_unique(ids), strict=True):
        if unique != record.id:
            result.warnings.append(
                f"{name}: id {record.id} repeats ({record.wav}); renamed {unique}"
            )
            record.id = unique
