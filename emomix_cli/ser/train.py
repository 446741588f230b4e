"""SER training: config → feature store → train_loop.fit → test-set evaluation.

Batches are random crops (``crop_frames``) of training utterances, optionally class-balanced;
the order and the crops come from a generator seeded by ``seed + epoch``, so ``--resume``
reproduces the run exactly. Validation UA drives ``best.pt`` and early stopping; the returned
``run_dir/ser.pt`` holds the best validated weights (the last ones when there is no val split)
and their test metrics.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import AudioConfig
from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import atomic_write_bytes, load_config, save_yaml, to_dict
from ..datasets import FeatureStore, pad_mels
from ..errors import EmomixError
from ..train_loop import LoopConfig, dist_info, fit, seed_everything
from .model import SER, SERConfig, compute_norm_stats

NORM_STATS_MAX_ITEMS = 2000  # utterances sampled for the z-score statistics


@dataclass
class SERTrainConfig:
    features: str = ""  # feature store written by `emomix prep`
    run_dir: str = "runs/ser"
    crop_frames: int = 300  # random crop length in training (full utterances in evaluation)
    balanced: bool = True  # class-balanced sampling (with replacement)
    eval_batch_size: int = 16
    model: SERConfig = field(default_factory=SERConfig)
    train: LoopConfig = field(default_factory=lambda: LoopConfig(lr=1e-4, batch_size=32))


# ---------------------------------------------------------------- data
def open_store(path: str | Path) -> FeatureStore:
    """The feature store at ``path``; EmomixError naming the fix when there is none."""
    path = Path(path)
    if not str(path) or not path.is_dir():
        raise EmomixError(f"feature store not found: '{path}'; run `emomix prep` and set features: DIR")
    return FeatureStore(path)


def make_batches(store, items: list[dict], emotions: list[str], cfg: SERTrainConfig):
    """``batches(epoch)`` for train_loop.fit: deterministic in the epoch, sharded by rank."""
    labels = torch.tensor([emotions.index(it["emotion"]) for it in items])
    counts = torch.bincount(labels, minlength=len(emotions)).float()
    weights = 1.0 / counts.clamp_min(1)[labels]
    batch_size = cfg.train.batch_size

    def batches(epoch: int):
        generator = torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)
        if cfg.balanced:
            order = torch.multinomial(weights, len(items), replacement=True, generator=generator)
        else:
            order = torch.randperm(len(items), generator=generator)
        rank, world, _ = dist_info()
        order = order[rank::world]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].tolist()
            mels = []
            for i in idx:
                mel = torch.from_numpy(store.mel(items[i]["id"]))
                excess = mel.shape[-1] - cfg.crop_frames
                if excess > 0:
                    offset = int(torch.randint(excess + 1, (1,), generator=generator))
                    mel = mel[:, offset : offset + cfg.crop_frames]
                mels.append(mel)
            mel, lengths = pad_mels(mels)
            yield mel, lengths, labels[idx]

    return batches


def ser_step(model, batch, device):
    mel, lengths, labels = batch
    labels = labels.to(device)
    logits = model(mel.to(device), lengths.to(device))["logits"]
    return {
        "loss": F.cross_entropy(logits.float(), labels),
        "acc": (logits.argmax(-1) == labels).float().mean(),
    }


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_items(ser: SER, store, items: list[dict], batch_size: int = 16) -> torch.Tensor:
    """Posteriors [N, C] for ``items`` (full utterances, batched by similar length)."""
    device = next(ser.parameters()).device
    order = sorted(range(len(items)), key=lambda i: items[i]["n_frames"])
    probs = torch.zeros(len(items), len(ser.emotions))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        mel, lengths = pad_mels([torch.from_numpy(store.mel(items[i]["id"])) for i in idx])
        probs[idx] = ser.predict_proba(mel.to(device), lengths.to(device)).float().cpu()
    return probs


def classification_metrics(labels: torch.Tensor, predictions: torch.Tensor, n_classes: int) -> dict:
    """UA (mean recall over classes present), WA (accuracy), recall per class, confusion [C, C]."""
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    for t, p in zip(labels.tolist(), predictions.tolist(), strict=True):
        confusion[t, p] += 1
    support = confusion.sum(1)
    recall = confusion.diag().float() / support.clamp_min(1)
    present = support > 0
    return {
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "wa": float(confusion.diag().sum() / max(int(support.sum()), 1)),
        "recall": recall.tolist(),
        "support": support.tolist(),
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], emotions: list[str], title: str, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(emotions) + 2, 1.0 * len(emotions) + 1.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(emotions)):
        for j in range(len(emotions)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(emotions)), emotions, rotation=45, ha="right")
    ax.set_yticks(range(len(emotions)), emotions)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())


def evaluate_ser(ser: SER, store, split: str = "test", out_png: Path | None = None,
                 batch_size: int = 16) -> dict:
    """UA, WA, per-class recall and confusion of ``ser`` on a store split (+ PNG when asked)."""
    items = [it for it in store.items(split) if it["emotion"] in ser.emotions]
    if not items:
        raise EmomixError(f"split '{split}' of {store.root} has no utterances of {ser.emotions}")
    labels = torch.tensor([ser.emotions.index(it["emotion"]) for it in items])
    probs = predict_items(ser, store, items, batch_size)
    metrics = classification_metrics(labels, probs.argmax(-1), len(ser.emotions))
    metrics["recall"] = dict(zip(ser.emotions, metrics["recall"], strict=True))
    metrics["n"] = len(items)
    if out_png is not None:
        title = f"SER {split}: UA {metrics['ua']:.3f}  WA {metrics['wa']:.3f}  (n={len(items)})"
        plot_confusion(metrics["confusion"], ser.emotions, title, Path(out_png))
    return metrics


def metrics_table(metrics: dict, emotions: list[str]) -> str:
    width = max(len(e) for e in emotions) + 2
    lines = [f"UA {metrics['ua']:.4f}  WA {metrics['wa']:.4f}  n {metrics['n']}",
             "true \\ pred".ljust(width) + "".join(e[:8].rjust(9) for e in emotions) + "   recall"]
    for e, row in zip(emotions, metrics["confusion"], strict=True):
        lines.append(e.ljust(width) + "".join(str(c).rjust(9) for c in row)
                     + f"   {metrics['recall'][e]:.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point
def ser_payload(model: SER, audio: AudioConfig, **extra) -> dict:
    """The "ser" checkpoint payload (load with ``emomix_cli.ser.load_ser``)."""
    return {
        "config": to_dict(model.cfg),
        "emotions": list(model.emotions),
        "norm": {"mean": model.norm_mean.detach().cpu().clone(), "std": model.norm_std.detach().cpu().clone()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "audio": to_dict(audio),
        **extra,
    }


def train_ser(config_path, overrides: list[str] | None = None, resume: Path | None = None,
              device: str | None = None) -> Path:
    """Train the SER from a YAML config; returns ``run_dir/ser.pt``."""
    cfg = load_config(SERTrainConfig, config_path, overrides)
    if device:
        cfg.train.device = device
    store = open_store(cfg.features)
    emotions = list(store.emotions)
    train_items = [it for it in store.items("train") if it["emotion"] in emotions]
    if not train_items:
        raise EmomixError(f"feature store {cfg.features} has no train utterances; re-run `emomix prep`")
    val_items = store.items("val")
    corpus = {"dataset": store.dataset, "speakers": list(store.speakers)}  # what eval checks judges by
    cfg.model.emotions, cfg.model.n_mels = emotions, store.audio.n_mels
    run_dir = Path(cfg.run_dir)
    rank = dist_info().rank
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(run_dir / "config.yaml", cfg)

    seed_everything(cfg.train.seed)
    model = SER(cfg.model)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    sample = torch.randperm(len(train_items), generator=generator)[:NORM_STATS_MAX_ITEMS].tolist()
    model.set_normalization(*compute_norm_stats((store.mel(train_items[i]["id"]) for i in sample),
                                                cfg.model.n_mels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)

    def validate(ser: SER, step: int) -> dict[str, float]:
        m = evaluate_ser(ser, store, "val", batch_size=cfg.eval_batch_size)
        return {"score": m["ua"], "ua": m["ua"], "wa": m["wa"]}

    result = fit(
        model, optimizer, make_batches(store, train_items, emotions, cfg), ser_step, cfg.train,
        run_dir, "ser", lambda m: ser_payload(m, store.audio, corpus=corpus),
        validate=validate if val_items else None, resume=resume,
    )
    out = run_dir / "ser.pt"
    if rank != 0:
        return out
    # evaluate and ship the best validated weights, else the final (EMA) ones
    model.load_state_dict(load_checkpoint(result.best or result.checkpoint, "ser")["state_dict"])
    model.eval()
    test = evaluate_ser(model, store, "test", run_dir / "confusion_test.png", cfg.eval_batch_size)
    with open(run_dir / "train.log", "a", encoding="utf-8") as log:
        log.write(f"test (weights of step {result.step if result.best is None else 'best'}):\n"
                  + metrics_table(test, emotions) + "\n")
    save_checkpoint(out, "ser", ser_payload(model, store.audio, corpus=corpus, metrics={"test": test},
                                            train_step=result.step, best_val_ua=result.best_score))
    return out
