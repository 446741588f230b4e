"""Evaluation of a trained model by judges that owe nothing to it (docs/DESIGN.md §8).

- :mod:`.metrics`: pure metric functions (accuracy, rank correlation, text normalisation,
  segment positions, voicing from a pitch track);
- :mod:`.judges`: Whisper (WER/CER), pYIN (voicing, prosody), a second SER, DNSMOS;
- :mod:`.scoring` and :mod:`.bar`: judged utterances -> report sections -> the quality bar;
- :mod:`.run`: :func:`run_eval` (synthesize, vocode, judge);
- :mod:`.schema`: the report (:class:`Report`, what report.json holds);
- :mod:`.report` / :mod:`.plots`: report.json, tables, PNGs.

Importing this package is cheap (the CLI reads its defaults at start-up); the names below load
their module (and torch) on first use.
"""

from __future__ import annotations

import importlib

DEFAULT_MAX_SENTENCES = 4  # the one default of `emomix eval --max-sentences` and run_eval
SPLITS = ("val", "test")  # tune on val, report on test
DEFAULT_SPLIT = "test"

_EXPORTS = {
    **dict.fromkeys(("default_model_bar", "quality_bar", "speaker_wer"), "bar"),
    **dict.fromkeys(("Judges", "load_judges", "missing_extras", "prosody", "score_mels", "wer_cer"), "judges"),
    **dict.fromkeys(("MONOTONIC_TOLERANCE", "confusion_matrix", "count_phones", "is_monotonic",
                     "normalise_text", "per_class_accuracy", "segment_position", "spearman",
                     "top2_rate", "unweighted_accuracy", "weighted_accuracy"), "metrics"),
    "print_report": "report",
    "Report": "schema",
    "run_eval": "run",
    "vocode_mels": "run",
    **dict.fromkeys(("BLEND", "INTENSITY_WEIGHTS", "NEUTRAL", "conditions"), "scoring"),
}  # fmt: skip

__all__ = ["DEFAULT_MAX_SENTENCES", "DEFAULT_SPLIT", "SPLITS", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
