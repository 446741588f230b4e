"""Load on ``emomix app``'s API: 1, 4 and 16 concurrent clients on ``GET /api/tts``.

Starts ``emomix app`` on a free loopback port (or uses ``--url`` of one already running), waits
for it, speaks one warm-up sentence, then for each client count runs that many clients, each
sending ``--per-client`` requests one after another (a 503 is counted, not retried). Every
request is bounded (``--request-timeout``) and so is the whole run (``--time-limit``: no new
request starts past it). Loopback only. Per client count it prints the answers by status,
throughput (sentences answered with a wav per second of wall time), latency p50/p95 of the
answered ones, the server's CPU seconds per answered sentence (when this script started it:
the figure that other load on a shared machine does not stretch) and the CPU.

    .venv/bin/python benchmarks/bench_app.py                     # 1, 4, 16 clients, 3 requests each
    .venv/bin/python benchmarks/bench_app.py --clients 4 --per-client 5 --queue-size 8
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_cold_start import cpu_description  # noqa: E402 (the CPU line every benchmark prints)

from emomix_cli.evaluate.run import BUILTIN_SENTENCES as SENTENCES  # noqa: E402 (eval's own)

MIX = {"angry": 0.6, "happy": 0.4}


def tts_url(base: str, k: int) -> str:
    return f"{base}/api/tts?" + urllib.parse.urlencode({"text": SENTENCES[k % len(SENTENCES)], **MIX, "seed": k})


def request(url: str, timeout: float) -> tuple[int, float]:
    """(HTTP status, seconds); status 0 for no answer within ``timeout`` or a broken connection."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    except OSError:
        status = 0
    return status, time.perf_counter() - start


def summarize(results: list[tuple[int, float]], wall_s: float) -> dict:
    """Counts by status, throughput of the 200s over ``wall_s``, latency p50/p95 of the 200s."""
    ok = [seconds for status, seconds in results if status == 200]
    return {"requests": len(results), "ok": len(ok), "busy": sum(s == 503 for s, _ in results),
            "other": sum(s not in (200, 503) for s, _ in results), "wall_s": wall_s,
            "throughput": len(ok) / wall_s if wall_s > 0 else 0.0,
            "p50": float(np.percentile(ok, 50)) if ok else None,
            "p95": float(np.percentile(ok, 95)) if ok else None}  # fmt: skip


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) of process ``pid`` so far (Linux /proc)."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(base: str, clients: int, per_client: int, deadline: float, timeout: float,
         server_pid: int | None = None) -> dict:
    """``clients`` threads, each sending ``per_client`` requests in turn until ``deadline``;
    with ``server_pid``, also the server's CPU seconds per answered sentence."""

    def client(c: int) -> list[tuple[int, float]]:
        done = []
        for r in range(per_client):
            if time.monotonic() > deadline:
                break
            done.append(request(tts_url(base, c * per_client + r), timeout))
        return done

    start, cpu = time.perf_counter(), process_cpu_s(server_pid)
    with ThreadPoolExecutor(clients) as pool:
        results = [row for rows in pool.map(client, range(clients)) for row in rows]
    row = summarize(results, time.perf_counter() - start)
    used = None if cpu is None else process_cpu_s(server_pid) - cpu
    row["cpu_per_ok"] = used / row["ok"] if used is not None and row["ok"] else None
    return row


def start_app(queue_size: int | None, threads: int | None, log) -> tuple[str, subprocess.Popen]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = [*(["--queue-size", str(queue_size)] if queue_size is not None else []),
             *(["--threads", str(threads)] if threads is not None else [])]
    process = subprocess.Popen([sys.executable, "-m", "emomix_cli", "app", "--port", str(port), *extra],
                               stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent)
    return f"http://127.0.0.1:{port}", process


def wait_for(base: str, process: subprocess.Popen | None, limit_s: float = 120) -> float:
    """Seconds until ``/api/info`` answers 200; RuntimeError if the app exits or takes too long."""
    start = time.perf_counter()
    while request(base + "/api/info", 5)[0] != 200:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"emomix app exited with {process.returncode}")
        if time.perf_counter() - start > limit_s:
            raise RuntimeError(f"emomix app did not answer within {limit_s:.0f} s")
        time.sleep(0.5)
    return time.perf_counter() - start


def print_table(rows: list[tuple[int, dict]]) -> None:
    def fmt(value, spec=".2f"):
        return "—" if value is None else format(value, spec)

    print("| clients | requests | 200 | 503 | other | sentences/s | p50 s | p95 s | wall s | server CPU s/sentence |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for clients, row in rows:
        print(f"| {clients} | {row['requests']} | {row['ok']} | {row['busy']} | {row['other']} | "
              f"{fmt(row['throughput'])} | {fmt(row['p50'])} | {fmt(row['p95'])} | {fmt(row['wall_s'], '.1f')} | "
              f"{fmt(row.get('cpu_per_ok'))} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an emomix app already running (default: start one on loopback)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--per-client", type=int, default=3, help="requests each client sends")
    parser.add_argument("--queue-size", type=int, help="the started app's --queue-size (default: its own)")
    parser.add_argument("--threads", type=int, help="the started app's --threads (default: torch's)")
    parser.add_argument("--time-limit", type=float, default=600, help="no request starts past this (s)")
    parser.add_argument("--request-timeout", type=float, default=120)
    args = parser.parse_args()
    if args.url and urllib.parse.urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be on this machine (127.0.0.1 or localhost)")
    deadline = time.monotonic() + args.time_limit
    with tempfile.TemporaryFile("w+") as log:
        base, process = (args.url.rstrip("/"), None) if args.url else start_app(args.queue_size, args.threads, log)
        try:
            ready = wait_for(base, process)
            warm = request(tts_url(base, 0), args.request_timeout)
            pid = None if process is None else process.pid
            rows = [(n, load(base, n, args.per_client, deadline, args.request_timeout, pid))
                    for n in args.clients]
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        if process is not None and process.returncode not in (0, -15):
            log.seek(0)
            print(log.read()[-2000:], file=sys.stderr)
    info = urllib.parse.urlencode(MIX)
    print(f"emomix app: answered after {ready:.1f} s; warm-up request {warm[1]:.2f} s (status {warm[0]}); "
          f"GET /api/tts with {info}, the model's default steps, {len(SENTENCES)} sentences in turn; "
          f"app --threads {args.threads or 'default'}, --queue-size {args.queue_size or 'default'}")
    print_table(rows)
    print(f"CPU: {cpu_description()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
