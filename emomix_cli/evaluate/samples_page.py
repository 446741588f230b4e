"""``emomix eval --html``: a paper-style samples page, ``index.html`` in the eval folder.

Rows are the sentences; the columns are the grid eval synthesized (``scoring.conditions``):
every emotion beside the real recording of the same sentence in that emotion, the intensity
steps against Neutral, and the blends. Each cell has an ``<audio>`` player, its mel picture and
the judges' figures for that utterance, as eval computed them: pYIN's voiced fraction, Whisper's
WER, and the second SER's label and confidence. A mix that eval did not give a sentence (a small eval
shares the blend pairs out among its sentences) is an empty cell. The page is self-contained: inline CSS, no
script, relative paths to the wavs and PNGs under ``page/`` (sentence 0's single emotions reuse
``samples/<emotion>.wav``), so it opens offline from the folder or from a zip.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from ..audio import load_wav, save_wav
from ..config import atomic_write_text
from ..plotting import save_mel_png
from .judges import wer_cer
from .scoring import NEUTRAL, conditions

PAGE = "index.html"
CLIPS = "page"  # the page's own wavs and mel PNGs


@dataclass
class Clip:
    """One cell: a log-mel ``[n_mels, T]``, its judged record (``scoring``'s record, or None),
    and its audio: float ``wav`` at ``rate`` to write, or ``wav_file`` already in the folder."""

    mel: np.ndarray
    record: dict | None
    wav: np.ndarray | None = None
    rate: int = 22050
    wav_file: Path | None = None


# ---------------------------------------------------------------- the clips eval has
def synthesized_clips(keys, wavs, mels, records, rate: int, out_dir: Path) -> dict[tuple[str, int], Clip]:
    """(label, sentence) -> Clip of every synthesized utterance (``keys``, ``wavs``, ``mels`` and
    ``records`` in one order); sentence 0's single emotions point at eval's samples/<e>.wav."""
    clips = {}
    for key, wav, mel, record in zip(keys, wavs, mels, records, strict=True):
        label, i = key
        existing = out_dir / "samples" / f"{label}.wav"
        reuse = existing if i == 0 and existing.is_file() else None
        clips[key] = Clip(np.asarray(mel), record, None if reuse else wav, rate, reuse)
    return clips


def ground_truth_clips(sentences: list[dict], truth: list[dict], store) -> dict[tuple[str, int], Clip]:
    """(emotion, sentence) -> Clip of the real recording of that sentence in that emotion (its
    stored mel; its audio when the store still points at the wav)."""
    from .run import _wav_path  # the one place a manifest's wav path is resolved

    if store is None:
        return {}
    judged = {record.get("id"): record for record in truth}
    clips = {}
    for i, sentence in enumerate(sentences):
        for emotion, item in sentence.get("gt", {}).items():
            path = _wav_path(store.root, item.get("wav", ""))
            wav = load_wav(path, store.audio) if path is not None else None
            clips[emotion, i] = Clip(store.mel(item["id"]), judged.get(item["id"]), wav,
                                     store.audio.sample_rate)
    return clips


# ---------------------------------------------------------------- figures
def figures(record: dict | None, judge_columns: list[str] | None) -> dict:
    """The judges' figures of one utterance: voiced fraction, WER (when Whisper heard it) and
    the second SER's top label with its posterior."""
    record = record or {}
    hyp, ref = record.get("hyp"), record.get("ref")
    probs = record.get("judge")
    top = int(np.argmax(probs)) if probs is not None and judge_columns else None
    return {"voiced": (record.get("prosody") or {}).get("voiced_fraction"),
            "wer": wer_cer([ref], [hyp])["wer"] if hyp is not None and ref else None,
            "ser": (judge_columns[top], float(probs[top])) if top is not None else None}  # fmt: skip


def _figures_html(values: dict) -> str:
    parts = []
    if values["voiced"] is not None:
        parts.append(f"voiced {values['voiced']:.2f}")
    if values["wer"] is not None:
        parts.append(f"WER {values['wer']:.2f}")
    if values["ser"] is not None:
        parts.append(f"SER {html.escape(values['ser'][0])} {values['ser'][1]:.2f}")
    return f'<div class="fig">{" · ".join(parts) or "not judged"}</div>'


# ---------------------------------------------------------------- the page
def file_stem(label: str) -> str:
    """A file name for a condition label: ``angry@0.25`` -> ``angry-at-0.25``, ``a+b`` -> ``a-and-b``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label.replace("@", "-at-").replace("+", "-and-"))


def _cell(out_dir: Path, stem: str, clip: Clip | None, judge_columns, title: str) -> str:
    """Write the clip's wav (unless it has one) and mel PNG; its table cell."""
    if clip is None:
        return '<td class="none">—</td>'
    png = out_dir / CLIPS / f"{stem}.png"
    save_mel_png(clip.mel, png, title=title)
    audio = clip.wav_file
    if audio is None and clip.wav is not None:
        audio = out_dir / CLIPS / f"{stem}.wav"
        save_wav(audio, clip.wav, clip.rate)
    player = (f'<audio controls preload="none" src="{_href(out_dir, audio)}"></audio>' if audio
              else '<div class="fig">no audio (the store has no wav)</div>')
    return (f'<td>{player}<img loading="lazy" alt="mel of {html.escape(title)}" '
            f'src="{_href(out_dir, png)}">{_figures_html(figures(clip.record, judge_columns))}</td>')


def _href(out_dir: Path, path: Path) -> str:
    return urllib.parse.quote(path.relative_to(out_dir).as_posix())


def sections(emotions: list[str], with_truth: bool) -> list[tuple[str, list[str], bool]]:
    """(title, condition labels, paired with the real recording) of the page's tables, in
    eval's grid order (``scoring.conditions``)."""
    grid = conditions(emotions)
    intensity = [label for label, w in grid if label not in emotions and NEUTRAL in w]
    blends = [label for label, w in grid if label not in emotions and NEUTRAL not in w]
    return [(title, labels, paired) for title, labels, paired in (
        ("Emotions, beside the real recording" if with_truth else "Emotions", emotions, with_truth),
        ("Intensity: w of the emotion, 1 − w of Neutral", intensity, False),
        ("Blends 0.6 / 0.4", blends, False)) if labels]  # fmt: skip


def _table(out_dir, section, sentences, synthesized, truth, judge_columns) -> str:
    title, labels, paired = section
    head = "".join(f'<th colspan="2">{html.escape(label)}<br><span>synthesized · real</span></th>'
                   if paired else f"<th>{html.escape(label)}</th>" for label in labels)
    rows = []
    for i, sentence in enumerate(sentences):
        cells = []
        for label in labels:
            clip_title = f"{label} · sentence {i + 1}"
            cells.append(_cell(out_dir, f"s{i + 1}_{file_stem(label)}", synthesized.get((label, i)),
                               judge_columns, clip_title))
            if paired:
                cells.append(_cell(out_dir, f"s{i + 1}_{file_stem(label)}_real", truth.get((label, i)),
                                   judge_columns, f"real {clip_title}"))
        speaker = f'<span>{html.escape(str(sentence.get("speaker") or ""))}</span>'
        rows.append(f'<tr><th class="text">{i + 1}. {html.escape(sentence["text"])}<br>{speaker}</th>'
                    f'{"".join(cells)}</tr>')
    return (f"<h2>{html.escape(title)}</h2><div class=\"scroll\"><table><tr><th>sentence</th>{head}</tr>"
            f"{''.join(rows)}</table></div>")


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}p.meta{color:#555;font-size:.9em}
.scroll{overflow-x:auto}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px;vertical-align:top}
th span{font-weight:normal;color:#666;font-size:.85em}th.text{text-align:left;min-width:12em;max-width:18em}
td img{display:block;width:220px;margin-top:2px}audio{width:220px}.fig{font-size:.8em;color:#444}
td.none{color:#aaa;text-align:center;vertical-align:middle}"""


def write_samples_page(out_dir: Path, report, sentences: list[dict],
                       synthesized: dict[tuple[str, int], Clip],
                       truth: dict[tuple[str, int], Clip]) -> Path:
    """Write ``out_dir/index.html`` and the clips under ``out_dir/page/``; returns the page."""
    config = report.config
    judge_columns = report.judge_ser_emotions
    meta = (f"model {config.model} · split {config.split} · {config.n_sentences} sentences · "
            f"{config.solver}, {config.steps} steps, guidance {config.guidance} · vocoder {config.vocoder} · "
            f"second SER {config.judge_ser or 'none'} · ASR {config.asr or 'none'} · {date.today().isoformat()}")
    tables = [_table(out_dir, section, sentences, synthesized, truth, judge_columns)
              for section in sections(list(report.emotions), bool(truth))]
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>emomix samples</title>"
            f"<style>{STYLE}</style></head><body><h1>emomix samples</h1><p class=\"meta\">{html.escape(meta)}</p>"
            "<p class=\"meta\">Under each clip: pYIN's voiced fraction, Whisper's WER against the text, and "
            "the second SER's label and confidence (judges that owe nothing to the model).</p>"
            f"{''.join(tables)}</body></html>\n")
    path = out_dir / PAGE
    atomic_write_text(path, page)
    return path
