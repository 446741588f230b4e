"""Emotion weights as people type them: ``--angry 0.6`` on the command line, ``angry=0.6`` in a
query string. One parser for every front door (``emomix mix``, ``GET /api/tts``, the app), so
they accept the same numbers and refuse bad ones with the same line; whether the names are the
model's emotions and the sum is at most 1 is checked later by
:func:`emomix_cli.tts.mixing.normalise_weights`, which every synthesis goes through.

No torch here: the CLI imports this at start-up.
"""

from __future__ import annotations

import math

from .errors import EmomixError


def parse_weight(label: str, value: str | float) -> float:
    """``value`` as a finite float; the error names ``label`` (e.g. ``--angry`` or ``angry``)."""
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise EmomixError(f"{label} needs a number, got '{value}'") from None
    if not math.isfinite(weight):
        raise EmomixError(f"{label} weight must be a finite number, got {value}")
    return weight


def add_weight(weights: dict[str, float], name: str, value: str | float, label: str) -> None:
    """Put ``name``'s parsed weight into ``weights`` (names lower-cased, ``-`` as ``_``); an
    emotion given twice is an error naming ``label``."""
    key = name.lower().replace("-", "_")
    if key in weights:
        raise EmomixError(f"{label} is given twice; give each emotion once")
    weights[key] = parse_weight(label, value)


def parse_emotion_flags(args: list[str]) -> dict[str, float]:
    """`--angry 0.6 --happy=0.4` -> {"angry": 0.6, "happy": 0.4}; errors name the flag."""
    weights: dict[str, float] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise EmomixError(f"unexpected argument '{arg}'; give the text once and emotions as --<emotion> WEIGHT")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise EmomixError(f"--{name} needs a weight, e.g. --{name} 0.6")
            value = args[i + 1]
            i += 1
        add_weight(weights, name, value, f"--{name}")
        i += 1
    return weights
