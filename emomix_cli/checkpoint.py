"""Self-contained checkpoints for every model, saved atomically and checked by kind.

A checkpoint is a dict ``{"format": "emomix", "kind": KIND, "version": 1, ...payload}``.
``kind`` is one of ``ser``, ``tts``, ``prototypes``, ``train-state`` (free-form strings are
allowed for new kinds). Loading verifies the file exists, is a torch file, is an emomix
file of a format version this code reads (``version <= VERSION``) and is of the expected kind,
and says which fix applies when it is not. Raise ``VERSION`` when the payload of any kind
changes in a way older code would misread.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .config import atomic_write_bytes
from .errors import EmomixError

FORMAT = "emomix"
VERSION = 1


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, builtins) as an emomix checkpoint of ``kind``, atomically."""
    blob = {"format": FORMAT, "kind": kind, "version": VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path, kind: str | tuple[str, ...], map_location="cpu") -> dict:
    """Load an emomix checkpoint and check its kind; raise EmomixError with a fix otherwise."""
    path = Path(path)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    wanted = " or ".join(kinds)
    if not path.is_file():
        raise EmomixError(f"checkpoint not found: {path} (pass the path of a {wanted} checkpoint)")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a foreign or truncated file
        raise EmomixError(
            f"{path} is not a readable checkpoint (corrupt or not a torch file); "
            f"pass a {wanted} checkpoint written by emomix"
        ) from error
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise EmomixError(
            f"{path} is not an emomix checkpoint; pass a {wanted} checkpoint written by emomix"
            " (official Grad-TTS weights go to `emomix train tts --init-from`)"
        )
    version = blob.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EmomixError(f"{path} has no valid format version ({version!r}); re-save it with emomix")
    if version > VERSION:
        raise EmomixError(
            f"{path} was written by a newer emomix (format v{version}; this one reads up to "
            f"v{VERSION}); upgrade emomix"
        )
    if blob.get("kind") not in kinds:
        raise EmomixError(
            f"{path} is a '{blob.get('kind')}' checkpoint, but a {wanted} checkpoint is needed here"
        )
    return blob
