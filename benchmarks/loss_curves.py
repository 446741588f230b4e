"""Training-loss curves of CPU series against their hours: the width study of the natural model
(recipes/demo_natural/RESULTS.md). Reads each run's train.log (``step N loss X ...`` lines,
written every ``train.log_every`` steps), offsets it by the hours its committed snapshot had
before this run started, prints a table of the loss averaged over windows, and draws a PNG.

    python benchmarks/loss_curves.py runs/demo_natural/cpu_flow1d_c96 runs/demo_natural/cpu_flow1d_c128 \
        --png recipes/demo_natural/loss_curves.png

Loss is the training objective (duration + prior + flow matching + γ·style, the style term's
weight as configured), smoothed over ``--window`` logged points; it is the early signal only:
the choice between widths is made on the validation judges once the models speak.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import numpy as np

LINE = re.compile(r"^(\S+ \S+) step (\d+) loss (\S+) dur_loss (\S+) prior_loss (\S+) diff_loss (\S+)")
START = re.compile(r"^(\S+ \S+) start kind=tts step=(\d+)")
PARTS = ("loss", "dur_loss", "prior_loss", "diff_loss")


def read_log(path: Path) -> dict[str, np.ndarray]:
    """hours (wall-clock since each start, runs concatenated), step and the loss parts."""
    rows, start, offset, last = [], None, 0.0, 0.0
    for line in path.read_text().splitlines():
        if (match := START.match(line)) is not None:
            offset, start = last, datetime.fromisoformat(match.group(1))
        elif (match := LINE.match(line)) is not None and start is not None:
            last = offset + (datetime.fromisoformat(match.group(1)) - start).total_seconds() / 3600
            rows.append([last, int(match.group(2)), *map(float, match.groups()[2:])])
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 2 + len(PARTS))
    return {"hours": data[:, 0], "step": data[:, 1], **{k: data[:, 2 + i] for i, k in enumerate(PARTS)}}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, len(values) + 1)
    return (sums[index] - sums[np.maximum(index - window, 0)]) / np.minimum(index, window)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding train.log")
    parser.add_argument("--offset-hours", type=float, nargs="*", default=None,
                        help="hours each series had before its log starts (default 0 each)")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args(argv)
    offsets = args.offset_hours or [0.0] * len(args.runs)
    curves = {}
    print(f"{'series':<22}{'hours':>7}{'step':>7}{'loss':>8}{'dur':>7}{'prior':>7}{'flow':>7}")
    for run, offset in zip(args.runs, offsets, strict=True):
        curve = read_log(run / "train.log")
        curve["hours"] = curve["hours"] + offset
        curves[run.name] = curve
        for k in np.linspace(0, len(curve["step"]) - 1, num=min(6, len(curve["step"]))).astype(int):
            parts = [smooth(curve[p], args.window)[k] for p in PARTS]
            print(f"{run.name:<22}{curve['hours'][k]:>7.2f}{int(curve['step'][k]):>7}"
                  + "".join(f"{v:>{8 if i == 0 else 7}.3f}" for i, v in enumerate(parts)))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, len(PARTS), figsize=(4 * len(PARTS), 3.2))
        for name, curve in curves.items():
            for axis, part in zip(axes, PARTS, strict=True):
                axis.plot(curve["hours"], smooth(curve[part], args.window), label=name)
                axis.set_title(part)
                axis.set_xlabel("wall-clock hours (1 CPU thread each)")
        axes[0].legend()
        figure.tight_layout()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.png, dpi=90)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
