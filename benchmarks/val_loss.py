"""Validation losses of several training states on equal terms (an A/B of two recipes).

Each ``last.pt`` or series snapshot (raw or EMA weights, ``--weights``) is scored on the whole
val split of the recipe's feature store with the same decoder segment (``--out-size``; 0 = the
whole mel), the same seeded noise and times, condition dropout off: the losses of ``emomix
train tts`` without the style term. Two runs trained with different settings (say, segment
lengths) are then compared on one measure, which their own end-of-run validations are not.

    PYTHONPATH=. .venv/bin/python benchmarks/val_loss.py --config recipes/demo_natural/tts.yaml \\
        runs/ab/A.pt runs/ab/B/last.pt --set "model.flow.channels=[128,128]" \\
        ser=recipes/demo_natural/snapshots/ser.pt prototypes=recipes/demo_natural/snapshots/prototypes.pt
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from emomix_cli.checkpoint import load_checkpoint
from emomix_cli.config import load_config
from emomix_cli.tts.train import TTSTrainConfig, TTSTraining


def val_losses(training: TTSTraining, state: dict, seed: int = 0) -> dict[str, float]:
    """Mean dur/prior/flow losses over the val split for one weight dict."""
    model = training.model
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(training.val_set, batch_size=training.cfg.train.batch_size,
                                         collate_fn=training.collate_fn)
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for batch in loader:
            values = training.losses(model, batch, training.device, generator, style_scale=0)
            for key in ("dur_loss", "prior_loss", "diff_loss", "loss"):
                sums[key] = sums.get(key, 0.0) + float(values[key]) * len(batch["tokens"])
            n += len(batch["tokens"])
    return {key: value / n for key, value in sums.items()}


def prepare(config: str | Path, overrides: list[str], out_size: int, run_dir: str | Path) -> TTSTraining:
    """The recipe's model and val data (its SER embeddings, prototypes), nothing trained or
    written: ``run_dir`` only stands in for the config's."""
    cfg = load_config(TTSTrainConfig, config, [*overrides, f"run_dir={run_dir}", f"out_size={out_size}",
                                               "train.device=cpu"])
    training = TTSTraining(cfg, None, None)
    training.load_inputs()
    training.build_model()
    training.prepare_data()
    return training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("states", type=Path, nargs="+", help="last.pt files or series snapshots")
    parser.add_argument("--config", required=True, help="the recipe's tts YAML")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema")
    parser.add_argument("--out-size", type=int, default=172, help="decoder segment (0: whole mels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        training = prepare(args.config, args.set, args.out_size, tmp)
        print(f"val split: {len(training.val_set)} utterances, segment {args.out_size or 'whole'}, "
              f"{args.weights} weights, seed {args.seed}")
        print("| state | step | loss | duration | prior | flow |\n|---|---:|---:|---:|---:|---:|")
        for path in args.states:
            state = load_checkpoint(path, "train-state")
            weights = state["ema"] if args.weights == "ema" else state["model"]
            m = val_losses(training, weights, args.seed)
            print(f"| {path} | {state['step']} | {m['loss']:.3f} | {m['dur_loss']:.3f} | "
                  f"{m['prior_loss']:.3f} | {m['diff_loss']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
