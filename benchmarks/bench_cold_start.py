"""Cold start of `emomix mix`: where the wall time of a first sentence goes, stage by stage.

Every run is a fresh process (nothing is warm but the OS file cache). Two kinds of run:

- the command itself, ``python -m emomix_cli mix TEXT --happy 1 -o OUT.wav`` (shipped model,
  default vocoder), timed from outside: the "emomix mix (total)" row;
- the same command run by a child of this script that times the library calls the command makes
  (``load_tts``, ``load_vocoder``, ``synthesize``, ``save_wav``). "start-up + imports" runs from
  the launch to the end of the imports, "exit" from the child's last clock reading to its end,
  "other" is the rest (argument parsing, option checks, printing). The child then synthesizes
  the sentence a second time: first call minus second call is the one-off warm-up (oneDNN
  primitive creation, espeak start-up); that second call is left out of the child's total.

Baselines in the same run: ``python -c pass``, ``python -c "import torch"`` and ``emomix --help``.
Each row gives the minimum and the median wall time over ``--repeats`` runs, and the minimum CPU
time (user + system, all threads): other processes on a shared machine stretch the wall time much
more than the CPU time, so there the CPU column is the one to compare.

    .venv/bin/python benchmarks/bench_cold_start.py               # 5 runs of each
    .venv/bin/python benchmarks/bench_cold_start.py --repeats 9 --imports 12
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = "Hello there."
WEIGHTS = ["--happy", "1"]
# (row, key in the child's report); synthesis is split into its own stages in the table
STAGES = [
    ("start-up + imports", "imports"),
    ("model load (load_tts)", "model"),
    ("vocoder load (load_vocoder)", "vocoder_load"),
    ("synthesis (first call)", "synthesis"),
    ("  text -> phoneme ids", "text"),
    ("  encoder", "encoder"),
    ("  decoder (sampler)", "decoder"),
    ("  vocoder", "vocoder"),
    ("write wav", "write"),
    ("exit (interpreter teardown)", "teardown"),
]


def cpu_description() -> str:
    """``model name, N cores, bf16: avx512_bf16, amx_bf16`` from /proc/cpuinfo (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    names = re.findall(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    flags = set((re.findall(r"^flags\s*:\s*(.+)$", info, re.MULTILINE) or [""])[0].split())
    bf16 = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile") if flag in flags] or ["none"]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{names[0] if names else platform.machine()}, {usable} cores, native bf16: {', '.join(bf16)}"


def children_cpu() -> float:
    """CPU seconds (user + system, all threads) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``command`` from launch to exit (its output discarded)."""
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start, children_cpu() - cpu


def staged_run(python: str, out_wav: Path, env: dict[str, str]) -> dict[str, float]:
    """One cold `emomix mix` in a child that times its stages (see :func:`child`)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        launched, cpu = time.time(), children_cpu()
        subprocess.run([python, __file__, "--child", report.name, str(out_wav)], env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ended, cpu = time.time(), children_cpu() - cpu
        stages = json.loads(Path(report.name).read_text())
    stages["imports"] = stages.pop("imports_done") - launched
    stages["teardown"] = ended - stages.pop("child_end")
    # the command's own life: without the second synthesis call the child adds at its end
    stages["total"] = ended - launched - stages["synthesis_warm"]
    # CPU: the child measured its own stages; start-up + imports is its CPU time until then,
    # teardown what its whole life used beyond its last reading
    stages["imports_cpu"] = stages.pop("imports_done_cpu")
    stages["teardown_cpu"] = cpu - stages.pop("child_end_cpu")
    stages["total_cpu"] = cpu - stages.pop("extra_cpu")
    return stages


def child(report: str, out_wav: str) -> None:
    """Run `emomix mix` in this process with its library calls timed; write the times as JSON.

    The calls are wrapped where ``run_mix`` looks them up, so the command runs its own code.
    """
    import emomix_cli.audio
    import emomix_cli.synthesis
    import emomix_cli.tts
    import emomix_cli.vocoder
    from emomix_cli.cli import main

    times: dict[str, float] = {"imports_done": time.time(), "imports_done_cpu": time.process_time()}
    calls: dict[str, tuple] = {}  # key -> (library function, args, kwargs, result)

    def timed(module, name: str, key: str) -> None:
        function = getattr(module, name)

        def wrapper(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            result = function(*args, **kwargs)
            times[key], times[f"{key}_cpu"] = time.perf_counter() - start, time.process_time() - cpu
            calls[key] = (function, args, kwargs, result)
            return result

        setattr(module, name, wrapper)

    timed(emomix_cli.tts, "load_tts", "model")
    timed(emomix_cli.vocoder, "load_vocoder", "vocoder_load")
    timed(emomix_cli.synthesis, "synthesize", "synthesis")
    timed(emomix_cli.audio, "save_wav", "write")
    sys.argv = ["emomix", "mix", TEXT, *WEIGHTS, "-o", out_wav]
    try:
        main()
    except SystemExit as done:
        if done.code:
            raise
    synthesize, args, kwargs, first = calls["synthesis"]
    start, cpu = time.perf_counter(), time.process_time()
    second = synthesize(*args, **kwargs)  # same bundle, vocoder and options: nothing left to warm
    times["synthesis_warm"], times["extra_cpu"] = time.perf_counter() - start, time.process_time() - cpu
    for key in ("text", "encoder", "decoder", "vocoder"):
        times[key], times[f"{key}_warm"] = first.timings[key], second.timings[key]
    times["audio_s"] = first.duration_s
    times["child_end"], times["child_end_cpu"] = time.time(), time.process_time()
    Path(report).write_text(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cold runs of each kind")
    parser.add_argument("--imports", type=int, default=0,
                        help="also list the N slowest top-level imports of the command (-X importtime)")
    parser.add_argument("--child", nargs=2, metavar=("REPORT", "WAV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    python, env = sys.executable, dict(os.environ)
    out = Path(tempfile.mkdtemp()) / "x.wav"
    command = [python, "-m", "emomix_cli", "mix", TEXT, *WEIGHTS, "-o", str(out)]
    baselines = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import torch'": [python, "-c", "import torch"],
        "emomix --help": [python, "-m", "emomix_cli", "--help"],
    }
    walls: dict[str, list[tuple[float, float]]] = {name: [] for name in [*baselines, "emomix mix (total)"]}
    staged: list[dict[str, float]] = []
    load_before = f"{os.getloadavg()[0]:.2f}"
    for _ in range(args.repeats):  # interleaved, so a busy spell hits every row alike
        for name, argv in baselines.items():
            walls[name].append(wall(argv, env))
        walls["emomix mix (total)"].append(wall(command, env))
        staged.append(staged_run(python, out, env))

    print_report(staged, walls, python, env, load_before, args.repeats)
    if args.imports:
        print_imports(command, env, args.imports)


def print_report(staged: list[dict[str, float]], walls: dict[str, list[float]], python: str,
                 env: dict[str, str], load_before: str, repeats: int) -> None:
    """The header (CPU, versions, code), the stage table and the warm-up line."""
    import torch  # only for the header; after the timed runs

    print(f"CPU: {cpu_description()}; torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"Python {platform.python_version()}; emomix {measured_code(python, env)}; {time.strftime('%Y-%m-%d')}")
    print(f'command: emomix mix "{TEXT}" {" ".join(WEIGHTS)} -o x.wav (shipped model, default vocoder); '
          f"{staged[0]['audio_s']:.2f} s of audio; {repeats} cold runs of each; load average (1 min) "
          f"{load_before} before, {os.getloadavg()[0]:.2f} after")
    print()
    print("| stage | wall, min (s) | wall, median (s) | CPU, min (s) |")
    print("|---|---|---|---|")
    top_level = [key for label, key in STAGES if not label.startswith(" ")]
    for run in staged:
        run["other"] = run["total"] - sum(run[key] for key in top_level)
        run["other_cpu"] = run["total_cpu"] - sum(run[f"{key}_cpu"] for key in top_level)
    rows = [*STAGES, ("other (argument parsing, printing)", "other"), ("timed child, launch to exit (its 2nd call left out)", "total")]
    for label, key in rows:
        values = [run[key] for run in staged]
        cpu = f"{min(run[f'{key}_cpu'] for run in staged):.3f}" if f"{key}_cpu" in staged[0] else ""
        print(f"| {label} | {min(values):.3f} | {statistics.median(values):.3f} | {cpu} |")
    for name, runs in walls.items():
        label = f"**{name}**" if name.startswith("emomix mix") else f"baseline: {name}"
        values = [w for w, _ in runs]
        print(f"| {label} | {min(values):.3f} | {statistics.median(values):.3f} | {min(c for _, c in runs):.3f} |")

    def warm_up(key: str) -> float:  # minimum of the first calls minus minimum of the second calls
        return min(run[key] for run in staged) - min(run[f"{key}_warm"] for run in staged)

    print()
    print(f"first-call warm-up (min of first calls minus min of second calls): synthesis "
          f"{warm_up('synthesis'):.3f} s; of it vocoder {warm_up('vocoder'):.3f} s, decoder "
          f"{warm_up('decoder'):.3f} s, text {warm_up('text'):.3f} s")


def measured_code(python: str, env: dict[str, str]) -> str:
    """Where the measured emomix_cli was imported from, and its git commit when it has one."""
    where = Path(subprocess.run([python, "-c", "import emomix_cli; print(emomix_cli.__file__)"], env=env,
                                check=True, capture_output=True, text=True).stdout.strip()).parent.parent
    git = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"commit {git.stdout.strip()}{' + changes' if dirty else ''}" if git.returncode == 0 else f"from {where}"


def print_imports(command: list[str], env: dict[str, str], n: int) -> None:
    """The ``n`` top-level packages the command spends most import time in (self time, summed)."""
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, check=True,
                            capture_output=True, text=True)
    totals: dict[str, int] = {}
    for match in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \| *([\w.]+)", result.stderr):
        package = match.group(2).split(".")[0]
        totals[package] = totals.get(package, 0) + int(match.group(1))
    print()
    print(f"imports of `emomix mix` (self time summed per top-level package, one run): "
          f"{sum(totals.values()) / 1e6:.2f} s in all")
    print("| package | seconds |")
    print("|---|---|")
    for package, micros in sorted(totals.items(), key=lambda item: -item[1])[:n]:
        print(f"| {package} | {micros / 1e6:.3f} |")


if __name__ == "__main__":
    main()
