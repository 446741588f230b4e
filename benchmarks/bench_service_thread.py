"""Where the app's torch work runs: the model loaded on the main thread and synthesized on the
worker thread (emomix app before 2026-12-03), against everything on the worker thread (now).

Each arrangement is a fresh process of this script (``--arrangement``), alternated ``--rounds``
times in one run so that a shared machine's drift hits both alike. Each process loads the shipped
model into a :class:`~emomix_cli.server.serve.SpeechService`, speaks one warm-up sentence, then
``--sentences`` of eval's built-in sentences as angry 0.6 + happy 0.4 through ``service.speak``
(no HTTP). The table gives sentences per second of wall time and CPU seconds per sentence, the
median over rounds, and the ratio of the medians.

    .venv/bin/python benchmarks/bench_service_thread.py --rounds 3 --sentences 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_cold_start import cpu_description  # noqa: E402 (the CPU line every benchmark prints)

MIX = {"angry": 0.6, "happy": 0.4}
ARRANGEMENTS = {"split": "load on the main thread, synthesis on the worker's",
                "worker": "load and synthesis on the worker's thread (emomix app)"}


def one_arrangement(arrangement: str, sentences: int) -> dict[str, float]:
    from emomix_cli.assets import model_path
    from emomix_cli.evaluate.run import BUILTIN_SENTENCES
    from emomix_cli.server.serve import SpeechService, build_request

    if arrangement == "worker":
        service = SpeechService.load(model_path("espeak"))
    else:
        from emomix_cli.synthesis import load_default_vocoder
        from emomix_cli.tts import load_tts

        bundle = load_tts(model_path("espeak"), device="cpu")
        service = SpeechService(bundle, load_default_vocoder(bundle))

    def say(k: int) -> None:
        text = BUILTIN_SENTENCES[k % len(BUILTIN_SENTENCES)]
        service.speak(build_request(text, MIX, {"seed": k}, service.emotions))

    say(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(sentences):
        say(k)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    service.close()
    return {"per_s": sentences / wall, "cpu_s": cpu / sentences}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--arrangement", choices=sorted(ARRANGEMENTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arrangement:
        print(json.dumps(one_arrangement(args.arrangement, args.sentences)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ARRANGEMENTS}
    for _ in range(args.rounds):
        for name in ARRANGEMENTS:
            out = subprocess.run([sys.executable, __file__, "--arrangement", name, "--sentences",
                                  str(args.sentences)], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(cpu_description())
    print(f"{args.sentences} sentences per process, {args.rounds} rounds alternated; medians\n")
    print("| arrangement | sentences/s | CPU s/sentence | every round (sentences/s) |")
    print("|---|---:|---:|---|")
    median = {name: statistics.median(r["per_s"] for r in rows) for name, rows in runs.items()}
    for name, rows in runs.items():
        each = ", ".join(f"{r['per_s']:.2f}" for r in rows)
        print(f"| {ARRANGEMENTS[name]} | {median[name]:.2f} | "
              f"{statistics.median(r['cpu_s'] for r in rows):.2f} | {each} |")
    print(f"\nworker / split: {median['worker'] / median['split']:.2f}x sentences per second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
