"""The smallest evaluation: wall time, CPU time and peak memory of `emomix eval --max-sentences 1`.

Each run is a fresh process, ``python -m emomix_cli eval --max-sentences 1 --out TMP`` with the
shipped model, its built-in sentences and every judge that is installed (Whisper and DNSMOS come
with ``emomix[judges]``), timed from outside: the wall time, the CPU time (user + system, every
thread) and the peak RSS of that process (``os.wait4``, the per-child form of
``resource.getrusage(RUSAGE_CHILDREN)``). Its report.json splits the time: utterances,
synthesis, vocoder and the judges per utterance. The goal (issue #30) is at most 60 s and 2 GiB
on 2 cores. The table names the CPU, whether it has native bf16 (the vocoder runs bf16 there)
and the load average at the start of each run: other processes stretch the wall time much more
than the CPU time, and 2 torch threads on 2 busy cores spin against each other.

    .venv/bin/python benchmarks/bench_eval.py                       # 1 run, torch's threads
    .venv/bin/python benchmarks/bench_eval.py --repeats 3 --threads 0 1
    .venv/bin/python benchmarks/bench_eval.py --extra="--guidance-sweep 1,2,3"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import cpu_description  # noqa: E402  (the one CPU line of the benchmarks)

GOAL_S, GOAL_GIB = 60.0, 2.0


def measured_run(command: list[str]) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS (MiB) of one ``command``, plus the load average before."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own usage, not every child's so far
    wall = time.perf_counter() - start
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{error[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024, "load": load}


def eval_command(out: Path, threads: int, extra: list[str]) -> list[str]:
    """The smallest eval; ``threads`` 0 leaves torch's default."""
    return [sys.executable, "-m", "emomix_cli", "eval", "--max-sentences", "1", "--out", str(out),
            *(["--threads", str(threads)] if threads else []), *extra]


def split_of(report: Path) -> dict[str, float]:
    """Utterances, synthesis and vocoder seconds, and judge seconds per utterance, from report.json."""
    timing = json.loads(report.read_text())["timing"]
    judges = {k: v for k, v in timing["judge_s_per_utterance"].items() if v is not None}
    return {"utterances": timing["utterances"], "synthesis": timing["synthesis_s"],
            "vocoder": timing["vocoder_s"], **{f"judge {k}": v for k, v in judges.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per thread setting")
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="eval --threads (0: torch's default)")
    parser.add_argument("--extra", default="", help="more eval options, e.g. --extra='--guidance-sweep off'")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for threads in args.threads:
            runs = []
            for k in range(args.repeats):
                out = Path(folder) / f"t{threads}_{k}"
                runs.append({**measured_run(eval_command(out, threads, shlex.split(args.extra))),
                             **split_of(out / "report.json")})
            rows.append((threads, runs))
    print_table(rows, args.extra)


def print_table(rows: list[tuple[int, list[dict[str, float]]]], extra: str) -> None:
    import torch

    print(f"CPU: {cpu_description()}; torch {torch.__version__}")
    print(f"command: emomix eval --max-sentences 1 --out TMP {extra} (shipped model, built-in sentences); "
          f"goal: <= {GOAL_S:g} s and <= {GOAL_GIB:g} GiB")
    print()
    print("| threads | wall, min (s) | wall, median (s) | CPU, min (s) | peak RSS, max (MiB) | load at start | "
          "utterances | synthesis (s) | vocoder (s) | judges per utterance (s) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for threads, runs in rows:
        walls = [r["wall"] for r in runs]
        best = min(runs, key=lambda r: r["wall"])
        judges = ", ".join(f"{k[6:]} {v:.2f}" for k, v in best.items() if k.startswith("judge "))
        loads = ", ".join(f"{r['load']:.1f}" for r in runs)
        print(f"| {threads or 'default'} | {min(walls):.1f} | {statistics.median(walls):.1f} | "
              f"{min(r['cpu'] for r in runs):.1f} | {max(r['rss_mib'] for r in runs):.0f} | "
              f"{loads} | {best['utterances']} | {best['synthesis']:.1f} | "
              f"{best['vocoder']:.1f} | {judges} |")


if __name__ == "__main__":
    main()
