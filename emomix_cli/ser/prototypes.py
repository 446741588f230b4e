"""Emotion prototypes: the mean SER embedding of each emotion over the training split.

At inference the TTS model is conditioned on a prototype instead of a reference utterance
(docs/DESIGN.md §1). ``per_speaker`` adds one table per speaker (a speaker lacking an emotion gets the
global prototype for it); ``add`` makes a reference-only prototype from a few wavs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import load_wav, mel_spectrogram
from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import atomic_write_bytes, to_dict
from ..errors import EmomixError
from ..progress import progress_bar


@dataclass
class Prototypes:
    emotions: list[str]
    vectors: torch.Tensor  # [E, D]
    counts: list[int]
    per_speaker: dict[str, torch.Tensor] = field(default_factory=dict)  # speaker -> [E, D]
    embed_dim: int = 0
    reference_only: list[str] = field(default_factory=list)  # added from wavs, not in the store

    def vector(self, emotion: str, speaker: str | None = None) -> torch.Tensor:
        """The [D] prototype of ``emotion`` (the speaker's own when available)."""
        if emotion not in self.emotions:
            raise EmomixError(f"unknown emotion '{emotion}'; known: {', '.join(self.emotions)}")
        table = self.per_speaker.get(speaker, self.vectors) if speaker is not None else self.vectors
        return table[self.emotions.index(emotion)]


@torch.no_grad()
def embed_store(ser, store, items: list[dict], batch_size: int = 16) -> torch.Tensor:
    """SER embeddings [N, D] of store items (full utterances, batched by length)."""
    from ..datasets import pad_mels  # here: loading prototypes (every TTS model) needs no dataset

    device = next(ser.parameters()).device
    order = sorted(range(len(items)), key=lambda i: items[i]["n_frames"])
    out = torch.zeros(len(items), ser.embed_dim)
    with progress_bar("embeddings", len(items), transient=True) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            mel, lengths = pad_mels([torch.from_numpy(store.mel(items[i]["id"])) for i in idx])
            out[idx] = ser.embed(mel.to(device), lengths.to(device)).float().cpu()
            bar.advance(len(idx))
    return out


@torch.no_grad()
def embed_wavs(ser, wavs: list[Path]) -> torch.Tensor:
    """SER embeddings [N, D] of wav files (read at the SER's audio config)."""
    device = next(ser.parameters()).device
    rows = []
    for path in wavs:
        audio = torch.from_numpy(load_wav(path, ser.audio))
        mel = mel_spectrogram(audio[None], ser.audio)
        if mel.shape[-1] < 2:
            raise EmomixError(f"audio file {path} is too short for the SER; use at least 0.1 s")
        rows.append(ser.embed(mel.to(device)).float().cpu()[0])
    return torch.stack(rows)


def _plot_pca(embeddings, labels, prototypes: Prototypes, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = torch.cat([embeddings, prototypes.vectors]).double()
    mean = points.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(points - mean, full_matrices=False)
    project = lambda x: ((x.double() - mean) @ v[:2].T).numpy()  # noqa: E731
    xy, proto_xy = project(embeddings), project(prototypes.vectors)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colours = plt.get_cmap("tab10")
    for index, emotion in enumerate(prototypes.emotions):
        chosen = np.asarray(labels) == index
        colour = colours(index % 10)
        if chosen.any():
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=10, alpha=0.5, color=colour, label=emotion)
        ax.scatter(proto_xy[index, 0], proto_xy[index, 1], s=260, marker="*", color=colour,
                   edgecolors="black", linewidths=1.2, label=None if chosen.any() else f"{emotion} (reference)")
    ax.set_title("SER embeddings (PCA); stars = prototypes")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())


def compute_prototypes(features_dir, ser_path, out, per_speaker: bool = False,
                       add: dict[str, list[Path]] | None = None, plot: bool = True,
                       device: str = "cpu", batch_size: int = 16) -> Path:
    """Mean train-split embedding per emotion (+ per speaker, + reference-only ones) -> ``out``."""
    from . import load_ser
    from .train import open_store

    store = open_store(features_dir)
    ser = load_ser(ser_path, device)
    items = [it for it in store.items("train") if it["emotion"] in ser.emotions]
    if not items:
        raise EmomixError(
            f"{features_dir} has no train utterances of the SER's emotions ({', '.join(ser.emotions)}); "
            "use the feature store the SER was trained on"
        )
    embeddings = embed_store(ser, store, items, batch_size)
    labels = [ser.emotions.index(it["emotion"]) for it in items]
    emotions = [e for i, e in enumerate(ser.emotions) if i in set(labels)]  # only those seen
    labels = [emotions.index(ser.emotions[i]) for i in labels]
    label_tensor = torch.tensor(labels)

    def table(rows: torch.Tensor, row_labels: torch.Tensor, fallback: torch.Tensor | None):
        vectors, counts = [], []
        for index in range(len(emotions)):
            chosen = rows[row_labels == index]
            counts.append(len(chosen))
            vectors.append(chosen.mean(0) if len(chosen) else fallback[index])
        return torch.stack(vectors), counts

    vectors, counts = table(embeddings, label_tensor, None)
    speakers_tables, speaker_counts = {}, {}
    if per_speaker:
        speaker_of = np.asarray([it["speaker"] for it in items])
        for speaker in sorted(set(speaker_of.tolist())):
            chosen = torch.from_numpy(speaker_of == speaker)
            speakers_tables[speaker], speaker_counts[speaker] = table(
                embeddings[chosen], label_tensor[chosen], vectors)
    reference_only = []
    for name, wavs in (add or {}).items():
        if name in emotions:
            raise EmomixError(f"prototype '{name}' already exists; give the reference-only one another name")
        if not wavs:
            raise EmomixError(f"prototype '{name}' needs at least one reference wav")
        vector = embed_wavs(ser, [Path(w) for w in wavs]).mean(0)
        emotions.append(name)
        counts.append(len(wavs))
        vectors = torch.cat([vectors, vector[None]])
        speakers_tables = {s: torch.cat([t, vector[None]]) for s, t in speakers_tables.items()}
        speaker_counts = {s: c + [0] for s, c in speaker_counts.items()}
        reference_only.append(name)

    out = Path(out)
    save_checkpoint(out, "prototypes", {
        "emotions": emotions,
        "vectors": vectors,
        "counts": counts,
        "per_speaker": speakers_tables,
        "per_speaker_counts": speaker_counts,
        "embed_dim": int(vectors.shape[1]),
        "reference_only": reference_only,
        "ser": {"path": str(ser_path), "emotions": list(ser.emotions), "config": to_dict(ser.cfg)},
    })
    if plot:
        prototypes = Prototypes(emotions, vectors, counts)
        _plot_pca(embeddings, labels, prototypes, out.with_name(f"{out.stem}_pca.png"))
    return out


def load_prototypes(path) -> Prototypes:
    """Read a "prototypes" checkpoint (also accepts the dict embedded in a TTS checkpoint)."""
    blob = path if isinstance(path, dict) else load_checkpoint(path, "prototypes")
    return Prototypes(
        emotions=list(blob["emotions"]),
        vectors=blob["vectors"].float(),
        counts=list(blob["counts"]),
        per_speaker={k: v.float() for k, v in blob.get("per_speaker", {}).items()},
        embed_dim=int(blob.get("embed_dim", blob["vectors"].shape[1])),
        reference_only=list(blob.get("reference_only", [])),
    )
