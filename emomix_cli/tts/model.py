"""EmoMix acoustic model: Grad-TTS conditioned on an emotion embedding (and a speaker).

``EmoMixTTS`` = ``TextEncoder`` (μ and durations, conditioned on e and s) + a decoder of one of
two families (``TTSConfig.decoder``, docs/DESIGN.md §1.6), each a module with the same small
interface, built in :func:`build_decoder` (the one place that branches on the family):

- ``score2d``: Grad-TTS's score SDE with the 2-D U-Net (:mod:`.score`); network output
  :meth:`EmoMixTTS.score`;
- ``flow1d``: Matcha-TTS's OT conditional flow matching with its 1-D U-Net (:mod:`.flow`);
  network output :meth:`EmoMixTTS.velocity`.

Inference pieces: :meth:`EmoMixTTS.encode` (text → μ_y over frames), the network output, and
:meth:`EmoMixTTS.sample` (a family's solver over any output callable, e.g. a mix of emotions).
Training: :meth:`EmoMixTTS.compute_loss` (duration, prior and decoder losses + the decoder's
one-step estimate of the clean mel for the style loss).

With ``emotion_dim = 0`` and ``speaker_encoder = "none"`` the model is the official
single-speaker Grad-TTS (same parameter names and shapes, so ``grad-tts.pt`` loads whole);
with ``speaker_encoder = "table"`` and ``emotion_dim = 0`` it is the multi-speaker Grad-TTS
plus a zero-initialised time-embedding projection of the speaker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..config import to_dict
from ..errors import EmomixError
from . import sde
from .alignment import generate_path, maximum_path, sequence_mask
from .encoder import TextEncoder
from .flow import FlowDecoder
from .score import ScoreDecoder
from .speaker import check_speaker_encoder
from .unet import GradLogPEstimator2d, fix_len_compatibility
from .unet1d import FlowEstimator1d

DECODERS = ("score2d", "flow1d")


@dataclass
class FlowConfig:
    """The flow1d decoder (Matcha-TTS's defaults): U-Net widths per level, transformer blocks."""

    channels: tuple[int, ...] = (256, 256)
    attention_head_dim: int = 64
    num_heads: int = 2
    n_blocks: int = 1  # transformer blocks per level
    num_mid_blocks: int = 2
    dropout: float = 0.05
    sigma_min: float = 1e-4  # OT-CFM: the std of the path's end around the data


@dataclass
class TTSConfig:
    """Sizes of the acoustic model; defaults are the Grad-TTS paper's ("paper" preset)."""

    n_vocab: int = 149
    n_feats: int = 80
    emotion_dim: int = 128  # SER embedding size; 0 = no emotion condition (plain Grad-TTS)
    n_speakers: int = 1
    speaker_encoder: str = "table"  # table | wav2vec2 (a pooled embedding vector) | none
    speaker_in_dim: int = 768  # width of the pretrained speaker embedding (wav2vec2)
    spk_emb_dim: int = 64
    emo_emb_dim: int = 64
    n_enc_channels: int = 192
    filter_channels: int = 768
    filter_channels_dp: int = 256
    n_heads: int = 2
    n_enc_layers: int = 6
    enc_kernel: int = 3
    enc_dropout: float = 0.1
    window_size: int = 4
    dec_dim: int = 64
    dim_mults: tuple[int, ...] = field(default_factory=lambda: (1, 2, 4))
    beta_min: float = 0.05
    beta_max: float = 20.0
    pe_scale: float = 1000.0
    out_size: int = 172  # decoder training segment in frames (multiple of 4); 0 = whole mel
    # condition dropout (docs/DESIGN.md §1.4): in training, the decoder's emotion vector is
    # replaced by a learned null vector with this probability, which gives the unconditional
    # score s_∅ that guidance needs; 0 = no null vector, and guidance w ≠ 1 is refused
    cond_dropout: float = 0.0
    # encoder-emotion dropout (docs/DESIGN.md §1.3): for this fraction of training items the
    # text encoder and duration predictor see the speaker's Neutral prototype while the decoder
    # sees the true emotion, so the decoder has to carry the emotion itself
    enc_cond_dropout: float = 0.0
    decoder: str = "score2d"  # score2d (Grad-TTS) | flow1d (Matcha-TTS); docs/DESIGN.md §1.6
    flow: FlowConfig = field(default_factory=FlowConfig)
    enc_position: str = "relative"  # relative (Grad-TTS, window_size) | rotary (Matcha-TTS)
    # how the emotion enters the text encoder: concat (beside the speaker, widening the
    # transformer) | add (a zero-initialised bias on the prenet output: pretrained shapes stay)
    enc_emotion: str = "concat"
    # the decoder works on (mel − mel_mean) / mel_std (Matcha-TTS normalises; Grad-TTS: 0, 1)
    mel_mean: float = 0.0
    mel_std: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.flow, dict):  # TTSConfig(**preset(...)) passes the section as a dict
            self.flow = FlowConfig(**{**self.flow, "channels": tuple(self.flow.get(
                "channels", FlowConfig().channels))})


PRESETS: dict[str, dict] = {
    "paper": {},
    "small": {
        "n_enc_channels": 96,
        "filter_channels": 256,
        "filter_channels_dp": 128,
        "n_heads": 2,
        "n_enc_layers": 3,
        "spk_emb_dim": 32,
        "emo_emb_dim": 32,
        "dec_dim": 24,
        "flow": {"channels": (128, 128)},  # with decoder: flow1d (recipes/demo/tts_flow.yaml)
    },
    # Matcha-TTS's architecture (official configs), so its checkpoints load whole; its mel
    # statistics are LJSpeech's (set model.mel_mean/mel_std for another voice, e.g. VCTK)
    "matcha": {
        "spk_emb_dim": 64,
        "emo_emb_dim": 64,
        "decoder": "flow1d",
        "enc_position": "rotary",
        "enc_emotion": "add",
        "mel_mean": -5.536622,
        "mel_std": 2.116101,
    },
}


def preset(name: str) -> dict:
    """Field values of a named preset ("paper": Grad-TTS; "small": ~2.5 M params, CPU;
    "matcha": Matcha-TTS's architecture), nested sections as dicts."""
    if name not in PRESETS:
        raise EmomixError(f"unknown TTS preset '{name}'; choose one of: {', '.join(PRESETS)}")
    defaults = to_dict(TTSConfig())
    return merge_nested(defaults, PRESETS[name])


def merge_nested(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, recursing into dicts (a nested key keeps its siblings)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_config(cfg: TTSConfig) -> None:
    """Raise EmomixError naming the first inconsistent setting of ``cfg``."""
    check_speaker_encoder(cfg.speaker_encoder)
    if cfg.speaker_encoder == "table" and cfg.n_speakers < 1:
        raise EmomixError("n_speakers must be ≥ 1 with speaker_encoder=table")
    if cfg.n_enc_channels % cfg.n_heads:
        raise EmomixError(
            f"n_enc_channels ({cfg.n_enc_channels}) must divide by n_heads ({cfg.n_heads})"
        )
    factor = 2 ** (len(cfg.dim_mults) - 1)
    if cfg.n_feats % factor:
        raise EmomixError(
            f"n_feats ({cfg.n_feats}) must divide by {factor} for dim_mults {cfg.dim_mults}"
        )
    if cfg.dec_dim % 8:
        raise EmomixError(f"dec_dim ({cfg.dec_dim}) must be a multiple of 8 (GroupNorm groups)")
    if cfg.out_size < 0:
        raise EmomixError(f"out_size must be ≥ 0 (0 = whole mel), got {cfg.out_size}")
    for name in ("cond_dropout", "enc_cond_dropout"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise EmomixError(f"{name} must be in [0, 1), got {getattr(cfg, name)}")
    choices = {"decoder": DECODERS, "enc_position": ("relative", "rotary"),
               "enc_emotion": ("concat", "add")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise EmomixError(f"model.{name} must be one of {', '.join(allowed)}, "
                              f"got '{getattr(cfg, name)}'")
    if not cfg.mel_std > 0:
        raise EmomixError(f"mel_std must be > 0, got {cfg.mel_std}")
    if cfg.decoder == "flow1d":
        if not cfg.flow.channels or any(c % 8 for c in cfg.flow.channels):
            raise EmomixError(f"flow.channels must be multiples of 8 (GroupNorm groups), "
                              f"got {list(cfg.flow.channels)}")
        if (2 * cfg.n_feats + (0 if cfg.speaker_encoder == "none" else cfg.spk_emb_dim)) % 2:
            raise EmomixError("2·n_feats + spk_emb_dim must be even for the flow1d decoder")


def build_decoder(cfg: TTSConfig, spk_dim: int, emo_dim: int) -> nn.Module:
    """The decoder of ``cfg.decoder``'s family, holding its network as ``decoder.estimator``."""
    if cfg.decoder == "flow1d":
        flow = cfg.flow
        estimator = FlowEstimator1d(cfg.n_feats, tuple(flow.channels), spk_dim, emo_dim,
                                    flow.dropout, flow.attention_head_dim, flow.n_blocks,
                                    flow.num_mid_blocks, flow.num_heads)
        return FlowDecoder(estimator, flow.sigma_min)
    estimator = GradLogPEstimator2d(cfg.dec_dim, tuple(cfg.dim_mults), spk_emb_dim=spk_dim,
                                    emo_emb_dim=emo_dim, n_feats=cfg.n_feats, pe_scale=cfg.pe_scale)
    return ScoreDecoder(estimator, cfg.beta_min, cfg.beta_max)


class EmoMixTTS(nn.Module):
    """Grad-TTS with emotion (and speaker) conditions. See the module docstring."""

    def __init__(self, cfg: TTSConfig):
        super().__init__()
        check_config(cfg)
        self.cfg = cfg
        self.n_feats = cfg.n_feats
        self.spk_dim = 0 if cfg.speaker_encoder == "none" else cfg.spk_emb_dim
        self.emo_dim = cfg.emo_emb_dim if cfg.emotion_dim > 0 else 0
        if cfg.speaker_encoder == "table":
            self.spk_emb = nn.Embedding(cfg.n_speakers, cfg.spk_emb_dim)
        elif cfg.speaker_encoder == "wav2vec2":
            self.spk_proj = nn.Linear(cfg.speaker_in_dim, cfg.spk_emb_dim)
        if self.emo_dim:
            self.emo_proj = nn.Linear(cfg.emotion_dim, cfg.emo_emb_dim)
            if cfg.cond_dropout > 0:  # the "no emotion" condition of the decoder (guidance)
                self.emo_null = nn.Parameter(torch.zeros(cfg.emo_emb_dim))
        self.encoder = TextEncoder(
            cfg.n_vocab,
            cfg.n_feats,
            cfg.n_enc_channels,
            cfg.filter_channels,
            cfg.filter_channels_dp,
            cfg.n_heads,
            cfg.n_enc_layers,
            cfg.enc_kernel,
            cfg.enc_dropout,
            None if cfg.enc_position == "rotary" else cfg.window_size,
            cond_dim=self.spk_dim + (self.emo_dim if cfg.enc_emotion == "concat" else 0),
            add_dim=self.emo_dim if cfg.enc_emotion == "add" else 0,
            rotary=cfg.enc_position == "rotary",
        )
        self.decoder = build_decoder(cfg, self.spk_dim, self.emo_dim)

    # ---- conditions -------------------------------------------------------------------
    def speaker_vector(self, speaker: Tensor | None) -> Tensor | None:
        """Speaker ids ``LongTensor[B]`` (table) or embeddings ``[B, speaker_in_dim]``
        (wav2vec2) → ``[B, spk_emb_dim]``; None for a model without a speaker condition."""
        kind = self.cfg.speaker_encoder
        if kind == "none":
            if speaker is not None:
                raise EmomixError("this model has no speaker condition; leave out the speaker")
            return None
        if speaker is None:
            raise EmomixError(
                f"this model needs a speaker ({'an id' if kind == 'table' else 'a reference wav'})"
            )
        if kind == "table":
            if speaker.is_floating_point() or speaker.dim() != 1:
                raise EmomixError("this model takes speaker ids (a LongTensor [B]), not embeddings")
            if int(speaker.min()) < 0 or int(speaker.max()) >= self.cfg.n_speakers:
                raise EmomixError(f"speaker id out of range 0..{self.cfg.n_speakers - 1}")
            return self.spk_emb(speaker)
        if not speaker.is_floating_point() or speaker.shape[-1] != self.cfg.speaker_in_dim:
            raise EmomixError(
                f"this model takes speaker embeddings [B, {self.cfg.speaker_in_dim}], "
                f"got {tuple(speaker.shape)} {speaker.dtype}"
            )
        return self.spk_proj(speaker)

    def emotion_vector(self, emotion: Tensor | None) -> Tensor | None:
        """SER embedding ``[B, emotion_dim]`` → ``[B, emo_emb_dim]`` (None without emotion)."""
        if not self.emo_dim:
            return None
        if emotion is None or emotion.shape[-1] != self.cfg.emotion_dim:
            got = None if emotion is None else tuple(emotion.shape)
            raise EmomixError(
                f"this model needs emotion embeddings [B, {self.cfg.emotion_dim}], "
                f"got {got}; are the prototypes from the SER the model was trained with?"
            )
        return self.emo_proj(emotion)

    def _encode_tokens(self, tokens: Tensor, lengths: Tensor, emo: Tensor | None,
                       spk: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """The text encoder with the emotion entering as ``cfg.enc_emotion`` says."""
        add = emo if self.cfg.enc_emotion == "add" else None
        if spk is not None and emo is not None and emo.dim() == 3:  # an emotion per token
            spk = spk[:, None].expand(-1, emo.shape[1], -1)
        parts = [v for v in (spk, None if add is not None else emo) if v is not None]
        cond = torch.cat(parts, dim=-1) if parts else None
        return self.encoder(tokens, lengths, cond, add)

    @property
    def family(self) -> str:
        """The decoder family: ``score2d`` or ``flow1d``."""
        return self.decoder.family

    def normalise(self, mel: Tensor) -> Tensor:
        """Log-mel → the decoder's space, ``(mel − mel_mean) / mel_std``."""
        return (mel - self.cfg.mel_mean) / self.cfg.mel_std

    def denormalise(self, x: Tensor) -> Tensor:
        """The decoder's space → log-mel."""
        return x * self.cfg.mel_std + self.cfg.mel_mean

    def _check_spk(self, spk: Tensor | None) -> None:
        if self.spk_dim and (spk is None or spk.shape[-1] != self.spk_dim):
            got = None if spk is None else tuple(spk.shape)
            raise EmomixError(f"spk must be speaker_vector(...) [B, {self.spk_dim}], got {got}")

    # ---- inference ----------------------------------------------------------------------
    def encode(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        emotion: Tensor | None,
        spk: Tensor | None = None,
        length_scale: float = 1.0,
        durations: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Text → frame-level prior.

        ``tokens [B, L]`` long, ``token_lengths [B]``, ``emotion [B, emotion_dim]`` (or one
        per token, ``[B, L, emotion_dim]``: :func:`.mixing.token_conditions`),
        ``spk = speaker_vector(...) [B, spk_emb_dim]`` or None. Durations are
        ``ceil(exp(log w) · length_scale)``, or the given ``durations [B, L]`` (frames per token,
        e.g. another condition's, so that two priors share one timing). Returns ``mu_y [B, n_feats, T]`` and
        ``y_mask [B, 1, T]`` with T padded to a multiple of 4, ``y_lengths [B]``,
        ``durations [B, L]`` (frames per token), ``mu_x [B, n_feats, L]``, ``x_mask [B, 1, L]``,
        ``logw [B, 1, L]``.
        """
        self._check_spk(spk)
        emo = self.emotion_vector(emotion)
        mu_x, logw, x_mask = self._encode_tokens(tokens, token_lengths, emo, spk)
        if durations is None:
            durations = torch.ceil(torch.exp(logw) * x_mask * length_scale)  # [B, 1, L]
        else:
            durations = durations.to(mu_x.dtype).reshape(x_mask.shape) * x_mask
        y_lengths = durations.sum(dim=(1, 2)).clamp_min(1).long()
        length = fix_len_compatibility(int(y_lengths.max()), self.decoder.n_downsamplings)
        y_mask = sequence_mask(y_lengths, length).unsqueeze(1).to(mu_x.dtype)
        path = generate_path(durations.squeeze(1), x_mask.transpose(1, 2) * y_mask)  # [B, L, T]
        mu_y = torch.matmul(mu_x, path)  # [B, n_feats, T]
        return {
            "mu_y": mu_y,
            "y_mask": y_mask,
            "y_lengths": y_lengths,
            "durations": durations.squeeze(1),
            "mu_x": mu_x,
            "x_mask": x_mask,
            "logw": logw,
        }

    def score(self, x: Tensor, mask: Tensor, mu: Tensor, t: Tensor | float,
              emotion: Tensor | None, spk: Tensor | None = None,
              unconditional: Tensor | None = None) -> Tensor:
        """s_θ(x, t, μ, s, e) ``[B, n_feats, T]`` of a score2d model (t = 1 is noise); the
        arguments are those of :meth:`network_output`."""
        self._check_family("score2d", "score")
        return self.network_output(x, mask, mu, t, emotion, spk, unconditional)

    def velocity(self, x: Tensor, mask: Tensor, mu: Tensor, t: Tensor | float,
                 emotion: Tensor | None, spk: Tensor | None = None,
                 unconditional: Tensor | None = None) -> Tensor:
        """v_θ(x, t, μ, s, e) ``[B, n_feats, T]`` of a flow1d model, in Matcha-TTS's time
        convention (t = 0 is noise, t = 1 is data); the arguments are those of
        :meth:`network_output`."""
        self._check_family("flow1d", "velocity")
        return self.network_output(x, mask, mu, t, emotion, spk, unconditional)

    def network_output(self, x: Tensor, mask: Tensor, mu: Tensor, t: Tensor | float,
                       emotion: Tensor | None, spk: Tensor | None = None,
                       unconditional: Tensor | None = None) -> Tensor:
        """The decoder's output, score or velocity by family. ``x, mu [B, n_feats, T]`` (the
        decoder's normalised space), ``mask [B, 1, T]``, ``t [B]`` (or a scalar), T a multiple
        of ``2 ** decoder.n_downsamplings``, ``emotion [B, emotion_dim]``, ``spk =
        speaker_vector(...)`` or None. ``unconditional [B]`` bool: rows evaluated with the
        null emotion (guidance)."""
        self._check_spk(spk)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        emo = self.decoder_emotion(self.emotion_vector(emotion), unconditional)
        return self.decoder(x, mask, mu, t, spk, emo)

    def noise_level(self, t: float) -> float:
        """The family's time as the mixing window's unit (1 = pure noise, 0 = data)."""
        return self.decoder.noise_level(t)

    def _check_family(self, family: str, output: str) -> None:
        if self.family != family:
            other = "velocity" if output == "score" else "score"
            raise EmomixError(f"this is a {self.family} model, which has no {output}; "
                              f"call {other}() or network_output()")

    def sample(self, output_fn, mu: Tensor, mask: Tensor, solver: str, n_steps: int,
               temperature: float, generator: torch.Generator | None = None,
               x_start: Tensor | None = None) -> Tensor:
        """The log-mel ``[B, n_feats, T]`` from the family's ``solver`` over ``output_fn(x, t)``
        (this model's :meth:`network_output` for fixed conditions, or a
        :class:`.mixing.MixedOutput`), denormalised."""
        if solver not in self.decoder.solvers:
            raise EmomixError(f"solver '{solver}' is not one of the {self.family} family's "
                              f"({', '.join(self.decoder.solvers)})")
        x = self.decoder.solve(output_fn, mu, mask, solver, n_steps, temperature, generator,
                               x_start)
        return self.denormalise(x) * mask

    @property
    def supports_guidance(self) -> bool:
        """True when the decoder learned a null emotion (trained with ``cond_dropout > 0``)."""
        return hasattr(self, "emo_null")

    def decoder_emotion(self, emo: Tensor | None, unconditional: Tensor | None) -> Tensor | None:
        """``emo [B, emo_emb_dim]`` with the rows where ``unconditional [B]`` (bool) is True
        replaced by the learned null vector (condition dropout / the guidance branch)."""
        if unconditional is None or emo is None:
            return emo
        if not self.supports_guidance:
            raise EmomixError("this model was trained without condition dropout (cond_dropout 0), "
                              "so it has no unconditional score; use guidance 1")
        return torch.where(unconditional[:, None], self.emo_null.to(emo.dtype), emo)

    # ---- training -----------------------------------------------------------------------
    def compute_loss(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        mel: Tensor,
        mel_lengths: Tensor,
        emotion: Tensor | None,
        spk: Tensor | None = None,
        out_size: int | None = None,
        generator: torch.Generator | None = None,
        neutral: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The training losses of one batch.

        ``tokens [B, L]``, ``token_lengths [B]``, ``mel [B, n_feats, Ty]`` (log-mel),
        ``mel_lengths [B]``, ``emotion [B, emotion_dim]`` (the SER embedding of the target),
        ``spk``: the RAW speaker input of :meth:`speaker_vector` (ids or embeddings) or None.
        ``out_size`` (default ``cfg.out_size``; 0 = whole mel) is the decoder segment length S,
        rounded up to a multiple of ``2 ** decoder.n_downsamplings`` and capped at the padded
        batch length. ``neutral [B, emotion_dim]``: each item's Neutral prototype, what the
        encoder sees for the items that encoder-emotion dropout picks (needed when
        ``cfg.enc_cond_dropout > 0``).

        Returns ``dur_loss``, ``prior_loss``, ``diff_loss`` (scalars), ``x0_hat [B, n_feats, S]``
        (the decoder's one-step estimate of the clean segment as a log-mel, differentiable),
        ``style_weight [B]`` (the weight of a loss on it), ``target [B, n_feats, S]`` (the
        log-mel segment), ``seg_mask [B, 1, S]``, ``t [B]``, ``durations [B, L]`` (from MAS).
        """
        if bool((token_lengths > mel_lengths).any()):
            bad = int(torch.nonzero(token_lengths > mel_lengths)[0, 0])
            raise EmomixError(
                f"batch item {bad} has more tokens ({int(token_lengths[bad])}) than mel "
                f"frames ({int(mel_lengths[bad])}); drop such utterances from training"
            )
        spk_vec = self.speaker_vector(spk)
        emo = self.emotion_vector(emotion)
        encoder_emotion = self._encoder_emotion(emotion, neutral, generator)
        # the same projection unless encoder-emotion dropout replaced some rows
        emo_encoder = emo if encoder_emotion is emotion else self.emotion_vector(encoder_emotion)
        mu_x, logw, x_mask = self._encode_tokens(tokens, token_lengths, emo_encoder, spk_vec)
        y_mask = sequence_mask(mel_lengths, mel.shape[-1]).unsqueeze(1).to(mel.dtype)
        mel = self.normalise(mel) * y_mask

        path = self._align(mu_x, x_mask, mel, y_mask)  # [B, L, Ty]
        durations = path.sum(-1)
        logw_target = torch.log(1e-8 + durations).unsqueeze(1) * x_mask
        dur_loss = sde.duration_loss(logw, logw_target, token_lengths)
        mu_y = torch.matmul(mu_x, path)  # [B, n_feats, Ty]
        prior_loss = sde.prior_loss(mel, mu_y, y_mask)

        target, mu_seg, seg_mask = self._segment(mel, mu_y, mel_lengths, out_size, generator)
        # condition dropout: the decoder alone learns the null emotion; the encoder keeps the
        # emotion, since guidance shares μ and the durations between the conditional and null rows
        dropped = None
        if self.training and self.cfg.cond_dropout > 0 and emo is not None:
            dropped = _bernoulli(emo.shape[0], self.cfg.cond_dropout, generator, emo.device)
        out = self.decoder.loss(target, seg_mask, mu_seg, spk_vec,
                                self.decoder_emotion(emo, dropped), generator)
        return {
            "dur_loss": dur_loss,
            "prior_loss": prior_loss,
            "diff_loss": out["diff_loss"],
            "x0_hat": self.denormalise(out["x0_hat"]) * seg_mask,
            "style_weight": out["style_weight"],
            "target": self.denormalise(target) * seg_mask,
            "seg_mask": seg_mask,
            "t": out["t"],
            "durations": durations,
        }

    def _encoder_emotion(self, emotion: Tensor | None, neutral: Tensor | None,
                         generator: torch.Generator | None) -> Tensor | None:
        """``emotion`` with the rows that encoder-emotion dropout picks replaced by ``neutral``."""
        if not (self.training and self.cfg.enc_cond_dropout > 0 and emotion is not None):
            return emotion
        if neutral is None or neutral.shape != emotion.shape:
            got = None if neutral is None else tuple(neutral.shape)
            raise EmomixError(f"enc_cond_dropout needs each item's Neutral prototype "
                              f"{tuple(emotion.shape)}, got {got}; does the data have 'neutral'?")
        picked = _bernoulli(emotion.shape[0], self.cfg.enc_cond_dropout, generator, emotion.device)
        return torch.where(picked[:, None], neutral.to(emotion.dtype), emotion)

    @torch.no_grad()
    def _align(self, mu_x: Tensor, x_mask: Tensor, mel: Tensor, y_mask: Tensor) -> Tensor:
        """MAS on ``log N(y_j; μ_i, I)`` summed over features → path ``[B, L, Ty]``."""
        mu_x, mel = mu_x.float(), mel.float()
        log_prior = (
            -0.5 * (mel**2).sum(1).unsqueeze(1)
            + torch.matmul(mu_x.transpose(1, 2), mel)
            - 0.5 * (mu_x**2).sum(1).unsqueeze(-1)
            - 0.5 * math.log(2 * math.pi) * self.n_feats
        )  # [B, L, Ty]
        attn_mask = x_mask.transpose(1, 2) * y_mask  # [B, L, Ty]
        return maximum_path(log_prior, attn_mask.float()).to(x_mask.dtype)

    def _segment(
        self,
        mel: Tensor,
        mu_y: Tensor,
        mel_lengths: Tensor,
        out_size: int | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """A random window of S frames per item: ``(mel, mu_y, mask)`` cut to ``[B, ·, S]``."""
        factor_steps = self.decoder.n_downsamplings
        size = self.cfg.out_size if out_size is None else out_size
        whole = fix_len_compatibility(int(mel_lengths.max()), factor_steps)
        size = whole if size <= 0 else min(fix_len_compatibility(size, factor_steps), whole)
        if mel.shape[-1] < size:
            pad = size - mel.shape[-1]
            mel = nn.functional.pad(mel, (0, pad))
            mu_y = nn.functional.pad(mu_y, (0, pad))
        max_offset = (mel_lengths - size).clamp_min(0)
        draw = torch.rand(
            mel.shape[0],
            generator=generator,
            device=generator.device if generator is not None else mel.device,
        )
        offset = torch.floor(draw.to(mel.device) * (max_offset + 1).to(draw.dtype)).long()
        offset = torch.minimum(offset, max_offset)
        index = offset.unsqueeze(1) + torch.arange(size, device=mel.device).unsqueeze(0)
        index = index.clamp_max(mel.shape[-1] - 1)
        seg_lengths = mel_lengths.clamp_max(size)
        seg_mask = sequence_mask(seg_lengths, size).unsqueeze(1).to(mel.dtype)
        gather = index.unsqueeze(1).expand(-1, mel.shape[1], -1)
        return (
            torch.gather(mel, 2, gather) * seg_mask,
            torch.gather(mu_y, 2, gather) * seg_mask,
            seg_mask,
        )

    # ---- weights ------------------------------------------------------------------------
    def load_matching_weights(self, state_dict: dict[str, Tensor]) -> dict[str, list[str]]:
        """Copy every entry of ``state_dict`` whose name and shape match (e.g. the official
        ``grad-tts.pt``); returns the names ``loaded``, ``skipped`` (absent or other shape) and
        ``missing`` (ours, left at their initial values)."""
        own = self.state_dict()
        loaded = [k for k, v in state_dict.items() if k in own and own[k].shape == v.shape]
        skipped = [k for k in state_dict if k not in loaded]
        missing = [k for k in own if k not in state_dict or k in skipped]
        self.load_state_dict({k: state_dict[k] for k in loaded}, strict=False)
        return {"loaded": loaded, "skipped": skipped, "missing": missing}


def _bernoulli(n: int, p: float, generator: torch.Generator | None, device) -> Tensor:
    """``[n]`` bool, each True with probability ``p``, drawn from ``generator`` when given."""
    draw_device = generator.device if generator is not None else device
    return (torch.rand(n, generator=generator, device=draw_device) < p).to(device)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
