"""The demo model's learning curve: CPU-hours of training against the validation judges.

Rows live in ``docs/learning_curve.csv``; each comes from an ``emomix eval`` report on the val
split (``--add``), so the table in recipes/demo/RESULTS.md and the plot never hold hand-copied numbers.

    # judge a snapshot on val (same settings for every row), then add its row
    .venv/bin/python benchmarks/tune_sampler.py --what defaults --features data/demo/features \
        --model runs/demo/snap.pt --sentences 2 --threads 1 --out runs/tune/snap --settings 10,1.5,1,weighted
    .venv/bin/python benchmarks/learning_curve.py --add runs/tune/snap/10_1.5_1_weighted/report.json \
        --label "CPU run 3, EMA" --cpu-hours 1.2 --steps 2600
    # or in one go from a committed series snapshot (hours and step read from it; 4 val
    # sentences, one per speaker; a tts.pt of the same recipe supplies the config):
    .venv/bin/python benchmarks/learning_curve.py --judge recipes/demo/snapshots/flow1d.pt \
        --template runs/demo/cpu_flow1d/tts.pt --series "flow1d from scratch" --features data/demo/features
    # print the table and draw docs/learning_curve.png
    .venv/bin/python benchmarks/learning_curve.py
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from emomix_cli.config import atomic_write_bytes, atomic_write_text
from emomix_cli.errors import EmomixError
from emomix_cli.evaluate.bar import headline, objective
from emomix_cli.evaluate.schema import Report

CSV = Path("docs/learning_curve.csv")
PNG = Path("docs/learning_curve.png")
FIELDS = ("series", "label", "cpu_hours", "steps", "tau", "guidance", "split", "sentences",
          "wer", "voiced", "ua", "rho_ser", "objective")  # fmt: skip
PLOTTED = (("wer", "Whisper WER"), ("voiced", "voiced fraction"), ("ua", "second-SER UA"),
           ("objective", "objective (UA + voiced − WER)"))  # fmt: skip


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def row_from_report(data: dict, label: str, cpu_hours: float, steps: int, series: str = "main",
                    guidance: float | None = None) -> dict:
    """One curve row: the report's sampler settings and its headline numbers (val only).

    ``data``: a report.json. ``guidance``: take the row of the report's guidance sweep at that
    w instead (single emotions: WER, voicing and UA are the same quantities as the headline's; no ρ)."""
    report = Report.from_json(data)
    config = report.config
    if config.split != "val":
        raise EmomixError(f"the learning curve is measured on val, this report is on '{config.split}'")
    h, w = headline(report), config.guidance
    if guidance is not None and guidance != w:
        sweep = {row.w: row for row in (report.guidance.rows if report.guidance else [])}
        if guidance not in sweep:
            raise EmomixError(f"the report has no guidance sweep at w = {guidance:g}")
        row, w = sweep[guidance], guidance
        h = {"wer": row.wer, "voiced": row.voiced_fraction, "ua": row.judge_accuracy, "rho_ser": None}
        h["objective"] = objective(h["ua"], h["voiced"], h["wer"])
    row = {"series": series, "label": label, "cpu_hours": f"{cpu_hours:.2f}", "steps": str(steps),
           "tau": f"{config.temperature:g}", "guidance": f"{w:g}", "split": "val",
           "sentences": str(config.n_sentences)}  # fmt: skip
    row.update({k: "" if h[k] is None else f"{h[k]:.3f}" for k in ("wer", "voiced", "ua", "rho_ser", "objective")})
    return row


def judge_snapshot(snapshot: Path, template: Path, features: Path, out: Path, setting: str,
                   sentences: int, weights: str = "ema") -> tuple[dict, float, int]:
    """Export ``snapshot``'s EMA (or raw: ``weights``) weights into ``template``'s model and
    judge it on val.

    Returns the report (as JSON data), the series' hours stored in the snapshot and its step."""
    from emomix_cli.checkpoint import load_checkpoint
    from emomix_cli.evaluate import run_eval
    from emomix_cli.evaluate.judges import default_judge_ser, load_judges
    from emomix_cli.tts import export_for_shipping

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tune_sampler import parse_setting  # the same settings grammar as the sampler grid

    state = load_checkpoint(snapshot, "train-state")
    hours = state.get("snapshot", {}).get("hours")
    if hours is None:
        raise EmomixError(f"{snapshot} stores no series hours; write it with recipes/demo/cpu_train.sh")
    source = {"ema_from": snapshot} if weights == "ema" else {"raw_from": snapshot}
    model = export_for_shipping(template, out / f"model_{weights}.pt", half=False, **source)
    judges = load_judges(default_judge_ser(str(features), str(model)), dnsmos=False)
    report = run_eval(str(model), None, out / "eval", features=str(features), split="val",
                      options=parse_setting(setting), max_sentences=sentences, judges=judges,
                      progress=True, guidance_levels=[])  # fmt: skip
    return report.to_json(), float(hours), int(state["step"])


def markdown(rows: list[dict]) -> str:
    lines = ["| series | weights | hours | steps | τ | w | WER | voiced | 2nd-SER UA | ρ (2nd SER) | objective |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["series"] != "main", r["series"], r["guidance"], float(r["cpu_hours"]))):
        cells = [r["series"], r["label"], r["cpu_hours"], r["steps"], r["tau"], r["guidance"],
                 *(f"{float(r[k]):.2f}" if r[k] else "—" for k in ("wer", "voiced", "ua", "rho_ser", "objective"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """The four judges against CPU-hours, one line per (series, τ, w)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 3.2))
    axes = figure.subplots(1, len(PLOTTED))
    settings = sorted({(r["series"], r["tau"], r["guidance"]) for r in rows})
    for series, tau, w in settings:
        chosen = sorted((r for r in rows if (r["series"], r["tau"], r["guidance"]) == (series, tau, w)),
                        key=lambda r: float(r["cpu_hours"]))
        hours = [float(r["cpu_hours"]) for r in chosen]
        for axis, (key, title) in zip(axes, PLOTTED, strict=True):
            axis.plot(hours, [float(r[key]) if r[key] else float("nan") for r in chosen], marker="o",
                      label=f"{series}, τ {tau}, w {w}")
            axis.set_title(title)
            axis.set_xlabel("training hours")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--png", type=Path, default=PNG)
    parser.add_argument("--add", type=Path, help="a val report.json to add as a row")
    parser.add_argument("--label", default="")
    parser.add_argument("--cpu-hours", type=float)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--series", default="main", help="rows of one series are joined by a line")
    parser.add_argument("--guidance", type=float, help="take the report's guidance-sweep row at this w")
    parser.add_argument("--judge", type=Path, help="a series snapshot (recipes/demo/snapshots/<family>.pt) to judge and add")
    parser.add_argument("--template", type=Path, help="--judge: a tts.pt of the same recipe (its config)")
    parser.add_argument("--features", type=Path, default=Path("data/demo/features"))
    parser.add_argument("--setting", default="10,1.5,1,weighted", help="--judge: steps,tau,guidance,encoder[,solver[,guidance_reference]]")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                        help="--judge: the snapshot's EMA weights or its raw ones")
    parser.add_argument("--sentences", type=int, default=4, help="--judge: val sentences (round-robin over speakers)")
    parser.add_argument("--out", type=Path, default=Path("runs/curve"))
    parser.add_argument("--threads", type=int, default=2, help="--judge: torch threads")
    parser.add_argument("--only", nargs="+", metavar="SERIES",
                        help="table and plot only these series (the CSV keeps every row)")
    args = parser.parse_args()
    rows = read_rows(args.csv)
    if args.judge:
        if args.template is None:
            parser.error("--judge needs --template (a tts.pt of the same recipe)")
        import torch

        torch.set_num_threads(args.threads)
        out = args.out / f"{args.judge.stem}_{int(args.judge.stat().st_mtime)}"
        data, hours, steps = judge_snapshot(args.judge, args.template, args.features, out, args.setting,
                                            args.sentences, args.weights)
        label = args.label or f"step {steps} ({'EMA' if args.weights == 'ema' else 'raw'})"
        rows.append(row_from_report(data, label, hours, steps,
                                    args.series, args.guidance))
        write_rows(args.csv, rows)
    elif args.add:
        if args.cpu_hours is None or args.steps is None:
            parser.error("--add needs --cpu-hours and --steps")
        rows.append(row_from_report(json.loads(args.add.read_text()), args.label, args.cpu_hours, args.steps,
                                    args.series, args.guidance))
        write_rows(args.csv, rows)
    shown = [r for r in rows if args.only is None or r["series"] in args.only]
    print(markdown(shown))
    if shown:
        plot(shown, args.png)
        print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
