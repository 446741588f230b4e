"""Which espeak-ng voices keep their voicing through the default vocoder (real vs vocoded pYIN).

    PYTHONPATH=. .venv/bin/python benchmarks/voice_survival.py              # the corpus's 4 voices
    PYTHONPATH=. .venv/bin/python benchmarks/voice_survival.py --voices en-us+f2 en+m3 en-gb-x-rp \\
        --sentences 4 --wer --json survival.json
    PYTHONPATH=. .venv/bin/python benchmarks/voice_survival.py --corpus data/demo/corpus  # rendered

For every voice × emotion, the first ``--sentences`` test sentences of the demo corpus are
rendered with the corpus's own code (``demo_corpus.plan_corpus`` + ``render_audio``: the
audio its wav files hold), or read from a rendered corpus (``--corpus``: its test split). Each
is turned into the log-mel of ``audio.mel_spectrogram`` (what prep stores), vocoded one
utterance per call by the default vocoder (HiFi-GAN UNIVERSAL_V1; ``evaluate.run.vocode_mels``,
as ``emomix eval`` makes its "vocoded ground truth"), and both the real and the vocoded audio
get eval's pYIN voiced fraction (``evaluate.judges.prosody``, same settings). Per voice ×
emotion: mean real, mean vocoded and their ratio; a voice's score is its lowest ratio. The
F0 table (median pYIN F0 of the real audio) shows how far apart the voices sit. ``--wer``
adds Whisper tiny.en WER (the eval's judge) on the real and the vocoded audio.

Jitter is seeded by a speaker's position: the default run (no ``--voices``) measures exactly
the corpus's utterances; a candidate list measures each voice at its position in that list.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emomix_cli.demo_corpus import (  # noqa: E402
    EMOTIONS,
    SAMPLE_RATE,
    SENTENCES,
    SPEAKERS,
    check_voice,
    plan_corpus,
    render_audio,
    split_sizes,
)
from emomix_cli.errors import EmomixError  # noqa: E402
from emomix_cli.evaluate.metrics import mean_defined  # noqa: E402
from emomix_cli.progress import progress_bar  # noqa: E402

TARGET_RATIO = 0.85  # issue 19: vocoded keeps >= 0.85 of the real voiced fraction
N_TEST = split_sizes(len(SENTENCES[:150]))[1]  # test sentences of the 150-sentence corpus


# ---------------------------------------------------------------- what to measure
def rendered_items(speakers: list[tuple[str, str]], n_sentences: int, seed: int,
                   workers: int) -> list[dict]:
    """One item per (speaker, emotion, test sentence): its audio as the corpus would hold it."""
    plan = plan_corpus(len(speakers), 150, seed, speakers=speakers)
    n_val = split_sizes(150)[0]
    wanted = [u for u in plan if u.split == "test" and int(u.id.rsplit("_", 1)[1]) < n_val + n_sentences]
    audio = render_audio(plan, {u.id for u in wanted}, workers=workers)
    return [{"id": u.id, "speaker": u.speaker, "voice": u.voice, "emotion": u.emotion,
             "text": u.text, "audio": audio[u.id]} for u in wanted]


def corpus_items(root: Path, n_sentences: int | None) -> list[dict]:
    """The test split of a rendered corpus (``manifest.jsonl``), ``n_sentences`` per unit."""
    from emomix_cli.audio import AudioConfig, load_wav

    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise EmomixError(f"{manifest} not found; pass the folder render_demo_corpus wrote")
    try:
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise EmomixError(f"{manifest} is not JSON lines ({error}); render the corpus again") from None
    rows = [r for r in rows if r.get("split") == "test"]
    if not rows:
        raise EmomixError(f"{manifest} has no test rows; render a corpus with a test split")
    voices = dict(SPEAKERS)
    taken: dict[tuple[str, str], int] = {}
    items = []
    for row in sorted(rows, key=lambda r: r["id"]):
        unit = (row["speaker"], row["emotion"])
        if n_sentences is not None and taken.get(unit, 0) >= n_sentences:
            continue
        taken[unit] = taken.get(unit, 0) + 1
        path = root / row["wav"]
        if not path.is_file():
            raise EmomixError(f"{path} (in {manifest}) is missing; render the corpus again to resume it")
        items.append({"id": row["id"], "speaker": row["speaker"], "voice": voices.get(row["speaker"], "?"),
                      "emotion": row["emotion"], "text": row["text"],
                      "audio": load_wav(path, AudioConfig())})
    return items


# ---------------------------------------------------------------- the measurement (per process)
_STATE: dict = {}


def _init_worker(wer: bool) -> None:
    import torch

    from emomix_cli.audio import AudioConfig
    from emomix_cli.vocoder import DEFAULT_VOCODER, load_vocoder

    torch.set_num_threads(1)
    _STATE["vocoder"] = load_vocoder(DEFAULT_VOCODER, audio=AudioConfig())
    if wer:
        from emomix_cli.evaluate.judges import WhisperASR

        _STATE["asr"] = WhisperASR(threads=1)


def measure(item: dict) -> dict:
    """Real and vocoded pYIN voicing (and F0) of one item; Whisper transcripts with ``--wer``."""
    import torch

    from emomix_cli.audio import mel_spectrogram
    from emomix_cli.evaluate.judges import Cost, prosody, transcribe
    from emomix_cli.evaluate.run import vocode_mels

    vocoder = _STATE["vocoder"]
    real = np.asarray(item["audio"], dtype=np.float32)
    mel = mel_spectrogram(torch.from_numpy(real), vocoder.audio)[0]
    vocoded = vocode_mels(vocoder, [mel])[0]
    result = {k: v for k, v in item.items() if k != "audio"}
    for side, wav in (("real", real), ("vocoded", vocoded)):
        track = prosody(wav, SAMPLE_RATE, 0)  # n_phones only feeds the speaking rate, unused here
        result[f"{side}_voiced"] = track["voiced_fraction"]
        result[f"{side}_f0"] = track["f0_median"]
        if "asr" in _STATE:
            result[f"{side}_hyp"] = transcribe(_STATE["asr"], [wav], SAMPLE_RATE, Cost())[0]
    return result


def measure_all(items: list[dict], workers: int, wer: bool) -> list[dict]:
    results = []
    with progress_bar("vocoding + pYIN", total=len(items)) as bar:
        if workers == 1:
            _init_worker(wer)
            for item in items:
                results.append(measure(item))
                bar.advance()
        else:
            context = multiprocessing.get_context("spawn")  # torch in the parent: no fork
            with context.Pool(workers, initializer=_init_worker, initargs=(wer,)) as pool:
                for result in pool.imap_unordered(measure, items, chunksize=1):
                    results.append(result)
                    bar.advance()
    order = {item["id"]: i for i, item in enumerate(items)}
    return sorted(results, key=lambda r: order[r["id"]])


# ---------------------------------------------------------------- summary and tables
def summarise(results: list[dict], wer: bool) -> list[dict]:
    """One row per speaker: per emotion real / vocoded mean voiced fraction, ratio, F0."""
    rows = []
    for speaker in dict.fromkeys(r["speaker"] for r in results):
        mine = [r for r in results if r["speaker"] == speaker]
        row = {"speaker": speaker, "voice": mine[0]["voice"], "n": len(mine), "emotions": {}}
        for emotion in EMOTIONS:
            these = [r for r in mine if r["emotion"] == emotion]
            if not these:
                continue
            real = mean_defined(r["real_voiced"] for r in these)
            vocoded = mean_defined(r["vocoded_voiced"] for r in these)
            ratio = vocoded / real if real and vocoded is not None else None
            row["emotions"][emotion] = {
                "real": real, "vocoded": vocoded, "ratio": ratio, "n": len(these),
                "f0_real": mean_defined(r["real_f0"] for r in these),
                "f0_vocoded": mean_defined(r["vocoded_f0"] for r in these)}
        ratios = [e["ratio"] for e in row["emotions"].values()]
        row["min_ratio"] = None if None in ratios or not ratios else min(ratios)
        row["mean_vocoded"] = mean_defined(e["vocoded"] for e in row["emotions"].values())
        if wer:
            from emomix_cli.evaluate.judges import wer_cer

            for side in ("real", "vocoded"):
                row[f"wer_{side}"] = wer_cer([r["text"] for r in mine], [r[f"{side}_hyp"] for r in mine])["wer"]
        rows.append(row)
    return rows


def _f(value, spec=".2f") -> str:
    return "–" if value is None else format(value, spec)


def print_tables(rows: list[dict], wer: bool, markdown: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    table = Table(title="pYIN voiced fraction, real → vocoded (ratio), per voice × emotion")
    for name in ("speaker", "voice", *EMOTIONS, "min ratio", "mean voc.", *(("WER real", "WER voc.") if wer else ())):
        table.add_column(name)
    for row in sorted(rows, key=lambda r: -1 if r["min_ratio"] is None else -r["min_ratio"]):
        cells = []
        for emotion in EMOTIONS:
            e = row["emotions"].get(emotion)
            cells.append("" if e is None else f"{_f(e['real'])} → {_f(e['vocoded'])} ({_f(e['ratio'])})")
        ok = row["min_ratio"] is not None and row["min_ratio"] >= TARGET_RATIO
        mark = "[green]" if ok else "[red]"
        table.add_row(row["speaker"], row["voice"], *cells, f"{mark}{_f(row['min_ratio'])}",
                      _f(row["mean_vocoded"]), *((_f(row["wer_real"]), _f(row["wer_vocoded"])) if wer else ()))
    console.print(table)
    f0 = Table(title="median F0 of the real audio (Hz), mean over sentences")
    for name in ("speaker", "voice", *EMOTIONS):
        f0.add_column(name)
    for row in rows:
        f0.add_row(row["speaker"], row["voice"],
                   *[_f((row["emotions"].get(e) or {}).get("f0_real"), ".0f") for e in EMOTIONS])
    console.print(f0)
    if markdown:
        print("\n| speaker | voice | " + " | ".join(EMOTIONS) + " | min ratio |")
        print("|---|---|" + "---|" * (len(EMOTIONS) + 1))
        for row in rows:
            cells = [f"{_f(e['real'])} → {_f(e['vocoded'])}" if (e := row["emotions"].get(emotion)) else ""
                     for emotion in EMOTIONS]
            print(f"| {row['speaker']} | `{row['voice']}` | " + " | ".join(cells) + f" | {_f(row['min_ratio'])} |")


# ---------------------------------------------------------------- command line
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + line
        self.exit(2, f"voice_survival: error: {message}\n")


def parse_args(argv=None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", nargs="+", metavar="VOICE",
                        help="espeak voices to try, e.g. en-us+f2 en-gb-x-rp (default: the corpus's speakers)")
    parser.add_argument("--n-speakers", type=int, default=4,
                        help="without --voices: the corpus's first N speakers (default 4)")
    parser.add_argument("--corpus", type=Path, help="measure this rendered corpus's test split instead")
    parser.add_argument("--sentences", type=int,
                        help=f"test sentences per voice × emotion, 1..{N_TEST} (default 4; --corpus: all)")
    parser.add_argument("--seed", type=int, default=0, help="the corpus seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--wer", action="store_true", help="also Whisper tiny.en WER, real and vocoded")
    parser.add_argument("--json", type=Path, help="write the per-utterance results and the summary here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    args = parser.parse_args(argv)
    if args.sentences is not None and not 1 <= args.sentences <= N_TEST:
        parser.error(f"--sentences must be 1..{N_TEST}, got {args.sentences}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.corpus is not None and args.voices:
        parser.error("--corpus measures the corpus's own voices; drop --voices")
    if not 1 <= args.n_speakers <= len(SPEAKERS):
        parser.error(f"--n-speakers must be 1..{len(SPEAKERS)}, got {args.n_speakers}")
    if args.voices and len(set(args.voices)) != len(args.voices):
        parser.error("--voices lists a voice twice")
    return args


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    if args.corpus is not None:
        items = corpus_items(args.corpus, args.sentences)
        source = f"corpus {args.corpus}"
    else:
        if args.voices:
            for voice in args.voices:
                check_voice(voice)
            speakers = [(voice, voice) for voice in args.voices]
        else:
            speakers = SPEAKERS[: args.n_speakers]
        items = rendered_items(speakers, args.sentences or 4, args.seed, args.workers)
        source = f"rendered, seed {args.seed}"
    if args.wer:
        from emomix_cli.evaluate.judges import missing_extras

        if "whisper" in missing_extras():
            raise EmomixError(f"--wer needs {', '.join(missing_extras()['whisper'])}: pip install 'emomix[judges]'")
    results = measure_all(items, args.workers, args.wer)
    rows = summarise(results, args.wer)
    seconds = time.perf_counter() - started
    print_tables(rows, args.wer, args.markdown)
    print(f"{len(results)} utterances ({source}) in {seconds:.0f} s, {args.workers} worker(s), "
          f"{platform.processor() or platform.machine()}", file=sys.stderr)
    report = {"source": source, "seconds": seconds, "summary": rows, "utterances": results}
    if args.json is not None:
        from emomix_cli.config import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except EmomixError as error:
        print(f"voice_survival: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
