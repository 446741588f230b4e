"""Where a flow1d model loses its voice: pYIN voicing of its decoder, teacher-forced and free.

For a few val utterances (one neutral and one angry per speaker), the vocoded ground-truth mel
and the model's mels are voiced by eval's pYIN (``evaluate.judges.prosody``), all through the
default vocoder:

- ``free``: the model's own durations (what ``emomix mix`` does);
- ``forced``: the durations MAS finds between the encoder's prior and the real mel, so the
  decoder gets the real timing and only its own sampling can lose the voice;
- ``prior``: μ itself, the encoder's frame-level mean (no decoder), as a floor;

for each weight set of a run's ``last.pt`` or a series snapshot (``--weights ema raw``) and each
temperature (``--taus``; τ is the inverse noise std, docs/DESIGN.md §1.6). If ``forced`` is as
unvoiced as ``free``, the durations are not the cause: the decoder has not learned the
harmonics yet.

    PYTHONPATH=. .venv/bin/python benchmarks/voicing_probe.py runs/demo_natural/cpu_flow1d_c128/last.pt \\
        --template runs/demo_natural/cpu_flow1d_c128/tts.pt --features data/demo_natural/features
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from emomix_cli.datasets import FeatureStore
from emomix_cli.evaluate.judges import prosody
from emomix_cli.synthesis import emotion_prototypes, load_default_vocoder, vocode
from emomix_cli.tts import export_for_shipping, load_tts


def probe_items(store: FeatureStore, emotions: tuple[str, ...]) -> list[dict]:
    """The first val utterance of each (speaker, emotion)."""
    val = store.items("val")
    return [next(it for it in val if it["speaker"] == s and it["emotion"] == e)
            for s in store.speakers for e in emotions if any(
                it["speaker"] == s and it["emotion"] == e for it in val)]


@torch.inference_mode()
def model_mels(bundle, store: FeatureStore, item: dict, taus: list[float], steps: int,
               seed: int) -> dict[str, np.ndarray]:
    """The prior and the free and teacher-forced samples of one utterance, as log-mels."""
    model = bundle.model
    real = torch.from_numpy(store.mel(item["id"]))[None]
    _, speaker = bundle.resolve_speaker(item["speaker"])
    emotion = emotion_prototypes(bundle, [item["emotion"]], item["speaker"])[item["emotion"]][None]
    spk = model.speaker_vector(speaker)
    tokens = torch.tensor([store.tokens(item)])
    lengths = torch.tensor([tokens.shape[1]])
    free = model.encode(tokens, lengths, emotion, spk)
    path = model._align(free["mu_x"], free["x_mask"], model.normalise(real), torch.ones(1, 1, real.shape[-1]))
    forced = model.encode(tokens, lengths, emotion, spk, durations=path.sum(-1))
    out = {}
    for name, encoded in (("free", free), ("forced", forced)):
        mu, mask = encoded["mu_y"], encoded["y_mask"]
        frames = int(encoded["y_lengths"][0])
        if name == "forced":
            out["prior"] = model.denormalise(mu)[0, :, :frames].numpy()
        for tau in taus:
            generator = torch.Generator().manual_seed(seed)
            mel = model.sample(lambda x, t, mu=mu, mask=mask: model.network_output(x, mask, mu, t, emotion, spk),
                               mu, mask, "euler", steps, tau, generator)
            out[f"{name} τ{tau:g}"] = mel[0, :, :frames].numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="a run's last.pt or a series snapshot")
    parser.add_argument("--template", type=Path, required=True, help="a tts.pt of the same recipe")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--weights", nargs="+", choices=("ema", "raw"), default=["ema", "raw"])
    parser.add_argument("--taus", type=float, nargs="+", default=[1.5, 3.0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--emotions", nargs="+", default=["neutral", "angry"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    store = FeatureStore(args.features)
    items = probe_items(store, tuple(args.emotions))
    voiced: dict[str, list[float]] = {}
    vocoder = None
    with tempfile.TemporaryDirectory() as tmp:
        for weights in args.weights:
            source = {"ema_from": args.state} if weights == "ema" else {"raw_from": args.state}
            bundle = load_tts(export_for_shipping(args.template, Path(tmp) / f"{weights}.pt", half=False, **source))
            vocoder = vocoder or load_default_vocoder(bundle)
            for item in items:
                mels = model_mels(bundle, store, item, args.taus, args.steps, args.seed)
                if weights == args.weights[0]:
                    mels["real (vocoded)"] = store.mel(item["id"])
                for name, mel in mels.items():
                    key = name if name == "real (vocoded)" else f"{weights} {name}"
                    fraction = prosody(vocode(vocoder, mel), bundle.audio.sample_rate, 1)["voiced_fraction"]
                    voiced.setdefault(key, []).append(fraction or 0.0)
    print(f"{len(items)} val utterances ({', '.join(args.emotions)} × {len(store.speakers)} speakers), "
          f"{args.steps} Euler steps, {args.state}")
    print("| mel | voiced fraction (mean) | min | max |\n|---|---:|---:|---:|")
    for key, values in voiced.items():
        print(f"| {key} | {np.mean(values):.3f} | {np.min(values):.2f} | {np.max(values):.2f} |")


if __name__ == "__main__":
    main()
