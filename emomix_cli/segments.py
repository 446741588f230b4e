"""An utterance with inline tags (:mod:`.tags`), laid out for synthesis and read back on the wav.

:func:`plan_utterance`: text -> segments -> sentences of token ids, each token labelled with its
segment and carrying its own mix (a ramp interpolated across its segment's tokens,
:func:`~.tts.mixing.ramp_mixes`). The sentences are those of the text with the tags removed;
a sentence that holds several segments phonemizes each piece on its own and joins them with a
space, so every token belongs to exactly one segment. After sampling,
:meth:`Utterance.spans` reads each segment's frames from the encoder's durations, and
:func:`segment_times` turns them into seconds of the wav (contiguous, tiling the whole file),
which :func:`write_segments_json` writes.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import atomic_write_text
from .errors import EmomixError
from .tags import Segment, parse_tags
from .text import SymbolTable, check_speakable, intersperse, text_to_ids

_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+(?=[\"'(\[]?[A-Z0-9\u00C0-\u024F])|(?<=[。！？；])\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text`` (stripped, non-empty; see :func:`split_sentences`)."""
    spans, start = [], 0
    for cut in [*_SENTENCE_END.finditer(text), None]:
        end = len(text) if cut is None else cut.start()
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = end if cut is None else cut.end()
    return spans


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends (``. ! ? ;`` then a capital/digit; CJK ``。！？；``); drop empties."""
    return [text[start:end] for start, end in sentence_spans(text)]


@dataclass
class Sentence:
    """One sentence to sample: token ``ids``, the segment of each token (``labels``) and each
    token's mix (``mixes``, normalised)."""

    text: str
    ids: list[int]
    labels: list[int]
    mixes: list[dict[str, float]] = field(default_factory=list)

    @property
    def constant(self) -> bool:
        """True when every token has the same mix (a global mix: sampled exactly as one)."""
        return all(mix == self.mixes[0] for mix in self.mixes[1:])


@dataclass
class SegmentSpan:
    """A segment on the output mel: ``start`` and ``end`` frames (``end`` exclusive)."""

    text: str
    weights: dict[str, float]
    weights_end: dict[str, float] | None
    start: int
    end: int


@dataclass
class Utterance:
    segments: list[Segment]
    sentences: list[Sentence]

    @property
    def emotions(self) -> list[str]:
        """Every emotion of every segment's mix, in order of appearance."""
        mixes = [m for s in self.segments for m in (s.weights, s.weights_end or {})]
        return list(dict.fromkeys(name for mix in mixes for name in mix))

    def spans(self, durations: Sequence[Sequence[float]], frames: Sequence[int],
              pause: int) -> list[SegmentSpan]:
        """Each segment's frames on the joined mel: ``durations`` (frames per token) and
        ``frames`` (mel length) of each sentence, ``pause`` silent frames between sentences.
        A segment starts at its first token's first frame (the first at 0) and ends where the
        next starts (the last at the end), so the spans tile the mel."""
        starts: dict[int, int] = {}
        offset = 0
        for sentence, lengths, length in zip(self.sentences, durations, frames, strict=True):
            first = offset
            for label, duration in zip(sentence.labels, lengths, strict=True):
                starts.setdefault(label, first)
                first += round(float(duration))
            offset += int(length) + pause
        total = offset - pause
        bounds = [0, *(starts[k] for k in range(1, len(self.segments))), total]
        return [SegmentSpan(s.text, s.weights, s.weights_end, bounds[k], bounds[k + 1])
                for k, s in enumerate(self.segments)]

    def shares(self, durations: Sequence[Sequence[float]]) -> dict[str, float]:
        """Each emotion's share of the frames (base first): the mix of an untagged text, and
        for a tagged one its token mixes weighted by their durations."""
        if len(self.segments) == 1 and self.segments[0].weights_end is None:
            return dict(self.segments[0].weights)
        totals: dict[str, float] = {}
        for sentence, lengths in zip(self.sentences, durations, strict=True):
            for mix, duration in zip(sentence.mixes, lengths, strict=True):
                for name, weight in mix.items():
                    totals[name] = totals.get(name, 0.0) + weight * float(duration)
        whole = sum(totals.values()) or 1.0
        return {n: w / whole for n, w in sorted(totals.items(), key=lambda item: -item[1])}


def plan_utterance(text: str, weights: Mapping[str, float], emotions: list[str],
                   table: SymbolTable, language: str = "en",
                   allow_foreign: bool = False) -> Utterance:
    """``text`` (tags allowed; ``weights``: the mix before the first tag) -> its segments and
    sentences, every segment's text checked (:func:`~.text.check_speakable`). Raises
    :class:`EmomixError` before any synthesis for a bad tag, mix or text."""
    from .tts.mixing import ramp_mixes

    segments = check_text(text, weights, emotions, language, allow_foreign)
    sentences = [Sentence(" ".join(t for _, t in pieces), *_tokens(pieces, table, language))
                 for pieces in _pieces(segments)]
    if not sentences:
        raise EmomixError("text is empty; give a sentence with words to speak")
    counts = [sum(s.labels.count(k) for s in sentences) for k in range(len(segments))]
    ramps = [ramp_mixes(s.weights, s.weights_end, n) if s.weights_end else None
             for s, n in zip(segments, counts, strict=True)]
    done = [0] * len(segments)
    for sentence in sentences:
        for label in sentence.labels:
            ramp = ramps[label]
            sentence.mixes.append(segments[label].weights if ramp is None else ramp[done[label]])
            done[label] += 1
    return Utterance(segments, sentences)


def check_text(text: str, weights: Mapping[str, float], emotions: list[str], language: str = "en",
               allow_foreign: bool = False) -> list[Segment]:
    """The segments of ``text`` (:func:`~.tags.parse_tags`), each segment's text checked
    (:func:`~.text.check_speakable`): all that can refuse a text before synthesis."""
    segments = parse_tags(text or "", emotions, weights)
    for segment in segments:
        check_speakable(segment.text, language, allow_foreign)
    return segments


def _pieces(segments: list[Segment]) -> list[list[tuple[int, str]]]:
    """The sentences of the segments' joined text, each as ``[(segment, text)]`` pieces; a piece
    without words (punctuation) joins the piece before it, or the next one."""
    chars, owner = [], []
    for k, segment in enumerate(segments):
        if chars:
            chars.append(" ")
            owner.append(k)
        chars.extend(segment.text)
        owner.extend([k] * len(segment.text))
    text = "".join(chars)
    sentences = []
    for start, end in sentence_spans(text):
        pieces: list[tuple[int, str]] = []
        pending = ""
        for label, group in itertools.groupby(range(start, end), key=owner.__getitem__):
            places = list(group)
            piece = text[places[0] : places[-1] + 1].strip()
            if not any(char.isalnum() for char in piece):
                if pieces:
                    pieces[-1] = (pieces[-1][0], pieces[-1][1] + piece)
                else:
                    pending += piece
            elif piece:
                pieces.append((label, pending + piece))
                pending = ""
        sentences.append(pieces or [(owner[start], pending)])
    return sentences


def _tokens(pieces: list[tuple[int, str]], table: SymbolTable,
            language: str) -> tuple[list[int], list[int]]:
    """Token ids and the segment of each token. One piece: :func:`~.text.text_to_ids` as for any
    text. Several: each piece phonemized alone, joined by a space; with blanks interspersed, a
    blank belongs to the symbol after it (the last one to the last symbol)."""
    if len(pieces) == 1:
        label, piece = pieces[0]
        ids = text_to_ids(piece, table, language)
        return ids, [label] * len(ids)
    symbols_only = (lambda ids: ids[1::2]) if table.add_blank else (lambda ids: ids)
    space = symbols_only(table.encode(" "))
    core: list[int] = []
    labels: list[int] = []
    for label, piece in pieces:
        ids = (space if core else []) + symbols_only(text_to_ids(piece, table, language))
        core += ids
        labels += [label] * len(ids)
    if not table.add_blank:
        return core, labels
    return intersperse(core, table.blank_id), [k for k in labels for _ in (0, 1)] + labels[-1:]


def segment_times(spans: list[SegmentSpan], frames: int, samples: int,
                  sample_rate: int) -> list[dict]:
    """The spans in seconds of a wav of ``samples`` made from ``frames`` mel frames:
    ``{"start", "end", "text", "weights"}`` (+ ``"weights_end"`` for a ramp), the first start
    0 and the last end the wav's length."""
    second = samples / max(frames, 1) / sample_rate  # seconds per frame
    rows = []
    for span in spans:
        end = samples / sample_rate if span is spans[-1] else span.end * second
        row = {"start": round(span.start * second, 6), "end": round(end, 6), "text": span.text,
               "weights": _rounded(span.weights)}
        if span.weights_end is not None:
            row["weights_end"] = _rounded(span.weights_end)
        rows.append(row)
    return rows


def _rounded(weights: Mapping[str, float]) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in weights.items()}


def write_segments_json(path: str | Path, segments: list[dict]) -> Path:
    """``{"segments": [...]}`` (:func:`segment_times`) to ``path``, atomically."""
    atomic_write_text(path, json.dumps({"segments": segments}, indent=2, ensure_ascii=False) + "\n")
    return Path(path)
