"""The shipped files: the assets module names them, they exist, and the wheel carries them."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

from emomix_cli import assets
from emomix_cli.assets import DEMO_MODEL, JUDGE_SER

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_every_named_asset_is_a_file_inside_the_package():
    package = Path(assets.__file__).resolve().parent
    for path in (DEMO_MODEL, JUDGE_SER):
        assert path.is_file() and path.stat().st_size > 0
        assert path.parent == package


def test_package_data_globs_cover_every_asset():
    setuptools = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    found = setuptools["packages"]["find"]["include"]
    assert any(fnmatch.fnmatch("emomix_cli.assets", pattern) for pattern in found)
    patterns = setuptools["package-data"]["emomix_cli"]
    root = Path(assets.__file__).resolve().parents[1]  # emomix_cli/: the globs are relative to it
    shipped = {path for pattern in patterns for path in root.glob(pattern)}
    assert {DEMO_MODEL, JUDGE_SER} <= shipped
