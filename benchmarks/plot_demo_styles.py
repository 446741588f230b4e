"""Plot F0 contours of one demo sentence in all five emotions and print prosody per emotion.

    .venv/bin/python benchmarks/plot_demo_styles.py --speaker 2 --sentence 0 --sentences 10 \
        --out docs/f0_styles.png

The figure shows that each emotion of the demo corpus is a distinct prosodic style; the table
(median F0 over voiced frames, F0 spread, duration, RMS, averaged over ``--sentences`` sentences)
puts numbers on it. Audio is rendered in memory; nothing is written but the PNG.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import librosa
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from emomix_cli.config import atomic_write_bytes  # noqa: E402
from emomix_cli.demo_corpus import EMOTIONS, SAMPLE_RATE, plan_corpus, render_utterance  # noqa: E402

COLORS = {
    "neutral": "tab:gray",
    "angry": "tab:red",
    "happy": "tab:orange",
    "sad": "tab:blue",
    "surprise": "tab:purple",
}
HOP = 256


def f0_contour(audio: np.ndarray) -> np.ndarray:
    """pyin F0 in Hz per 256-sample hop, NaN where unvoiced."""
    f0, voiced, _ = librosa.pyin(
        audio, fmin=50, fmax=600, sr=SAMPLE_RATE, frame_length=1024, hop_length=HOP
    )
    return np.where(voiced, f0, np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speaker", type=int, default=2, help="1-based demo speaker index")
    parser.add_argument("--sentence", type=int, default=0, help="sentence index for the plot")
    parser.add_argument("--sentences", type=int, default=10, help="sentences for the table")
    parser.add_argument("--out", type=Path, default=Path("docs/f0_styles.png"))
    args = parser.parse_args()

    n_sentences = max(args.sentences, args.sentence + 1)
    plan = [
        u for u in plan_corpus(args.speaker, n_sentences) if u.speaker == f"demo_spk{args.speaker}"
    ]
    start = time.perf_counter()
    audio = {u.id: render_utterance(u) for u in plan}
    seconds = time.perf_counter() - start
    print(
        f"rendered {len(plan)} utterances in {seconds:.2f} s "
        f"({len(plan) / seconds:.1f} utt/s, one process)"
    )

    stats: dict[str, list[tuple[float, float, float, float]]] = {e: [] for e in EMOTIONS}
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for u in plan:
        index = int(u.id.rsplit("_", 1)[1])
        f0 = f0_contour(audio[u.id])
        wav = audio[u.id]
        if index < args.sentences:
            stats[u.emotion].append(
                (
                    float(np.nanmedian(f0)),
                    float(np.nanstd(f0)),
                    len(wav) / SAMPLE_RATE,
                    float(np.sqrt(np.mean(wav**2))),
                )
            )
        if index == args.sentence:
            times = np.arange(len(f0)) * HOP / SAMPLE_RATE
            axis.plot(times, f0, color=COLORS[u.emotion], label=u.emotion, linewidth=2)
            text = u.text
    axis.set_xlabel("time (s)")
    axis.set_ylabel("F0 (Hz, pyin)")
    axis.set_title(f"demo_spk{args.speaker}: \u201c{text}\u201d")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out}\n")

    print(f"| emotion | median F0 (Hz) | F0 sd (Hz) | duration (s) | RMS |  (n={args.sentences})")
    print("|---|---|---|---|---|")
    for emotion in EMOTIONS:
        rows = np.array(stats[emotion])
        f0, spread, duration, rms = rows.mean(axis=0)
        print(f"| {emotion} | {f0:.0f} | {spread:.1f} | {duration:.2f} | {rms:.3f} |")


if __name__ == "__main__":
    main()
