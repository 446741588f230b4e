"""What every corpus reader shares: the record type, ids, splits, emotions and text decoding.

Readers list utterances; they never read audio (``prep`` does). They only check that files
exist, and report recoverable problems (a broken transcript line, a wav without a label) as
warnings instead of failing the whole corpus.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmomixError

SPLITS = ("train", "val", "test")

# Spellings seen in corpora and hand-made manifests, mapped to the canonical lowercase names.
EMOTION_ALIASES = {
    "neu": "neutral",
    "neutral": "neutral",
    "ang": "angry",
    "anger": "angry",
    "angry": "angry",
    "hap": "happy",
    "happiness": "happy",
    "happy": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sur": "surprise",
    "surprise": "surprise",
    "surprised": "surprise",
    "fea": "fear",
    "fear": "fear",
    "fearful": "fear",
    "dis": "disgust",
    "disgust": "disgust",
    "disgusted": "disgust",
    "calm": "calm",
}

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "eval": "val",
    "evaluation": "val",
    "test": "test",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class Record:
    """One utterance of a corpus, as the readers hand it to ``prep``."""

    id: str  # unique, filesystem-safe ([A-Za-z0-9_.-])
    wav: Path
    text: str
    speaker: str
    emotion: str  # canonical lowercase
    split: str  # train | val | test
    language: str = "en"  # en | zh
    extra: dict = field(default_factory=dict)  # e.g. {"intensity": "strong"}


@dataclass
class CorpusReadResult:
    """The records of a corpus plus one warning per recoverable problem (broken line, ...)."""

    records: list[Record]
    warnings: list[str]

    def counts(self, key: str) -> dict[str, int]:
        """Records per value of ``key`` ("split", "emotion", "speaker", "language"), sorted."""
        return dict(sorted(Counter(getattr(r, key) for r in self.records).items()))


Reader = Callable[..., CorpusReadResult]


def safe_id(name: str) -> str:
    """``name`` reduced to ``[A-Za-z0-9_.-]`` (runs of other characters become one ``_``)."""
    cleaned = _UNSAFE.sub("_", name.strip()).strip("._")  # no hidden files, no "." or ".."
    return cleaned or "utt"


def make_unique(ids: Iterable[str]) -> list[str]:
    """The ids in order; a repeated id gets the first free ``_2``, ``_3``, ... suffix.

    A suffixed id never takes a name that another record has on its own (``a, a, a_2`` ->
    ``a, a_3, a_2``), so ids that were already unique never change.
    """
    ids = list(ids)
    originals = set(ids)
    used: set[str] = set()
    result = []
    for name in ids:
        candidate, n = name, 1
        while candidate in used or (candidate != name and candidate in originals):
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate)
        result.append(candidate)
    return result


def hash_bucket(key: str, buckets: int = 100) -> int:
    """A stable bucket in ``[0, buckets)`` from ``key`` (md5, so identical across runs/machines)."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


def hash_split(key: str, val_percent: int = 5, test_percent: int = 5) -> str:
    """Deterministic train/val/test from a hash of ``key`` (default 90/5/5)."""
    bucket = hash_bucket(key)
    if bucket < val_percent:
        return "val"
    if bucket < val_percent + test_percent:
        return "test"
    return "train"


def canonical_emotion(name: str) -> str:
    """Lowercase emotion name, common spellings mapped (``Angry``/``ang`` -> ``angry``)."""
    lowered = name.strip().lower()
    return EMOTION_ALIASES.get(lowered, lowered)


def canonical_split(name: str) -> str | None:
    """``train``/``val``/``test`` for the usual spellings (``evaluation`` -> ``val``); else None."""
    return SPLIT_ALIASES.get(name.strip().lower())


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


# ---------------------------------------------------------------- text files
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# gb2312 before gbk: its stricter byte ranges reject most Latin-1 text that gbk would accept.
_FALLBACKS = ("utf-8", "gb2312", "gbk", "cp1252", "latin-1")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode transcript bytes of unknown encoding; returns ``(text, encoding)``.

    BOM first; then UTF-16 without BOM (detected by its NUL bytes); then utf-8, gb2312, gbk,
    cp1252 and latin-1 (which never fails).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        odd_nuls = data[1::2].count(0)
        even_nuls = data[0::2].count(0)
        guess = "utf-16-le" if odd_nuls >= even_nuls else "utf-16-be"
        try:
            return data.decode(guess), guess
        except UnicodeDecodeError:
            pass
    for encoding in _FALLBACKS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def read_lines(path: Path) -> list[str]:
    """The lines of a text file in whatever encoding it is (BOM and line ends removed)."""
    text, _ = decode_text(path.read_bytes())
    return text.lstrip("\ufeff").splitlines()


# ---------------------------------------------------------------- files and folders
def visible(path: Path) -> bool:
    """False for hidden files and macOS ``._`` resource forks that sit beside real files."""
    return not path.name.startswith(".")


def subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def wav_files(folder: Path) -> list[Path]:
    """The ``*.wav`` files (any case) directly inside ``folder``, sorted."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and visible(p) and p.suffix.lower() == ".wav"
    )


def check_root(root: str | Path, corpus: str, expected: str) -> Path:
    """``root`` as an existing folder, or an EmomixError saying what was expected there."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise EmomixError(
            f"{corpus} folder {path} does not exist or is not a folder: expected {expected}"
        )
    return path


def find_layout_root(root: Path, looks_right: Callable[[Path], bool]) -> Path | None:
    """``root`` if it has the layout, else its one subfolder that has it (an unzipped wrapper)."""
    if looks_right(root):
        return root
    matches = [d for d in subdirs(root) if looks_right(d)]
    return matches[0] if len(matches) == 1 else None


def wav_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as audio without reading it (missing or 0 bytes), or None."""
    if not path.is_file():
        return "file not found"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    return None
