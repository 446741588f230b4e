"""The README's notebook block runs as written, from a folder outside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def notebook_block(text: str) -> str:
    """The first ```python block under the README's "From a notebook" heading."""
    section = text.split("## From a notebook", 1)
    assert len(section) == 2, "README.md lost its 'From a notebook' section"
    match = re.search(r"```python\n(.*?)```", section[1], re.DOTALL)
    assert match, "README.md's 'From a notebook' section has no python block"
    return match.group(1)


def test_readme_notebook_block_runs_from_any_folder(tmp_path):
    block = notebook_block(README.read_text(encoding="utf-8"))
    check = "\nimport numpy as np\nassert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) > 8000\n"
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", block + check], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not list(tmp_path.iterdir())  # it read nothing relative to the folder and wrote nothing
