"""Checkpoint files: format version checked, the cause of an unreadable file kept."""

from __future__ import annotations

import io

import pytest
import torch

from emomix_cli.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from emomix_cli.errors import EmomixError


def _write_blob(path, blob: dict):
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_checkpoint_written_now_carries_this_version_and_loads(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", "ser", {"w": torch.ones(2)})
    blob = load_checkpoint(path, "ser")
    assert blob["version"] == VERSION and blob["format"] == FORMAT


def test_a_newer_format_version_asks_to_upgrade_emomix(tmp_path):
    path = _write_blob(tmp_path / "new.pt", {"format": FORMAT, "kind": "ser", "version": VERSION + 1})
    with pytest.raises(EmomixError, match=rf"written by a newer emomix \(format v{VERSION + 1}\b.*upgrade emomix"):
        load_checkpoint(path, "ser")


def test_the_version_is_checked_before_the_kind(tmp_path):
    """A newer file may have renamed kinds: say 'upgrade', not 'wrong kind'."""
    path = _write_blob(tmp_path / "new.pt", {"format": FORMAT, "kind": "ser2", "version": VERSION + 1})
    with pytest.raises(EmomixError, match="upgrade emomix"):
        load_checkpoint(path, "ser")


@pytest.mark.parametrize("version", [None, "1", 0, True])
def test_a_missing_or_malformed_version_is_refused(tmp_path, version):
    blob = {"format": FORMAT, "kind": "ser"}
    if version is not None:
        blob["version"] = version
    path = _write_blob(tmp_path / "odd.pt", blob)
    with pytest.raises(EmomixError, match="no valid format version"):
        load_checkpoint(path, "ser")


def test_an_unreadable_file_keeps_its_cause(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(EmomixError, match="not a readable checkpoint") as caught:
        load_checkpoint(path, "tts")
    assert caught.value.__cause__ is not None
    assert "\n" not in str(caught.value)  # the user still sees one line
