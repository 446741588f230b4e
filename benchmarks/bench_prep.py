"""Prep throughput (utterances/s) vs --workers on a generated corpus of tone wavs.

    .venv/bin/python benchmarks/bench_prep.py [--n 60] [--workers 1 2] [--seconds 2.0]

Each wav is a harmonic tone of ``--seconds`` (ESD utterances average ~2.5 s) with an English
sentence, so the numbers include espeak phonemisation, wav reading, the mel and the writes.
Worker startup (spawn, importing torch) is included: that is what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

from emomix_cli.prep import prep

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I can't believe it's already 42 degrees outside!",
    "Dr. Smith lives on Main St. with his three cats.",
    "Would you like a cup of tea, or perhaps coffee?",
]


def make_corpus(root: Path, n: int, seconds: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "wavs").mkdir(parents=True)
    rows = []
    t = np.arange(int(22050 * seconds)) / 22050
    for i in range(n):
        f0 = rng.uniform(100, 250)
        wav = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
        sf.write(root / "wavs" / f"u{i:04d}.wav", wav.astype(np.float32), 22050)
        rows.append({"wav": f"wavs/u{i:04d}.wav", "text": SENTENCES[i % len(SENTENCES)],
                     "speaker": f"spk{i % 3}", "emotion": ["angry", "sad"][i % 2]})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    table = Table(title=f"prep throughput: {args.n} tone wavs of {args.seconds} s")
    for column in ("workers", "seconds", "utt/s", "audio s per s", "rerun (no-op) s"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp) / "corpus", args.n, args.seconds)
        for workers in args.workers:
            out = Path(tmp) / f"out{workers}"
            start = time.perf_counter()
            summary = prep("manifest", corpus, out, workers=workers, progress=False)
            elapsed = time.perf_counter() - start
            assert summary.n_utterances == args.n, summary.skipped
            start = time.perf_counter()
            prep("manifest", corpus, out, workers=workers, progress=False)
            rerun = time.perf_counter() - start
            table.add_row(str(workers), f"{elapsed:.2f}", f"{args.n / elapsed:.1f}",
                          f"{args.n * args.seconds / elapsed:.0f}", f"{rerun:.2f}")
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
