"""Run every benchmark in this folder, one after another, and print each table.

    .venv/bin/python benchmarks/run.py                 # CPU, full settings (~10 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick         # smaller settings (~3 min)
    .venv/bin/python benchmarks/run.py --device cuda   # adds the GPU rows: synthesis, vocoder,
                                                       # training fp32 and bf16
    .venv/bin/python benchmarks/run.py --only decoder synthesis

Each benchmark runs in its own process (so peak memory and thread settings do not leak between
them); the exit status is non-zero if any of them failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from emomix_cli.assets import DEMO_MODEL

HERE = Path(__file__).resolve().parent


def jobs(device: str, quick: bool) -> list[tuple[str, list[str]]]:
    """(name, script + arguments) in the order they run."""
    repeats = ["--repeats", "1" if quick else "3"]
    listed = [
        ("decoder", ["bench_decoder.py", *repeats, *(["--dims", "24"] if quick else [])]),
        ("mish", ["bench_mish.py", "--repeats", "3" if quick else "9"]),
        ("synthesis", ["bench_synthesis.py", "--model", str(DEMO_MODEL), *repeats,
                       *(["--steps", "10"] if quick else [])]),
        ("vocoder", ["bench_vocoder.py", *repeats]),
        ("train", ["bench_train.py", "--steps", "2" if quick else "3",
                   *(["--presets", "small"] if quick else [])]),
        ("prep", ["bench_prep.py", *(["--n", "20"] if quick else [])]),
        ("cold-start", ["bench_cold_start.py", "--repeats", "3" if quick else "5", "--imports", "10"]),
        ("segments", ["bench_segments.py", "--pairs", "2" if quick else "4"]),
        ("app", ["bench_app.py", *(["--clients", "1", "4", "--per-client", "2"] if quick else [])]),
        ("app-thread", ["bench_service_thread.py", "--rounds", "2" if quick else "3"]),
        ("eval", ["bench_eval.py", "--threads", "1", *([] if quick else ["0"])]),
    ]
    if device != "cpu":
        gpu = ["--device", device]
        listed += [
            ("synthesis-gpu", ["bench_synthesis.py", "--model", str(DEMO_MODEL), *repeats, *gpu]),
            ("vocoder-gpu", ["bench_vocoder.py", *repeats, *gpu]),
            ("train-gpu-fp32", ["bench_train.py", "--steps", "10", *gpu]),
            ("train-gpu-bf16", ["bench_train.py", "--steps", "10", "--bf16", *gpu]),
        ]
    return listed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to add the GPU rows")
    parser.add_argument("--quick", action="store_true", help="smaller settings, one repeat")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args()
    selected = jobs(args.device, args.quick)
    if args.only:
        unknown = sorted(set(args.only) - {name for name, _ in selected})
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {[n for n, _ in selected]}")
        selected = [(name, argv) for name, argv in selected if name in args.only]
    failed = []
    for name, argv in selected:
        command = [sys.executable, str(HERE / argv[0]), *argv[1:]]
        print(f"\n## {name}: {' '.join(argv)}", flush=True)
        if args.list:
            continue
        start = time.perf_counter()
        if subprocess.run(command, cwd=HERE.parent).returncode != 0:
            failed.append(name)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
