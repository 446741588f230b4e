"""The files shipped inside the package (package data, so a wheel install has them too).

- :data:`DEMO_MODEL`: the demo acoustic model (``tts`` checkpoint, fp16 weights), the default of
  ``emomix mix`` and ``emomix eval`` (``FAMILY=flow1d bash recipes/demo/cpu_train.sh`` trains it; recipes/demo/RESULTS.md);
- :data:`JUDGE_SER`: the independent SER that ``emomix eval`` judges the demo corpus with
  (recipes/demo/judge_ser.yaml trains it).
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_MODEL = ASSETS / "demo_model.pt"
JUDGE_SER = ASSETS / "judge_ser.pt"

__all__ = ["ASSETS", "DEMO_MODEL", "JUDGE_SER"]
