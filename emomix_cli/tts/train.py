"""Train the EmoMix acoustic model: config -> data -> losses -> ``train_loop.fit`` -> checkpoint.

``train_tts(config_path)`` runs a :class:`TTSTraining`, one method per step, in a straight line
(nanoGPT style):

1. load :class:`TTSTrainConfig` (unknown keys rejected), save the resolved config in the run;
2. open the feature store, load the frozen SER, embed every utterance once (cached) and get the
   emotion prototypes (given, or computed into the run folder);
3. build :class:`~emomix_cli.tts.model.EmoMixTTS` (vocabulary from the store's symbols,
   emotion size from the SER, speakers from the store), optionally warm-started from an
   official Grad-TTS or Matcha-TTS checkpoint (``init_from``, :mod:`.pretrained`);
4. ``fit`` with ``total = dur + prior + diff + style_weight · style``, each term logged (the
   style term on every ``style_every``-th step only, weighted ``style_every · style_weight``
   there, so its expected gradient is unchanged), an EMA of the weights, periodic validation
   (losses + one sample per emotion), and an export payload (kind ``tts``) that holds
   everything inference needs, SER included.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import save_wav
from ..checkpoint import load_checkpoint
from ..config import (
    atomic_write_bytes,
    atomic_write_text,
    from_dict,
    load_config,
    save_yaml,
    to_dict,
)
from ..datasets import FeatureStore, LengthBucketSampler, MelDataset, collate
from ..errors import EmomixError
from ..plotting import save_mel_png
from ..ser import load_ser
from ..ser.prototypes import compute_prototypes, embed_store, load_prototypes
from ..train_loop import LoopConfig, dist_info, fit, resolve_device, seed_everything
from .mixing import MixedOutput
from .model import EmoMixTTS, TTSConfig, merge_nested, preset
from .pretrained import load_init_weights
from .speaker import Wav2Vec2SpeakerEncoder, check_speaker_encoder, store_speaker_embeddings


@dataclass
class TTSTrainConfig:
    features: str = ""  # feature store folder (`emomix prep --out`)
    ser: str = ""  # SER checkpoint (`emomix train ser`)
    prototypes: str = ""  # prototypes file; empty = compute them into run_dir/prototypes.pt
    preset: str = "small"  # small | paper (tts.model.preset)
    model: dict = field(default_factory=dict)  # TTSConfig overrides on top of the preset
    speaker_encoder: str = "table"  # table | wav2vec2 | none
    wav2vec2_path: str = ""  # LOCAL folder of a transformers Wav2Vec2Model
    wav2vec2_layer: int = -1  # hidden state to mean-pool (0 = CNN projection, -1 = last)
    # load a wav2vec2 folder that has only pickled weights (pytorch_model.bin): unpickling can
    # run code, so only for a folder you trust; safetensors weights are always preferred
    wav2vec2_allow_pickle: bool = False
    style_weight: float = 1e-4  # λ_style
    # compute the style loss (the SER forward + backward on x̂0 and the target) only on every
    # k-th optimizer step (step % k == 0) and weight it k · λ_style there: the same expected
    # gradient for 1/k of its cost (a CPU lever, benchmarks/profile_train_step.py); 1 = every step
    style_every: int = 1
    # weight each item's style loss by the decoder family's weight of its one-step estimate
    # (score2d: a_t² = e^{-∫β}, since x̂0 amplifies the score error by 1/a_t, ~150x at t = 1;
    # flow1d: t², the share of x_t that is data), so near-noise items do not dominate
    style_snr_weighting: bool = True
    out_size: int = 172  # decoder segment in frames (Grad-TTS: 2 s); 0 = whole utterances
    # the decoder works on (mel − mean) / std of the store's train split, computed here and
    # stored in the model (Matcha-TTS's data statistics); false: model.mel_mean/mel_std as given
    normalise_mels: bool = False
    n_val_steps: int = 25  # reverse-diffusion steps of the validation samples
    val_temperature: float = 1.5
    run_dir: str = "runs/tts"
    train: LoopConfig = field(default_factory=LoopConfig)


# ---------------------------------------------------------------- style loss
def gram(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrices ``[B, C, C]`` of ``features [B, C, F, T]``, normalised per item by the
    number of valid positions (F × valid frames); ``mask [B, 1, S]`` (any S, resized to T)."""
    with torch.autocast(features.device.type, enabled=False):
        f = features.float()
        b, c, n_freq, n_time = f.shape
        if mask is None:
            valid = torch.ones(b, 1, 1, n_time, device=f.device)
        else:
            valid = F.interpolate(mask.float(), size=n_time, mode="nearest").unsqueeze(2)
        f = (f * valid).reshape(b, c, n_freq * n_time)
        count = (valid.sum(dim=(1, 2, 3)) * n_freq).clamp_min(1.0)
        return torch.bmm(f, f.transpose(1, 2)) / count[:, None, None]


def style_loss(
    ser: nn.Module,
    x0_hat: torch.Tensor,
    target: torch.Tensor,
    seg_mask: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``Σ_j ‖G_j(x̂0) − G_j(m)‖²_F / C_j²`` over the frozen SER's CNN feature maps, mean over batch.

    Each Gram matrix is normalised by its positions (in :func:`gram`) and the squared Frobenius
    distance by the number of its entries (C_j²), as Gatys et al. normalise the style loss, so
    λ_style = 1e-4 keeps the term a regulariser whatever the SER's width (the un-normalised sum
    was ~10⁷ at initialisation and swamped L_diff).

    ``x0_hat, target: [B, 80, S]``, ``seg_mask: [B, 1, S]``, ``weight: [B]`` (optional per-item
    weight, normalised to sum to B). The SER's weights get no gradient (frozen) but the gradient
    flows through its feature path into ``x0_hat`` and so into the decoder.
    """
    lengths = seg_mask.sum(dim=(1, 2)).long().clamp_min(1)
    fake_maps = ser.feature_maps(x0_hat * seg_mask, lengths)
    with torch.no_grad():
        real_maps = ser.feature_maps(target * seg_mask, lengths)
    per_item = x0_hat.new_zeros(x0_hat.shape[0], dtype=torch.float32)
    for fake, real in zip(fake_maps, real_maps, strict=True):
        per_item = per_item + (gram(fake, seg_mask) - gram(real, seg_mask)).pow(2).mean(dim=(1, 2))
    if weight is None:
        return per_item.mean()
    weight = weight.float()
    return (per_item * weight).sum() / weight.sum().clamp_min(1e-8)


# ---------------------------------------------------------------- emotion embeddings (cached)
def _file_hash(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


@torch.no_grad()
def ser_embeddings(store, ser: nn.Module, ser_path: Path, items: list[dict] | None = None,
                   batch_size: int = 16) -> dict[str, np.ndarray]:
    """Emotion embeddings ``{id: [D]}`` of the TARGET utterances, from the frozen SER, cached.

    Why cached: the SER is frozen and training applies no augmentation to the full
    utterance, so its embedding is identical every epoch; computing it once per (store, SER
    checkpoint) saves a full SER forward per training step. The cache is
    ``store/cache/ser_emb_<hash of the SER file>.npz`` holding ``ids [N]`` and
    ``embeddings [N, D]``; utterances added to the store later are embedded and appended.
    """
    items = list(store.items() if items is None else items)
    path = Path(store.root) / "cache" / f"ser_emb_{_file_hash(Path(ser_path))}.npz"
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            cached = dict(zip(data["ids"].tolist(), data["embeddings"], strict=True))
    missing = [i for i in items if i["id"] not in cached]
    if missing:
        vectors = embed_store(ser, store, missing, batch_size).numpy()
        cached.update({item["id"]: vectors[row] for row, item in enumerate(missing)})
        ids = sorted(cached)
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(ids), embeddings=np.stack([cached[i] for i in ids]))
        atomic_write_bytes(path, buffer.getvalue())
    return {i["id"]: cached[i["id"]] for i in items}


# ---------------------------------------------------------------- data
class TTSCollate:
    """``datasets.collate`` + the per-utterance condition vectors looked up by id:
    ``emotion_embedding [B, D]`` (SER of the target), ``speaker_vector [B, S_in]`` and
    ``neutral_embedding [B, D]`` (the speaker's Neutral prototype, for encoder-emotion dropout)."""

    def __init__(self, emotion_vectors: dict[str, np.ndarray],
                 speaker_vectors: dict[str, np.ndarray] | None = None,
                 neutral_vectors: dict[str, np.ndarray] | None = None):
        self.vectors = {"emotion_embedding": emotion_vectors, "speaker_vector": speaker_vectors,
                        "neutral_embedding": neutral_vectors}

    def __call__(self, samples: list[dict]) -> dict:
        batch = collate(samples)
        for key, table in self.vectors.items():
            if table is not None:
                batch[key] = torch.from_numpy(
                    np.stack([np.asarray(table[i]) for i in batch["ids"]]).astype(np.float32))
        return batch


def neutral_vectors(prototypes, items: list[dict]) -> dict[str, np.ndarray]:
    """Each utterance's speaker's Neutral prototype (the global one where a speaker has none)."""
    if "neutral" not in prototypes.emotions:
        raise EmomixError("model.enc_cond_dropout needs a 'neutral' emotion in the data; "
                          "set it to 0")
    by_speaker = {}
    for item in items:
        speaker = item.get("speaker")
        if speaker not in by_speaker:
            by_speaker[speaker] = prototypes.vector("neutral", speaker).float().numpy()
    return {item["id"]: by_speaker[item.get("speaker")] for item in items}


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _speaker_input(batch: dict, speaker_encoder: str):
    if speaker_encoder == "table":
        return batch["speaker"]
    if speaker_encoder == "wav2vec2":
        return batch["speaker_vector"]
    return None


# ---------------------------------------------------------------- validation samples
@torch.no_grad()
def sample_prototypes(model, tokens: torch.Tensor, prototypes, speaker_input, n_steps: int,
                      temperature: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """One mel ``[80, T_e]`` per prototype emotion for ``tokens [L]``, all emotions in one batch
    (batch dimension E); ``speaker_input``: ``[1]`` id, ``[1, S_in]`` vector or None.

    The library's sampler (the family's Euler over a :class:`.mixing.MixedOutput`), so a
    validation sample is what ``emomix mix`` would give for it.
    """
    device = next(model.parameters()).device
    n = len(prototypes.emotions)
    tokens = tokens.to(device)[None].expand(n, -1)
    lengths = torch.full((n,), tokens.shape[1], device=device)
    emotion = prototypes.vectors.to(device=device, dtype=torch.float32)
    spk = None
    if speaker_input is not None:
        spk = model.speaker_vector(speaker_input.to(device).expand(n, *speaker_input.shape[1:]))
    enc = model.encode(tokens, lengths, emotion, spk)
    mu, mask = enc["mu_y"], enc["y_mask"]
    # one condition whose vectors differ per row (row e = prototype e), with weight 1
    output = MixedOutput(model, mu, mask, {"prototype": (emotion, spk)}, {"prototype": 1.0})
    generator = torch.Generator(device=device).manual_seed(seed)
    mel = model.sample(output, mu, mask, "euler", n_steps, temperature, generator)
    frames = mask.sum(dim=(1, 2)).long().tolist()
    return {name: mel[i, :, : frames[i]].float().cpu() for i, name in enumerate(prototypes.emotions)}


def sample_vocoder(audio):
    """Griffin-Lim for the validation wavs, or None, said once, when it cannot be imported."""
    try:
        from ..vocoder import load_vocoder
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        fix = f"pip install {missing}" if missing and missing != "emomix_cli" else \
            "reinstall emomix: pip install -e ."
        print(f"validation samples: mel PNGs only, no wavs: cannot import the vocoder ({error}); "
              f"{fix}", file=sys.stderr)
        return None
    return load_vocoder("griffinlim", audio=audio, config={"n_iter": 32})


def write_samples(out_dir: Path, mels: dict[str, torch.Tensor], audio, vocoder=None) -> None:
    """Mel PNG per emotion, and a wav per emotion when a ``vocoder`` is given."""
    for emotion, mel in mels.items():
        save_mel_png(mel, out_dir / f"{emotion}.png", title=emotion)
        if vocoder is not None and mel.shape[-1] > 0:
            save_wav(out_dir / f"{emotion}.wav", vocoder(mel[None])[0], audio.sample_rate)


# ---------------------------------------------------------------- the run
def mel_statistics(store, items: list[dict]) -> tuple[float, float]:
    """Mean and standard deviation of every log-mel value of ``items`` (float64 sums)."""
    total = squares = count = 0.0
    for item in items:
        mel = store.mel(item["id"]).astype(np.float64)
        total, squares, count = total + mel.sum(), squares + (mel * mel).sum(), count + mel.size
    mean = total / count
    return round(mean, 6), round(math.sqrt(max(squares / count - mean * mean, 1e-12)), 6)


def build_model_config(cfg: TTSTrainConfig, n_vocab: int, n_speakers: int, emotion_dim: int,
                       speaker_in_dim: int, mel_stats: tuple[float, float] | None = None):
    """The preset's TTSConfig + ``cfg.model`` overrides + what the data decides (vocabulary,
    speakers, emotion size, speaker encoder, and with ``normalise_mels`` the mel statistics
    ``mel_stats``); a data-decided key in ``model`` is an error."""
    decided = {"n_vocab": n_vocab, "n_speakers": max(n_speakers, 1), "emotion_dim": emotion_dim,
               "speaker_encoder": cfg.speaker_encoder, "out_size": cfg.out_size}
    if speaker_in_dim:
        decided["speaker_in_dim"] = speaker_in_dim
    if mel_stats is not None:
        decided["mel_mean"], decided["mel_std"] = mel_stats
    clash = sorted(set(cfg.model) & set(decided))
    if clash:
        raise EmomixError(f"config key 'model.{clash[0]}' is set from the data/top-level config; "
                          "remove it from 'model'")
    values = merge_nested(merge_nested(preset(cfg.preset), cfg.model), decided)
    check_family_keys(cfg.model, values.get("decoder", "score2d"))
    return from_dict(TTSConfig, values, prefix="model.")


# the model keys that only one decoder family reads (an option the other family would drop)
FAMILY_KEYS = {"score2d": ("dec_dim", "dim_mults", "beta_min", "beta_max", "pe_scale"),
               "flow1d": ("flow",)}


def check_family_keys(model: dict, family: str) -> None:
    """EmomixError when ``model`` (the user's overrides) sets a key of the other family."""
    for other, keys in FAMILY_KEYS.items():
        given = [key for key in keys if key in model]
        if other != family and given:
            raise EmomixError(f"model.{given[0]} is an option of the {other} decoder, and this "
                              f"model's decoder is {family}: drop it or set model.decoder={other}")


def _prototypes(cfg: TTSTrainConfig, run_dir: Path, ser_path: Path):
    if cfg.prototypes:
        return load_prototypes(cfg.prototypes), Path(cfg.prototypes)
    out = run_dir / "prototypes.pt"
    if not out.is_file():
        compute_prototypes(Path(cfg.features), ser_path, out, per_speaker=True, plot=True)
    return load_prototypes(out), out


def _check_inputs(cfg: TTSTrainConfig) -> None:
    check_speaker_encoder(cfg.speaker_encoder)
    if not cfg.features:
        raise EmomixError("config key 'features' is empty; set it to a feature store (emomix prep --out)")
    if not cfg.ser:
        raise EmomixError("config key 'ser' is empty; set it to an SER checkpoint (emomix train ser)")
    if not Path(cfg.ser).is_file():
        raise EmomixError(f"SER checkpoint {cfg.ser} not found; make it first with `emomix train ser --config "
                          f"SER_YAML features={cfg.features} run_dir={Path(cfg.ser).parent}` (the demo's "
                          "SER_YAML: recipes/demo/ser.yaml), or set ser=PATH")
    if cfg.prototypes and not Path(cfg.prototypes).is_file():
        raise EmomixError(f"prototypes file {cfg.prototypes} not found; make it first with `emomix prototypes "
                          f"--features {cfg.features} --ser {cfg.ser} --out {cfg.prototypes} --per-speaker`")
    if cfg.speaker_encoder == "wav2vec2" and not cfg.wav2vec2_path:
        raise EmomixError("speaker_encoder wav2vec2 needs wav2vec2_path: a local model folder")
    if cfg.out_size < 0 or (cfg.out_size and cfg.out_size % 4):
        raise EmomixError(f"out_size must be 0 or a positive multiple of 4, got {cfg.out_size}")
    if cfg.style_every < 1:
        raise EmomixError(f"style_every must be ≥ 1, got {cfg.style_every}; set it to 1 (style "
                          "loss every step) or k > 1 (every k-th step)")


def train_tts(config_path: str | Path | None, overrides: list[str] | None = None,
              resume: str | Path | None = None, device: str | None = None,
              init_from: str | Path | None = None) -> Path:
    """Train (or resume) the EmoMix TTS model; returns ``run_dir/tts.pt``."""
    cfg = load_config(TTSTrainConfig, config_path, overrides)
    if device:
        cfg.train.device = device
    _check_inputs(cfg)
    return TTSTraining(cfg, resume, init_from).run()


class TTSTraining:
    """One run of :func:`train_tts`, a method per step (module docstring): :meth:`run` calls them
    in order; ``fit`` calls :meth:`batches`, :meth:`step`, :meth:`validate` and :meth:`export`."""

    def __init__(self, cfg: TTSTrainConfig, resume: str | Path | None, init_from: str | Path | None):
        self.cfg, self.resume, self.init_from = cfg, resume, init_from
        self.run_dir = Path(cfg.run_dir)
        self.info = dist_info()
        self.device = resolve_device(cfg.train.device)
        self.out_size = cfg.out_size or None
        self.style_on = cfg.style_weight > 0

    def run(self) -> Path:
        self.load_inputs()
        self.build_model()  # the pretrained weights are checked before the run folder is written
        self.open_run_folder()
        self.prepare_data()
        # the loop's step number (0-based), continued by a resumed run, so that the steps with a
        # style loss are the same whether or not the run was interrupted (exact resume)
        resumed = self.resume and self.cfg.style_every > 1
        self.step_numbers = itertools.count(_resumed_step(self.resume) if resumed else 0)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.train.lr,
                                     weight_decay=self.cfg.train.weight_decay)
        result = fit(self.model, optimizer, self.batches, self.step, self.cfg.train, self.run_dir, "tts",
                     self.export, validate=self.validate if self.val_set is not None else None,
                     resume=Path(self.resume) if self.resume else None)  # fmt: skip
        return result.checkpoint

    # ------------------------------------------------------------ setup
    def load_inputs(self) -> None:
        """The feature store, the frozen SER and the speaker encoder (wav2vec2 only)."""
        cfg = self.cfg
        self.store = FeatureStore(Path(cfg.features))
        self.train_items, self.val_items = self.store.items("train"), self.store.items("val")
        if not self.train_items:
            raise EmomixError(f"feature store {self.store.root} has no 'train' utterances; re-run prep")
        self.ser_path = Path(cfg.ser)
        self.ser_payload = load_checkpoint(self.ser_path, "ser")
        self.ser = load_ser(self.ser_path, device=self.device)
        self.speaker_encoder = None
        if cfg.speaker_encoder == "wav2vec2":
            self.speaker_encoder = Wav2Vec2SpeakerEncoder(cfg.wav2vec2_path, cfg.wav2vec2_layer,
                                                          allow_pickle=cfg.wav2vec2_allow_pickle)

    def build_model(self) -> None:
        """The model, seeded; warm-started from ``init_from`` (checked, nothing written yet)."""
        store = self.store
        stats = mel_statistics(store, store.items("train")) if self.cfg.normalise_mels else None
        self.model_cfg = build_model_config(self.cfg, len(store.symbols), len(store.speakers), self.ser.embed_dim,
                                            self.speaker_encoder.dim if self.speaker_encoder else 0,  # fmt: skip
                                            stats)
        seed_everything(self.cfg.train.seed)  # the same initial weights on every run and rank
        self.model = EmoMixTTS(self.model_cfg)
        self.init_report = None
        if self.init_from is not None and self.resume is None and self.info.rank == 0:
            self.init_report = load_init_weights(self.model, self.init_from, store.symbols, store.audio)

    def open_run_folder(self) -> None:
        """The run folder with the resolved config, and what ``init_from`` loaded."""
        if self.info.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_yaml(self.run_dir / "config.yaml", self.cfg)
        report = self.init_report
        if report is not None:
            atomic_write_text(self.run_dir / "init_from.json", json.dumps(to_dict(report), indent=1))
            print(f"init-from {self.init_from} ({report.source}): {len(report.loaded)} tensors loaded, "
                  f"{len(report.new)} new, {len(report.skipped)} skipped (shape mismatch); "
                  f"see {self.run_dir / 'init_from.json'}")

    def prepare_data(self) -> None:
        """Emotion (and speaker) vectors of every utterance, prototypes, datasets and sampler."""
        cfg, store = self.cfg, self.store
        items = self.train_items + self.val_items
        emotion_vectors = ser_embeddings(store, self.ser, self.ser_path, items)
        self.prototypes, _ = _prototypes(cfg, self.run_dir, self.ser_path)
        speaker_vectors, self.speaker_means = None, {}
        if self.speaker_encoder is not None:
            speaker_vectors = store_speaker_embeddings(store, self.speaker_encoder, items,
                                                       progress=self.info.rank == 0)
            self.speaker_means = _speaker_means(self.train_items, speaker_vectors)

        self.train_set = MelDataset(store, "train")  # utterances without phonemes are left out
        if len(self.train_set) == 0:
            raise EmomixError(f"no train utterance of {store.root} has phonemes; re-run prep with text")
        val_set = MelDataset(store, "val") if self.val_items else None
        self.val_set = val_set if val_set is not None and len(val_set) else None
        self.vocoder = sample_vocoder(store.audio) if self.val_set is not None and self.info.rank == 0 else None
        neutral = neutral_vectors(self.prototypes, items) if self.model_cfg.enc_cond_dropout > 0 else None
        self.collate_fn = TTSCollate(emotion_vectors, speaker_vectors, neutral)
        self.sampler = LengthBucketSampler(self.train_set.lengths, cfg.train.batch_size, seed=cfg.train.seed,
                                           rank=self.info.rank, world_size=self.info.world_size)  # fmt: skip

    # ------------------------------------------------------------ what fit calls
    def batches(self, epoch: int):
        self.sampler.set_epoch(epoch)  # a deterministic function of (seed, epoch): exact resume
        return torch.utils.data.DataLoader(
            self.train_set, batch_sampler=self.sampler, collate_fn=self.collate_fn,
            num_workers=self.cfg.train.num_workers, pin_memory=self.device.type == "cuda",
        )

    def losses(self, model, batch, device, generator=None, style_scale: int = 1) -> dict[str, torch.Tensor]:
        """The losses of one batch; the style term weighted ``style_scale · style_weight``, and
        left out (no SER forward, no ``style_loss`` entry) when ``style_scale`` is 0."""
        cfg = self.cfg
        batch = _to_device(batch, device)
        out = model.compute_loss(
            batch["tokens"], batch["token_lengths"], batch["mel"], batch["mel_lengths"],
            batch["emotion_embedding"], _speaker_input(batch, cfg.speaker_encoder), out_size=self.out_size,
            generator=generator, neutral=batch.get("neutral_embedding"),
        )
        total = out["dur_loss"] + out["prior_loss"] + out["diff_loss"]
        values = {"dur_loss": out["dur_loss"], "prior_loss": out["prior_loss"],
                  "diff_loss": out["diff_loss"]}
        if not self.style_on:
            values["style_loss"] = torch.zeros((), device=device)
        elif style_scale:
            weight = out["style_weight"] if cfg.style_snr_weighting else None
            style = style_loss(self.ser, out["x0_hat"], out["target"], out["seg_mask"], weight)
            total = total + style_scale * cfg.style_weight * style
            values["style_loss"] = style
        return {"loss": total, **values}

    def step(self, model, batch, device) -> dict[str, torch.Tensor]:
        every = self.cfg.style_every
        style_scale = every if next(self.step_numbers) % every == 0 else 0
        return self.losses(model, batch, device, style_scale=style_scale)

    def validate(self, model, step: int) -> dict[str, float]:
        device = next(model.parameters()).device
        # validation must not move the training RNG: a resumed run would diverge otherwise
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return self._validation(model, step, device)

    def _validation(self, model, step: int, device: torch.device) -> dict[str, float]:
        """Mean losses over the val split, and one sample per emotion written under samples/."""
        cfg = self.cfg
        sums: dict[str, float] = {}
        generator = torch.Generator(device=device).manual_seed(cfg.train.seed)
        loader = torch.utils.data.DataLoader(self.val_set, batch_size=cfg.train.batch_size,
                                             collate_fn=self.collate_fn)
        n = 0
        for batch in loader:
            values = self.losses(model, batch, device, generator)
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + float(value) * len(batch["tokens"])
            n += len(batch["tokens"])
        metrics = {key: value / n for key, value in sums.items()}
        sample = self.collate_fn([self.val_set[0]])
        speaker_input = _speaker_input(sample, cfg.speaker_encoder)
        mels = sample_prototypes(model, sample["tokens"][0], self.prototypes, speaker_input,
                                 cfg.n_val_steps, cfg.val_temperature, seed=cfg.train.seed)
        write_samples(self.run_dir / "samples" / f"step_{step}", mels, self.store.audio, self.vocoder)
        metrics["score"] = -metrics["loss"]
        return metrics

    def export(self, model) -> dict:
        return tts_payload(self.cfg, model, self.store, self.prototypes, self.ser_payload, self.speaker_means)


def _resumed_step(path: str | Path) -> int:
    """The step count saved in a ``last.pt`` (the step the resumed run starts from)."""
    return int(load_checkpoint(Path(path), "train-state")["step"])


def _speaker_means(items: list[dict], vectors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Mean wav2vec2 vector per training speaker, so ``--speaker ID`` works without a wav."""
    groups: dict[str, list[np.ndarray]] = {}
    for item in items:
        groups.setdefault(item["speaker"], []).append(vectors[item["id"]])
    return {name: torch.from_numpy(np.mean(v, axis=0).astype(np.float32)) for name, v in groups.items()}


def tts_payload(cfg: TTSTrainConfig, model: nn.Module, store, prototypes, ser_payload: dict,
                speaker_vectors: dict[str, torch.Tensor]) -> dict:
    """The inference checkpoint (kind ``tts``, CONTRACTS.md): self-contained, SER included."""
    payload = {
        "config": to_dict(model.cfg),
        "audio": to_dict(store.audio),
        "symbols": store.symbols.to_dict(),
        "emotions": list(store.emotions),
        "speakers": list(store.speakers),
        "speaker_encoder": cfg.speaker_encoder,
        "prototypes": {
            "emotions": list(prototypes.emotions),
            "vectors": prototypes.vectors.detach().float().cpu(),
            "counts": [int(c) for c in prototypes.counts],
            "per_speaker": {k: v.detach().float().cpu() for k, v in prototypes.per_speaker.items()},
        },
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "ser": {k: v for k, v in ser_payload.items() if k not in ("format", "kind", "version")},
        "train_config": to_dict(cfg),
    }
    if cfg.speaker_encoder == "wav2vec2":
        payload["wav2vec2"] = {"path": cfg.wav2vec2_path, "layer": cfg.wav2vec2_layer,
                               "allow_pickle": cfg.wav2vec2_allow_pickle}
        payload["speaker_vectors"] = speaker_vectors
    return payload
