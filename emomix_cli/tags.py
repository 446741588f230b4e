r"""Inline emotion tags in the text to speak: the one parser every front door uses (``emomix
mix``, ``--batch`` lines, :func:`~emomix_cli.synthesis.synthesize_mels`, an HTTP API).

    [angry=0.6,happy=0.4] text    a mix for the words that follow, up to the next tag
    [sad] text                    a bare emotion: weight 1
    [neutral>angry=0.8] text      a ramp: from one mix to the other across its words
    \[                            a literal bracket (``\]`` too)

Text before the first tag takes the default mix (``emomix mix``'s ``--<emotion>`` flags), or
Neutral when there is none. Every mix goes through
:func:`~emomix_cli.tts.mixing.normalise_weights`, so a tag means what the flags mean: a lone
weight w < 1 is w of the emotion plus 1 − w of Neutral, and unknown emotions, negative weights
and sums above 1 are refused. Errors are one line naming the tag and its character position
(counting from 1). No torch here (the mixing module is imported when a text is parsed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .emotion_weights import add_weight
from .errors import EmomixError

NEUTRAL = "neutral"
_ESCAPES = {"\\[": "[", "\\]": "]"}
_SHOWN = 24  # characters of an unclosed tag quoted in its error


@dataclass(frozen=True)
class Segment:
    """The words one tag colours. ``weights``: its normalised mix (base first), the mix at the
    start of a ramp; ``weights_end``: a ramp's mix at its end (None: constant). ``tag`` as
    written and ``position`` (its ``[``, counting from 1) are None for text before the first tag."""

    text: str
    weights: dict[str, float]
    weights_end: dict[str, float] | None = None
    tag: str | None = None
    position: int | None = None


def has_tags(text: str | None) -> bool:
    """True when ``text`` holds a tag (an unescaped ``[``, closed or not)."""
    return "[" in (text or "").replace("\\[", "")


def escape_tags(text: str) -> str:
    r"""``text`` with every bracket escaped (``[`` -> ``\[``), so that it is spoken, not parsed."""
    return text.replace("[", "\\[").replace("]", "\\]")


def parse_mix(spec: str) -> dict[str, float]:
    """``"angry=0.6,happy=0.4"`` -> ``{"angry": 0.6, "happy": 0.4}``; a bare name is weight 1.
    Names are lower-cased; values are checked to be finite numbers (not yet against a model)."""
    weights: dict[str, float] = {}
    for item in filter(None, (piece.strip() for piece in spec.split(","))):
        name, eq, value = (part.strip() for part in item.partition("="))
        if not name or (eq and not value):
            raise EmomixError(f"bad weight '{item}'; write emotion=weight, e.g. angry=0.6")
        add_weight(weights, name, value if eq else 1.0, f"'{name}'")
    return weights


def parse_tags(text: str, emotions: list[str],
               default: Mapping[str, float] | None = None) -> list[Segment]:
    """The segments of ``text``: one per tag, plus the words before the first tag (mix:
    ``default``, else Neutral). Without a tag the whole text is one segment with ``default``
    (refused when empty, as a mix with no weight). Raises :class:`EmomixError` naming the tag
    and its position for an unknown emotion, a bad or negative weight, weights above 1, an
    unclosed bracket, or a tag with no words after it; and when ``default`` is given but the
    text starts with a tag (it would colour nothing)."""
    from .tts.mixing import normalise_weights  # torch: only once a text is really parsed

    parts = _split(text)
    lead = parts[0][2]
    if len(parts) == 1:
        return [Segment(lead, normalise_weights(default or {}, emotions))]
    segments = []
    if _has_words(lead):
        if not default and NEUTRAL not in emotions:
            raise EmomixError(f"the words before '{parts[1][0]}' need a mix and this model has no "
                              f"'{NEUTRAL}'; give one (--<emotion> flags) or start with a tag")
        segments.append(Segment(lead.strip(), normalise_weights(default or {NEUTRAL: 1.0}, emotions)))
    elif default:
        given = ", ".join(f"{name}={value:g}" for name, value in default.items())
        raise EmomixError(f"the mix {given} is for words before the first tag and the text starts "
                          f"with '{parts[1][0]}'; drop it, or write words before the tag")
    for tag, position, words in parts[1:]:
        try:
            start, end = (normalise_weights(parse_mix(spec), emotions) for spec in _ramp(tag))
        except EmomixError as error:
            raise EmomixError(f"tag '{tag}' at character {position}: {error}") from error
        if not _has_words(words):
            raise EmomixError(f"tag '{tag}' at character {position} has no words after it; write "
                              "the words it colours after it, or remove it")
        segments.append(Segment(words.strip(), start, None if end == start else end, tag, position))
    return segments


def _ramp(tag: str) -> tuple[str, str]:
    """The start and end specs of a tag's body (the same spec twice for a constant mix)."""
    body = tag[1:-1].strip()
    if not body:
        raise EmomixError("the tag is empty; write e.g. [sad] or [angry=0.6,happy=0.4]")
    specs = body.split(">")
    if len(specs) > 2 or not all(spec.strip() for spec in specs):
        raise EmomixError("a ramp is one '>' between two mixes, e.g. [neutral>angry=0.8]")
    return specs[0], specs[-1]


def _split(text: str) -> list[tuple[str | None, int | None, str]]:
    """``[(tag, position, words after it)]``, escapes resolved; the first entry (tag None) holds
    the words before the first tag. An unclosed tag is refused."""
    parts: list[tuple[str | None, int | None, str]] = []
    tag, position, words, i = None, None, [], 0
    while i < len(text):
        if text[i : i + 2] in _ESCAPES:
            words.append(_ESCAPES[text[i : i + 2]])
            i += 2
            continue
        if text[i] == "[":
            close, inner = text.find("]", i + 1), text.find("[", i + 1)
            if close < 0 or 0 <= inner < close:
                shown = text[i : i + _SHOWN] + ("…" if len(text) > i + _SHOWN else "")
                raise EmomixError(f"tag '{shown}' at character {i + 1} is not closed; end it with "
                                  "']', or write \\[ for a literal bracket")
            parts.append((tag, position, "".join(words)))
            tag, position, words, i = text[i : close + 1], i + 1, [], close + 1
            continue
        words.append(text[i])
        i += 1
    parts.append((tag, position, "".join(words)))
    return parts


def _has_words(text: str) -> bool:
    return any(char.isalnum() for char in text)
