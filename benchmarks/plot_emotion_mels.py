"""One sentence in every emotion of a model, as mel spectrograms side by side (a PNG).

    .venv/bin/python benchmarks/plot_emotion_mels.py --out docs/mels_per_emotion.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from emomix_cli.assets import DEMO_MODEL  # noqa: E402
from emomix_cli.synthesis import SynthesisOptions, synthesize_mels  # noqa: E402
from emomix_cli.tts import load_tts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--text", default="The weather is lovely today, is it not?")
    parser.add_argument("--speaker", default=None)
    parser.add_argument("--out", default="docs/mels_per_emotion.png")
    args = parser.parse_args()
    bundle = load_tts(args.model)
    options = SynthesisOptions(speaker=args.speaker).resolve(bundle)
    hop_s = bundle.audio.hop_length / bundle.audio.sample_rate
    emotions = list(bundle.emotions)
    fig, axes = plt.subplots(len(emotions), 1, figsize=(9, 2.0 * len(emotions)))
    for axis, emotion in zip(axes, emotions, strict=True):
        mel = synthesize_mels(bundle, args.text, {emotion: 1.0}, options).mel
        axis.imshow(mel, origin="lower", aspect="auto", vmin=-11.5, vmax=2.0, cmap="magma")
        axis.set_ylabel("mel bin")
        axis.set_title(f"{emotion}: {mel.shape[1] * hop_s:.2f} s", fontsize=10, loc="left")
    axes[-1].set_xlabel("frame (11.6 ms)")
    fig.suptitle(f'"{args.text}" ({options.solver}, {options.steps} steps, τ={options.temperature}, '
                 f'guidance {options.guidance:g})')
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
