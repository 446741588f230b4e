"""Feature preparation (docs/DESIGN.md §3): ``prep`` turns corpus records into mels + phonemes on disk.

The store's layout is :mod:`emomix_cli.store_layout`; it is read back by
:class:`emomix_cli.datasets.FeatureStore`.

Resumability: each finished utterance has its mel written atomically and then its manifest row
appended (flushed, fsynced) to ``.prep/rows.jsonl`` by the main process, so a kill loses only
the utterances in flight. A rerun treats an utterance as done when its mel exists and a row for
it (from that journal or the final manifest) matches the record; the final ``manifest.jsonl``
is written atomically, and files whose content did not change are not rewritten.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .audio import AudioConfig, load_wav, mel_spectrogram
from .config import atomic_write_bytes, atomic_write_text, from_dict, to_dict
from .errors import EmomixError
from .progress import progress_bar
from .store_layout import CONFIG, EMOTIONS, MANIFEST, MELS, SPEAKERS, mel_path
from .text import SYMBOL_TABLES, normalize_text, phonemize

DATASETS = ("esd", "iemocap", "ravdess", "cremad", "manifest", "demo", "demo-natural")
_DEMO_OPTIONS = ("n_speakers", "n_sentences", "seed")
_CHUNK = 16  # records per worker task: one batched phonemizer call each
# Starting spawn workers (each imports torch) costs seconds, about what one process needs for a
# few hundred utterances; below this many pending records prep stays in process.
_MIN_POOL_RECORDS = 256


@dataclass
class PrepSummary:
    """What ``prep`` did: utterances per speaker × emotion, hours, skipped files, time."""

    out: Path
    counts: dict[str, dict[str, int]]  # speaker -> emotion -> utterances in the store
    hours: float
    n_utterances: int
    n_new: int  # computed in this run (the rest were already done)
    skipped: list[tuple[str, str]]  # (path, reason)
    warnings: list[str] = field(default_factory=list)  # reader warnings, missing transcripts
    elapsed_s: float = 0.0


# ---------------------------------------------------------------- per-utterance work
def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _phonemes_for(records: list, warnings: list[str]) -> list[str]:
    """Phonemes per record, one batched espeak call per language; "" for empty transcripts."""
    phonemes = [""] * len(records)
    by_language: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if normalize_text(record.text, record.language):
            by_language[record.language].append(index)
        else:
            warnings.append(f"{record.wav}: no transcript; kept for the SER, skipped by TTS")
    for language, indices in by_language.items():
        texts = [records[i].text for i in indices]
        for index, result in zip(indices, phonemize(texts, language), strict=True):
            phonemes[index] = result
    return phonemes


def _process_chunk(records: list, out: str, audio: dict) -> dict:
    """Worker entry point (top level, spawn-safe): mels + phonemes for a chunk of records."""
    torch.set_num_threads(1)
    cfg = from_dict(AudioConfig, audio)
    rows, skipped, warnings, loaded = [], [], [], []
    for record in records:
        try:
            loaded.append((record, load_wav(record.wav, cfg)))
        except EmomixError as error:
            skipped.append((str(record.wav), str(error)))
    phonemes = _phonemes_for([r for r, _ in loaded], warnings)
    for (record, wav), phones in zip(loaded, phonemes, strict=True):
        with torch.no_grad():
            mel = mel_spectrogram(torch.from_numpy(wav), cfg)[0].numpy().astype(np.float32)
        atomic_write_bytes(mel_path(Path(out), record.id), _npy_bytes(mel))
        rows.append(_row(record, phones, mel.shape[1]))
    return {"rows": rows, "skipped": skipped, "warnings": warnings, "n": len(records)}


def _wav_key(record) -> str:
    return str(Path(record.wav).resolve())


def _row(record, phonemes: str, frames: int) -> dict:
    return {
        "id": record.id, "speaker": record.speaker, "emotion": record.emotion,
        "text": record.text, "phonemes": phonemes, "wav": _wav_key(record),
        "n_frames": int(frames), "split": record.split, "language": record.language,
        "extra": dict(record.extra),
    }  # fmt: skip


# ---------------------------------------------------------------- prep
def _read_records(dataset: str, src: Path, workers: int, progress: bool, language, options):
    from .corpora import read_corpus, reader_options

    if dataset not in DATASETS:
        raise EmomixError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "demo":
        from .demo_corpus import render_demo_corpus

        demo = {k: options.pop(k) for k in _DEMO_OPTIONS if options.get(k) is not None}
        render_demo_corpus(src, workers=workers, progress=progress, **demo)
        dataset = "manifest"
    if dataset == "demo-natural":  # rendered in ESD's layout, then read as ESD is
        from .natural_corpus import render_natural_corpus

        demo = {k: options.pop(k) for k in _DEMO_OPTIONS if options.get(k) is not None}
        render_natural_corpus(src, workers=workers, progress=progress, **demo)
        dataset = "esd"
    if language is not None and "language" in reader_options(dataset):
        options["language"] = language
        language = None
    result = read_corpus(dataset, src, **options)
    if language is not None:
        for record in result.records:
            record.language = language
    return result


def _journal_rows(out: Path) -> dict[str, dict]:
    """Rows already finished: the final manifest, then the journal (later rows win)."""
    rows: dict[str, dict] = {}
    for path in (out / MANIFEST, out / ".prep" / "rows.jsonl"):
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                rows[row["id"]] = row
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a kill: that utterance is simply redone
    return rows


def _check_config(out: Path, config: dict) -> None:
    path = out / CONFIG
    if not path.is_file():
        return
    try:
        old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        old = {}
    for key in ("audio", "symbols"):
        if old.get(key) != config[key]:
            raise EmomixError(
                f"{out} was prepared with another {key} config; use a new --out folder "
                f"(or delete {out}) to prepare with these settings"
            )


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def prep(
    dataset: str,
    src: Path,
    out: Path,
    workers: int = 1,
    audio: AudioConfig | None = None,
    progress: bool = True,
    language: str | None = None,
    symbols: str = "emomix",
    **reader_options: Any,
) -> PrepSummary:
    """Corpus ``src`` -> feature store ``out`` (resumable; corrupt files skipped and listed).
    ``symbols``: the vocabulary the store's ids use, ``emomix`` or ``matcha`` (Matcha-TTS's,
    for fine-tuning its official checkpoints)."""
    start = time.perf_counter()
    if workers < 1:
        raise EmomixError(f"--workers must be at least 1, got {workers}")
    if symbols not in SYMBOL_TABLES:
        raise EmomixError(f"unknown vocabulary '{symbols}'; use one of: {', '.join(SYMBOL_TABLES)}")
    src, out = Path(src).expanduser(), Path(out).expanduser()
    audio = audio or AudioConfig()
    config = {"dataset": dataset, "audio": to_dict(audio),
              "symbols": SYMBOL_TABLES[symbols]().to_dict()}
    _check_config(out, config)
    result = _read_records(dataset, src, workers, progress, language, dict(reader_options))
    records = result.records
    try:
        (out / MELS).mkdir(parents=True, exist_ok=True)
        (out / ".prep").mkdir(exist_ok=True)
    except OSError as error:
        raise EmomixError(f"cannot create {out}: {error}; choose a writable --out") from error
    _write_if_changed(out / CONFIG, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    for stale in (out / MELS).glob(".*.tmp"):  # temp files of a killed run
        stale.unlink(missing_ok=True)

    done = _journal_rows(out)
    finished: dict[str, dict] = {}
    todo = []
    for record in records:
        row = done.get(record.id)
        if (row and row.get("wav") == _wav_key(record) and row.get("text") == record.text
                and mel_path(out, record.id).is_file()):
            finished[record.id] = row
        else:
            todo.append(record)
    skipped: list[tuple[str, str]] = []
    warnings = list(result.warnings)
    n_new = 0
    chunks = [todo[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    with open(out / ".prep" / "rows.jsonl", "a", encoding="utf-8") as journal, progress_bar(
        "prep", len(records), completed=len(records) - len(todo), enabled=progress
    ) as bar:
        for chunk_result in _run_chunks(chunks, out, audio, workers):
            for row in chunk_result["rows"]:
                journal.write(json.dumps(row, ensure_ascii=False) + "\n")
                finished[row["id"]] = row
            journal.flush()
            os.fsync(journal.fileno())
            n_new += len(chunk_result["rows"])
            skipped.extend(chunk_result["skipped"])
            warnings.extend(chunk_result["warnings"])
            bar.advance(chunk_result["n"])

    rows = [finished[r.id] for r in records if r.id in finished]
    if not rows:
        first = f": {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise EmomixError(f"no utterance of {src} could be prepared{first}; check the audio files")
    _finish_store(out, rows)
    hours = sum(r["n_frames"] for r in rows) * audio.hop_length / audio.sample_rate / 3600
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[row["speaker"]][row["emotion"]] += 1
    return PrepSummary(
        out=out,
        counts={s: dict(sorted(e.items())) for s, e in sorted(counts.items())},
        hours=hours,
        n_utterances=len(rows),
        n_new=n_new,
        skipped=skipped,
        warnings=warnings,
        elapsed_s=time.perf_counter() - start,
    )


def _run_chunks(chunks: list[list], out: Path, audio: AudioConfig, workers: int):
    """Yield chunk results, in process (workers=1) or from a spawn process pool."""
    audio_dict = to_dict(audio)
    if workers == 1 or len(chunks) <= 1 or sum(map(len, chunks)) < _MIN_POOL_RECORDS:
        for chunk in chunks:
            yield _process_chunk(chunk, str(out), audio_dict)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
        futures = [pool.submit(_process_chunk, chunk, str(out), audio_dict) for chunk in chunks]
        for future in as_completed(futures):
            yield future.result()


def _finish_store(out: Path, rows: list[dict]) -> None:
    manifest = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    _write_if_changed(out / MANIFEST, manifest)
    _write_if_changed(out / SPEAKERS, json.dumps(sorted({r["speaker"] for r in rows})) + "\n")
    _write_if_changed(out / EMOTIONS, json.dumps(sorted({r["emotion"] for r in rows})) + "\n")
    # The manifest now holds every row; the journal restarts empty (atomically).
    _write_if_changed(out / ".prep" / "rows.jsonl", "")


def summary_table(summary: PrepSummary):
    """A rich table: utterances per speaker (rows) × emotion (columns), with totals."""
    from rich.table import Table

    emotions = sorted({e for per in summary.counts.values() for e in per})
    table = Table(
        title=f"{summary.out}: {summary.n_utterances} utterances, {summary.hours:.2f} h "
        f"({summary.n_new} new, {len(summary.skipped)} skipped, {summary.elapsed_s:.1f} s)"
    )
    table.add_column("speaker")
    for emotion in emotions:
        table.add_column(emotion, justify="right")
    table.add_column("total", justify="right")
    for speaker, per in summary.counts.items():
        table.add_row(speaker, *[str(per.get(e, 0)) for e in emotions], str(sum(per.values())))
    return table
