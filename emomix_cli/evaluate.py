"""SER-based evaluation of a trained model (DESIGN §8): emotion accuracy, intensity, blends, prosody.

``run_eval`` synthesizes test sentences under a grid of emotion mixes and scores them with a
speech emotion recogniser:

a. every emotion at weight 1 -> confusion matrix (intended x recognised), per-emotion accuracy,
   UA (mean of per-emotion recall) and WA (overall accuracy);
b. intensity: each non-neutral emotion at 0, .2, .4, .6, .8, 1 against Neutral -> mean
   P(emotion) per weight, Spearman rho and a ``monotonic`` flag;
c. every ordered pair of non-neutral emotions blended 0.6/0.4 -> how often the two are the
   SER's top 2, and the mean posterior;
d. prosody per emotion and per blend: F0 mean/range, energy, speaking rate;
e. the same classification and prosody on the ground-truth test set (the reference row).

By default the SER scores the mel the acoustic model produced (fast, and it isolates the
acoustic model from the vocoder); ``rescore_audio=True`` scores the mel of the vocoded wav
instead. The same seed is used for a sentence under every mix, so differences between rows come
from the emotion condition, not the noise. Mels are vocoded in batches after synthesis.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import AudioConfig, load_wav, mel_spectrogram, save_wav
from .config import atomic_write_bytes, atomic_write_text
from .errors import EmomixError

BUILTIN_SENTENCES = [
    "The train leaves at seven tomorrow morning.",
    "I never thought we would see each other again.",
    "Please put the books back on the shelf.",
    "Why did you open the window in winter?",
    "We found a small cat sleeping in the garden.",
    "The results will be announced next week.",
]
INTENSITY_WEIGHTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BLEND = (0.6, 0.4)
NEUTRAL = "neutral"
F0_RANGE_HZ = (60.0, 500.0)
VOICING_DB = 30.0  # frames within this many dB of the loudest count as voiced/active
TRIM_DB = 40.0


# ====================================================================== pure metrics
def confusion_matrix(
    intended: list[int], recognised: list[int], n_rows: int, n_cols: int
) -> np.ndarray:
    """Counts [n_rows, n_cols]: row = intended class index, column = recognised class index."""
    matrix = np.zeros((n_rows, n_cols), dtype=np.int64)
    np.add.at(
        matrix, (np.asarray(intended, dtype=np.int64), np.asarray(recognised, dtype=np.int64)), 1
    )
    return matrix


def per_class_accuracy(
    confusion: np.ndarray, rows: list[str], columns: list[str]
) -> dict[str, float | None]:
    """Recall per intended class (the cell where the column name equals the row name).

    None for a row without samples or whose name the recogniser does not know.
    """
    result: dict[str, float | None] = {}
    for i, name in enumerate(rows):
        total = int(confusion[i].sum())
        result[name] = (
            float(confusion[i, columns.index(name)] / total) if total and name in columns else None
        )
    return result


def unweighted_accuracy(confusion: np.ndarray, rows: list[str], columns: list[str]) -> float | None:
    """UA: the mean of the per-class recalls that are defined."""
    values = [v for v in per_class_accuracy(confusion, rows, columns).values() if v is not None]
    return float(np.mean(values)) if values else None


def weighted_accuracy(confusion: np.ndarray, rows: list[str], columns: list[str]) -> float | None:
    """WA: correct / all samples (rows the recogniser cannot name count as wrong)."""
    total = int(confusion.sum())
    correct = sum(int(confusion[i, columns.index(n)]) for i, n in enumerate(rows) if n in columns)
    return correct / total if total else None


def top2_rate(probs: np.ndarray, a: int, b: int) -> float:
    """Fraction of rows of ``probs`` [N, C] whose two largest entries are classes ``a`` and ``b``."""
    probs = np.asarray(probs)
    if probs.shape[0] == 0:
        return float("nan")
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    hits = ((top2[:, 0] == a) & (top2[:, 1] == b)) | ((top2[:, 0] == b) & (top2[:, 1] == a))
    return float(hits.mean())


def spearman(x, y) -> float | None:
    """Spearman rank correlation; None when either side is constant (undefined)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


# a mean posterior may dip by this much between weights and still count as rising: with a few
# sentences, differences of 1e-3 between posteriors that are all ~0 are noise, not a reversal
MONOTONIC_TOLERANCE = 0.01


def is_monotonic(values, tolerance: float = 0.0) -> bool:
    """True when ``values`` never drop by more than ``tolerance`` from one step to the next."""
    return bool(np.all(np.diff(np.asarray(values, dtype=float)) >= -tolerance))


def count_phones(phonemes: str) -> int:
    """Phone letters in an IPA string (stress, length marks, spaces and punctuation excluded)."""
    return sum(unicodedata.category(ch) in ("Ll", "Lu", "Lo") for ch in phonemes)


def prosody(wav: np.ndarray, sample_rate: int, n_phones: int) -> dict[str, float | None]:
    """F0 mean and 5-95 % range (Hz, voiced frames), energy (mean RMS dB) and phones/second.

    Voiced frames: within ``VOICING_DB`` of the loudest frame and with a YIN estimate strictly
    inside the search range. Duration for the rate: the wav with silence trimmed at both ends.
    """
    import librosa

    wav = np.asarray(wav, dtype=np.float32)
    if wav.size < 2048 or not np.any(wav):
        return {"f0_mean": None, "f0_range": None, "energy_db": None, "rate": None}
    frame, hop = 1024, 256
    f0 = librosa.yin(
        wav,
        fmin=F0_RANGE_HZ[0],
        fmax=F0_RANGE_HZ[1],
        sr=sample_rate,
        frame_length=frame,
        hop_length=hop,
    )
    rms = librosa.feature.rms(y=wav, frame_length=frame, hop_length=hop)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-8))
    n = min(len(f0), len(db))
    f0, db = f0[:n], db[:n]
    active = db > db.max() - VOICING_DB
    voiced = active & (f0 > F0_RANGE_HZ[0] * 1.01) & (f0 < F0_RANGE_HZ[1] * 0.99)
    trimmed, _ = librosa.effects.trim(wav, top_db=TRIM_DB)
    duration = len(trimmed) / sample_rate
    values = f0[voiced]
    return {
        "f0_mean": float(values.mean()) if values.size else None,
        "f0_range": float(np.percentile(values, 95) - np.percentile(values, 5))
        if values.size
        else None,
        "energy_db": float(db[active].mean()),
        "rate": float(n_phones / duration) if duration > 0 else None,
    }


def mean_prosody(rows: list[dict]) -> dict[str, float | None]:
    """Key-wise mean over utterances, ignoring undefined values."""
    keys = ("f0_mean", "f0_range", "energy_db", "rate")
    out: dict[str, float | None] = {}
    for key in keys:
        values = [row[key] for row in rows if row.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    out["n"] = len(rows)
    return out


# ====================================================================== batched scoring / vocoding
def _pad(
    mels: list[torch.Tensor], floor: float = math.log(1e-5)
) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[-1] for m in mels])
    batch = torch.full((len(mels), mels[0].shape[0], int(lengths.max())), floor)
    for i, mel in enumerate(mels):
        batch[i, :, : mel.shape[-1]] = mel
    return batch, lengths


def _length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def score_mels(ser, mels: list[torch.Tensor], batch_size: int = 16) -> np.ndarray:
    """SER posteriors [N, C] for log-mels [n_mels, T_i], batched by similar length."""
    if not mels:
        return np.zeros((0, len(ser.emotions)), dtype=np.float32)
    device = next(ser.parameters()).device
    probs = np.zeros((len(mels), len(ser.emotions)), dtype=np.float32)
    min_frames = 8  # the SER pools time; pad very short mels with silence
    for group in _length_batches([m.shape[-1] for m in mels], batch_size):
        batch, lengths = _pad([mels[i] for i in group])
        if batch.shape[-1] < min_frames:
            batch = torch.nn.functional.pad(
                batch, (0, min_frames - batch.shape[-1]), value=math.log(1e-5)
            )
        with torch.inference_mode():
            out = ser.predict_proba(batch.to(device), lengths.clamp(min=min_frames).to(device))
        probs[group] = out.float().cpu().numpy()
    return probs


def vocode_mels(vocoder, mels: list[torch.Tensor], batch_size: int = 8) -> list[np.ndarray]:
    """Wavs for log-mels [n_mels, T_i] (batched by similar length, each cut to T_i * hop)."""
    wavs: list[np.ndarray] = [np.zeros(0, np.float32)] * len(mels)
    for group in _length_batches([m.shape[-1] for m in mels], batch_size):
        batch, lengths = _pad([mels[i] for i in group])
        out = vocoder(batch)
        for row, i in enumerate(group):
            wavs[i] = out[row, : int(lengths[row]) * vocoder.hop_length].float().cpu().numpy()
    return wavs


class _DeferredVocoder:
    """Hands ``synthesize`` silence so vocoding can run batched afterwards (cheap, exact length)."""

    def __init__(self, audio: AudioConfig):
        self.sample_rate, self.hop_length = audio.sample_rate, audio.hop_length

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.zeros(mel.shape[0], mel.shape[-1] * self.hop_length)


# ====================================================================== the run
def _conditions(emotions: list[str]) -> list[tuple[str, dict[str, float]]]:
    """(label, weights) for every mix to synthesize; intensity ends reuse the weight-1 rows."""
    others = [e for e in emotions if e != NEUTRAL]
    conditions = [(e, {e: 1.0}) for e in emotions]
    if NEUTRAL in emotions:
        for emotion in others:
            for w in INTENSITY_WEIGHTS[1:-1]:
                conditions.append((f"{emotion}@{w:g}", {emotion: w, NEUTRAL: round(1.0 - w, 6)}))
    for a, b in itertools.permutations(others, 2):
        conditions.append((f"{a}+{b}", {a: BLEND[0], b: BLEND[1]}))
    return conditions


def _sentences(store, bundle, max_sentences: int) -> list[dict]:
    """Test sentences (distinct text/speaker pairs of the store's test split) or the built-in list."""
    from .text import phonemize

    chosen: list[dict] = []
    if store is None:
        chosen = [{"text": t, "speaker": None} for t in BUILTIN_SENTENCES[:max_sentences]]
    else:
        seen = set()
        for item in sorted(store.items("test"), key=lambda r: r["id"]):
            key = (item["text"], item["speaker"])  # same text by another speaker counts
            if key not in seen and len(chosen) < max_sentences:
                seen.add(key)
                speaker = item["speaker"] if item["speaker"] in bundle.speakers else None
                chosen.append({"text": item["text"], "speaker": speaker})
        if not chosen:
            raise EmomixError(
                f"feature store {store.root} has no test utterances; re-run `emomix prep`"
            )
    language = getattr(bundle, "language", "en")
    for item, phones in zip(chosen, phonemize([c["text"] for c in chosen], language), strict=True):
        item["n_phones"] = count_phones(phones)
    return chosen


def _classification(
    probs: np.ndarray, intended: list[str], rows: list[str], columns: list[str]
) -> dict:
    confusion = confusion_matrix(
        [rows.index(e) for e in intended], list(np.argmax(probs, axis=1)), len(rows), len(columns)
    )
    return {
        "rows": rows,
        "columns": columns,
        "confusion": confusion.tolist(),
        "accuracy": per_class_accuracy(confusion, rows, columns),
        "mean_accuracy": unweighted_accuracy(confusion, rows, columns),
        "wa": weighted_accuracy(confusion, rows, columns),
    }


def _load_models(model_path, ser_path, device):
    from .ser import load_ser, ser_from_payload
    from .tts import load_tts

    bundle = load_tts(model_path, device=device)
    if ser_path is not None:
        ser = load_ser(ser_path, device=device)
    elif bundle.ser_payload:
        ser = ser_from_payload(bundle.ser_payload, device)
    else:
        raise EmomixError(
            f"{model_path} embeds no SER; pass --ser CKPT (a `emomix train ser` checkpoint)"
        )
    return bundle, ser


def run_eval(
    model_path: str | Path,
    ser_path: str | Path | None,
    out_dir: str | Path,
    features: str | Path | None = None,
    steps: int | None = None,
    solver: str | None = None,
    k_max: float | None = None,
    k_min: float | None = None,
    max_sentences: int = 5,
    seed: int = 0,
    temperature: float | None = None,
    vocoder: str = "griffinlim",
    vocoder_checkpoint: str | Path | None = None,
    rescore_audio: bool = False,
    device: str = "cpu",
    progress: bool = True,
    encoder_condition: str = "weighted",
) -> dict:
    """Synthesize and score (module docstring); writes report.json, PNGs, samples/ in out_dir.

    ``ser_path`` None uses the SER embedded in the TTS checkpoint. ``max_sentences`` bounds
    the run: it synthesizes ``max_sentences × (E + 4(E−1) + (E−1)(E−2))`` utterances.
    """
    from .features import FeatureStore
    from .synthesis import resolve_sampler_options, synthesize
    from .vocoder import load_vocoder

    if max_sentences < 1:
        raise EmomixError(f"max_sentences must be >= 1, got {max_sentences}")
    out_dir = Path(out_dir)
    bundle, ser = _load_models(model_path, ser_path, device)
    store = FeatureStore(features) if features is not None else None
    vocode = load_vocoder(vocoder, vocoder_checkpoint, audio=bundle.audio, device=device)
    sentences = _sentences(store, bundle, max_sentences)
    emotions, columns = list(bundle.emotions), list(ser.emotions)
    conditions = _conditions(emotions)
    options = resolve_sampler_options(bundle, steps=steps, temperature=temperature, solver=solver,
                                      k_max=k_max, k_min=k_min)

    started = time.perf_counter()
    mels: dict[tuple[str, int], torch.Tensor] = {}
    with _progress(progress, len(conditions) * len(sentences), "synthesizing") as advance:
        for index, sentence in enumerate(sentences):
            for label, weights in conditions:
                result = synthesize(
                    bundle, sentence["text"], weights, speaker=sentence["speaker"], seed=seed + index,
                    vocoder=_DeferredVocoder(bundle.audio), encoder_condition=encoder_condition,
                    **options,
                )  # fmt: skip
                mels[label, index] = torch.from_numpy(result.mel)
                advance()
    synth_seconds = time.perf_counter() - started
    keys = list(mels)
    prosody_labels = {label for label, _ in conditions if "@" not in label}
    need_wav = [k for k in keys if rescore_audio or k[0] in prosody_labels]
    wavs = dict(zip(need_wav, vocode_mels(vocode, [mels[k] for k in need_wav]), strict=True))
    if rescore_audio:
        to_score = [mel_spectrogram(torch.from_numpy(wavs[k]), bundle.audio)[0] for k in keys]
    else:
        to_score = [mels[k] for k in keys]
    probs = dict(zip(keys, score_mels(ser, to_score), strict=True))
    n_sent = range(len(sentences))

    def stacked(label: str) -> np.ndarray:
        return np.stack([probs[label, i] for i in n_sent])

    report: dict[str, Any] = {
        "config": {
            "model": str(model_path),
            "ser": str(ser_path) if ser_path else "embedded",
            "features": str(features) if features else None,
            **options,  # the sampler settings actually used
            "encoder_condition": encoder_condition,
            "seed": seed,
            "vocoder": vocoder,
            "n_sentences": len(sentences),
            "scored_on": "audio" if rescore_audio else "mel",
        },  # fmt: skip
        "emotions": emotions,
        "ser_emotions": columns,
        "classification": _classification(
            np.concatenate([stacked(e) for e in emotions]),
            [e for e in emotions for _ in n_sent],
            emotions,
            columns,
        ),  # fmt: skip
        "intensity": _intensity(emotions, columns, stacked),
        "blends": _blends(emotions, columns, stacked),
    }
    hop_s = bundle.audio.hop_length / bundle.audio.sample_rate
    audio_seconds = sum(m.shape[-1] for m in mels.values()) * hop_s
    report["prosody"] = {
        label: mean_prosody(
            [
                prosody(wavs[label, i], vocode.sample_rate, sentences[i].get("n_phones", 0))
                for i in n_sent
            ]
        )
        for label in sorted(prosody_labels, key=[c[0] for c in conditions].index)
    }
    report["ground_truth"] = (
        _ground_truth(store, ser, emotions, columns, max_sentences) if store else None
    )
    report["timing"] = {
        "utterances": len(mels), "synthesis_s": synth_seconds, "audio_s": audio_seconds,
        "rtf_synthesis": synth_seconds / max(audio_seconds, 1e-9),
    }  # fmt: skip
    _write_outputs(out_dir, report, {e: wavs[e, 0] for e in emotions}, vocode.sample_rate)
    return _json_safe(report)


def _intensity(emotions: list[str], columns: list[str], stacked) -> dict:
    curves, rho, monotonic = {}, {}, {}
    if NEUTRAL not in emotions:
        return {"weights": list(INTENSITY_WEIGHTS), "curves": {}, "spearman": {}, "monotonic": {}}
    for emotion in emotions:
        if emotion == NEUTRAL or emotion not in columns:
            continue
        column = columns.index(emotion)
        labels = [NEUTRAL] + [f"{emotion}@{w:g}" for w in INTENSITY_WEIGHTS[1:-1]] + [emotion]
        curves[emotion] = [float(stacked(label)[:, column].mean()) for label in labels]
        rho[emotion] = spearman(INTENSITY_WEIGHTS, curves[emotion])
        monotonic[emotion] = is_monotonic(curves[emotion], MONOTONIC_TOLERANCE)
    return {
        "weights": list(INTENSITY_WEIGHTS),
        "monotonic_tolerance": MONOTONIC_TOLERANCE,
        "curves": curves,
        "spearman": rho,
        "monotonic": monotonic,
    }


def _blends(emotions: list[str], columns: list[str], stacked) -> dict:
    others = [e for e in emotions if e != NEUTRAL]
    pairs = []
    matrix = np.full((len(others), len(others)), np.nan)
    for a, b in itertools.permutations(others, 2):
        p = stacked(f"{a}+{b}")
        rate = (
            top2_rate(p, columns.index(a), columns.index(b))
            if a in columns and b in columns
            else None
        )
        pairs.append({
            "major": a, "minor": b, "weights": list(BLEND), "top2_rate": rate,
            "mean_posteriors": {c: float(v) for c, v in zip(columns, p.mean(axis=0), strict=True)},
        })  # fmt: skip
        matrix[others.index(a), others.index(b)] = np.nan if rate is None else rate
    valid = [p["top2_rate"] for p in pairs if p["top2_rate"] is not None]
    return {
        "emotions": others, "pairs": pairs, "top2_matrix": matrix.tolist(),
        "mean_top2_rate": float(np.mean(valid)) if valid else None,
    }  # fmt: skip


def _ground_truth(store, ser, emotions, columns, max_sentences: int) -> dict | None:
    """SER classification of the store's test mels, prosody from the original wavs (if present)."""
    per_emotion: dict[str, list[dict]] = {e: [] for e in emotions}
    for item in sorted(store.items("test"), key=lambda r: r["id"]):
        if item["emotion"] in per_emotion and len(per_emotion[item["emotion"]]) < max_sentences:
            per_emotion[item["emotion"]].append(item)
    items = [item for rows in per_emotion.values() for item in rows]
    if not items:
        return None
    probs = score_mels(ser, [torch.from_numpy(store.mel(item["id"])) for item in items])
    result = _classification(probs, [i["emotion"] for i in items], emotions, columns)
    prosody_rows: dict[str, list[dict]] = {e: [] for e in emotions}
    for item in items:
        path = _wav_path(store.root, item.get("wav", ""))
        if path is not None:
            wav = load_wav(path, store.audio)
            prosody_rows[item["emotion"]].append(
                prosody(wav, store.audio.sample_rate, count_phones(item["phonemes"]))
            )
    result["prosody"] = {e: mean_prosody(rows) for e, rows in prosody_rows.items() if rows}
    result["n"] = len(items)
    return result


def _wav_path(root: Path, wav: str) -> Path | None:
    if not wav:
        return None
    for candidate in (Path(wav), root / wav):
        if candidate.is_file():
            return candidate
    return None


# ====================================================================== outputs
class _progress:
    """A rich progress bar (or nothing) yielding an ``advance()`` callable."""

    def __init__(self, enabled: bool, total: int, description: str):
        self.enabled, self.total, self.description = enabled, total, description

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _write_outputs(
    out_dir: Path, report: dict, samples: dict[str, np.ndarray], sample_rate: int
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for emotion, wav in samples.items():
        save_wav(out_dir / "samples" / f"{emotion}.wav", wav, sample_rate)
    _plot_confusion(report["classification"], out_dir / "confusion.png")
    _plot_intensity(report["intensity"], out_dir / "intensity.png")
    _plot_blends(report["blends"], out_dir / "blends.png")
    atomic_write_text(out_dir / "report.json", json.dumps(_json_safe(report), indent=2) + "\n")


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    _figure().close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _plot_confusion(classification: dict, path: Path) -> None:
    plt = _figure()
    counts = np.asarray(classification["confusion"], dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(
        figsize=(max(4.8, 1.2 + 0.9 * share.shape[1]), 1.2 + 0.8 * share.shape[0])
    )
    axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(share):
        axis.text(
            j,
            i,
            f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value > 0.5 else "black",
        )
    axis.set_xticks(range(share.shape[1]), classification["columns"], rotation=45, ha="right")
    axis.set_yticks(range(share.shape[0]), classification["rows"])
    axis.set(
        xlabel="recognised (SER)", ylabel="intended", title="synthesized emotion: SER confusion"
    )
    _save(figure, path)


def _plot_intensity(intensity: dict, path: Path) -> None:
    plt = _figure()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for emotion, curve in intensity["curves"].items():
        rho = intensity["spearman"].get(emotion)
        label = f"{emotion} (ρ={rho:.2f})" if rho is not None else emotion
        axis.plot(intensity["weights"], curve, marker="o", label=label)
    axis.set(xlabel="weight vs neutral", ylabel="mean P(emotion)", ylim=(0, 1), title="intensity")
    if intensity["curves"]:
        axis.legend(fontsize=8)
    _save(figure, path)


def _plot_blends(blends: dict, path: Path) -> None:
    plt = _figure()
    names = blends["emotions"]
    if len(names) < 2:
        figure, axis = plt.subplots(figsize=(4, 2))
        axis.text(
            0.5, 0.5, "no blends: fewer than 2 non-neutral emotions", ha="center", va="center"
        )
        axis.set_axis_off()
        _save(figure, path)
        return
    matrix = np.asarray(blends["top2_matrix"], dtype=float).reshape(len(names), len(names))
    figure, axis = plt.subplots(figsize=(max(4.8, 1.5 + 0.9 * len(names)), 1.2 + 0.8 * len(names)))
    axis.imshow(np.nan_to_num(matrix, nan=0.0), cmap="Greens", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, "—" if np.isnan(value) else f"{value:.2f}", ha="center", va="center")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="minor (0.4)", ylabel="major (0.6)", title="blend: both emotions in SER top 2")
    _save(figure, path)


# ====================================================================== CLI tables
def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def print_report(report: dict, console=None) -> None:
    """Rich tables of a report from :func:`run_eval` (emotion accuracy, intensity, blends, prosody)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    gt = report.get("ground_truth") or {}
    table = Table(title=f"emotion accuracy (SER on {report['config']['scored_on']})")
    table.add_column("emotion")
    table.add_column("synthesized", justify="right")
    table.add_column("ground truth", justify="right")
    for emotion in report["emotions"]:
        table.add_row(emotion, _fmt(report["classification"]["accuracy"].get(emotion)),
                      _fmt(gt.get("accuracy", {}).get(emotion)))  # fmt: skip
    table.add_row(
        "UA", _fmt(report["classification"]["mean_accuracy"]), _fmt(gt.get("mean_accuracy"))
    )
    table.add_row("WA", _fmt(report["classification"]["wa"]), _fmt(gt.get("wa")))
    console.print(table)

    intensity = report["intensity"]
    table = Table(title="intensity: mean P(emotion) vs weight")
    table.add_column("emotion")
    for w in intensity["weights"]:
        table.add_column(f"{w:g}", justify="right")
    table.add_column("ρ", justify="right")
    table.add_column("monotonic")
    for emotion, curve in intensity["curves"].items():
        table.add_row(emotion, *[_fmt(v) for v in curve], _fmt(intensity["spearman"].get(emotion)),
                      "yes" if intensity["monotonic"].get(emotion) else "no")  # fmt: skip
    console.print(table)

    table = Table(title=f"blends {BLEND[0]:g}/{BLEND[1]:g}: both in SER top 2")
    for name in ("major", "minor", "top-2 rate", "P(major)", "P(minor)"):
        table.add_column(name, justify="right" if name[0] in "tP" else "left")
    for pair in report["blends"]["pairs"]:
        posterior = pair["mean_posteriors"]
        table.add_row(pair["major"], pair["minor"], _fmt(pair["top2_rate"]),
                      _fmt(posterior.get(pair["major"])), _fmt(posterior.get(pair["minor"])))  # fmt: skip
    console.print(table)

    table = Table(title="prosody (means over sentences)")
    for name in ("condition", "F0 mean Hz", "F0 range Hz", "energy dB", "phones/s"):
        table.add_column(name, justify="left" if name == "condition" else "right")
    rows = list(report["prosody"].items()) + [
        (f"{e} (ground truth)", p) for e, p in gt.get("prosody", {}).items()
    ]
    for label, p in rows:
        table.add_row(label, _fmt(p["f0_mean"], ".0f"), _fmt(p["f0_range"], ".0f"), _fmt(p["energy_db"], ".1f"),
                      _fmt(p["rate"], ".1f"))  # fmt: skip
    console.print(table)
