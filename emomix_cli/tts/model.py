"""EmoMix acoustic model: Grad-TTS conditioned on an emotion embedding (and a speaker).

``EmoMixTTS`` = ``TextEncoder`` (μ and durations, conditioned on e and s) + a score-based
decoder whose estimator is ``GradLogPEstimator2d`` (conditioned on μ, t, e and s).
Inference pieces: :meth:`EmoMixTTS.encode` (text → μ_y over frames) and
:meth:`EmoMixTTS.score` (s_θ, for any sampler in ``tts/sampling.py``). Training:
:meth:`EmoMixTTS.compute_loss` (Grad-TTS losses + the Tweedie estimate for the style loss).

With ``emotion_dim = 0`` and ``speaker_encoder = "none"`` the model is the official
single-speaker Grad-TTS (same parameter names and shapes, so ``grad-tts.pt`` loads whole);
with ``speaker_encoder = "table"`` and ``emotion_dim = 0`` it is the multi-speaker Grad-TTS
plus a zero-initialised time-embedding projection of the speaker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from ..errors import EmomixError
from . import sde
from .alignment import generate_path, maximum_path, sequence_mask
from .encoder import TextEncoder
from .speaker import check_speaker_encoder
from .unet import GradLogPEstimator2d, fix_len_compatibility


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
    },
}


def preset(name: str) -> dict:
    """Field values of a named size preset ("paper": Grad-TTS; "small": ~2.5 M params, CPU)."""
    if name not in PRESETS:
        raise EmomixError(f"unknown TTS preset '{name}'; choose one of: {', '.join(PRESETS)}")
    defaults = {f.name: getattr(TTSConfig(), f.name) for f in fields(TTSConfig)}
    return {**defaults, **PRESETS[name]}


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
    if not 0.0 <= cfg.cond_dropout < 1.0:
        raise EmomixError(f"cond_dropout must be in [0, 1), got {cfg.cond_dropout}")


class Decoder(nn.Module):
    """Holds the estimator under the official name ``decoder.estimator``."""

    def __init__(self, estimator: GradLogPEstimator2d):
        super().__init__()
        self.estimator = estimator


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
            cfg.window_size,
            cond_dim=self.spk_dim + self.emo_dim,
        )
        self.decoder = Decoder(
            GradLogPEstimator2d(
                cfg.dec_dim,
                tuple(cfg.dim_mults),
                spk_emb_dim=self.spk_dim,
                emo_emb_dim=self.emo_dim,
                n_feats=cfg.n_feats,
                pe_scale=cfg.pe_scale,
            )
        )

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

    def _encoder_condition(self, emo: Tensor | None, spk: Tensor | None) -> Tensor | None:
        parts = [v for v in (spk, emo) if v is not None]
        return torch.cat(parts, dim=-1) if parts else None

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
    ) -> dict[str, Tensor]:
        """Text → frame-level prior.

        ``tokens [B, L]`` long, ``token_lengths [B]``, ``emotion [B, emotion_dim]``,
        ``spk = speaker_vector(...) [B, spk_emb_dim]`` or None. Durations are
        ``ceil(exp(log w) · length_scale)``. Returns ``mu_y [B, n_feats, T]`` and
        ``y_mask [B, 1, T]`` with T padded to a multiple of 4, ``y_lengths [B]``,
        ``durations [B, L]`` (frames per token), ``mu_x [B, n_feats, L]``, ``x_mask [B, 1, L]``,
        ``logw [B, 1, L]``.
        """
        self._check_spk(spk)
        emo = self.emotion_vector(emotion)
        mu_x, logw, x_mask = self.encoder(tokens, token_lengths, self._encoder_condition(emo, spk))
        durations = torch.ceil(torch.exp(logw) * x_mask * length_scale)  # [B, 1, L]
        y_lengths = durations.sum(dim=(1, 2)).clamp_min(1).long()
        length = fix_len_compatibility(int(y_lengths.max()), self.decoder.estimator.n_downsamplings)
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

    def score(
        self,
        x: Tensor,
        mask: Tensor,
        mu: Tensor,
        t: Tensor | float,
        emotion: Tensor | None,
        spk: Tensor | None = None,
        unconditional: Tensor | None = None,
    ) -> Tensor:
        """s_θ(x, t, μ, s, e) ``[B, n_feats, T]``; ``x, mu [B, n_feats, T]``, ``mask [B, 1, T]``,
        ``t [B]`` (or a scalar), T a multiple of 4, ``spk = speaker_vector(...)`` or None.
        ``unconditional [B]`` bool: rows scored with the null emotion, s_∅ (guidance)."""
        self._check_spk(spk)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        emo = self.decoder_emotion(self.emotion_vector(emotion), unconditional)
        return self.decoder.estimator(x, mask, mu, t, spk, emo)

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
    ) -> dict[str, Tensor]:
        """Grad-TTS training losses for one batch.

        ``tokens [B, L]``, ``token_lengths [B]``, ``mel [B, n_feats, Ty]``, ``mel_lengths [B]``,
        ``emotion [B, emotion_dim]`` (the SER embedding of the target), ``spk``: the RAW speaker
        input of :meth:`speaker_vector` (ids or embeddings) or None. ``out_size`` (default
        ``cfg.out_size``; 0 = whole mel) is the decoder segment length S, rounded up to a
        multiple of 4 and capped at the padded batch length.

        Returns ``dur_loss``, ``prior_loss``, ``diff_loss`` (scalars), ``x0_hat [B, n_feats, S]``
        (Tweedie estimate of the segment, differentiable; weight a loss on it with
        ``sde.x0_weight(t)``), ``target [B, n_feats, S]`` (the mel segment), ``seg_mask [B, 1, S]``,
        ``t [B]``, ``durations [B, L]`` (from MAS).
        """
        if bool((token_lengths > mel_lengths).any()):
            bad = int(torch.nonzero(token_lengths > mel_lengths)[0, 0])
            raise EmomixError(
                f"batch item {bad} has more tokens ({int(token_lengths[bad])}) than mel "
                f"frames ({int(mel_lengths[bad])}); drop such utterances from training"
            )
        spk_vec = self.speaker_vector(spk)
        emo = self.emotion_vector(emotion)
        mu_x, logw, x_mask = self.encoder(
            tokens, token_lengths, self._encoder_condition(emo, spk_vec)
        )
        y_mask = sequence_mask(mel_lengths, mel.shape[-1]).unsqueeze(1).to(mel.dtype)

        path = self._align(mu_x, x_mask, mel, y_mask)  # [B, L, Ty]
        durations = path.sum(-1)
        logw_target = torch.log(1e-8 + durations).unsqueeze(1) * x_mask
        dur_loss = sde.duration_loss(logw, logw_target, token_lengths)
        mu_y = torch.matmul(mu_x, path)  # [B, n_feats, Ty]
        prior_loss = sde.prior_loss(mel, mu_y, y_mask)

        target, mu_seg, seg_mask = self._segment(mel, mu_y, mel_lengths, out_size, generator)
        t = torch.rand(
            mel.shape[0],
            generator=generator,
            dtype=mel.dtype,
            device=generator.device if generator is not None else mel.device,
        )
        t = t.to(mel.device).clamp(1e-5, 1.0 - 1e-5)
        beta_range = (self.cfg.beta_min, self.cfg.beta_max)
        xt, z = sde.forward_diffusion(target, seg_mask, mu_seg, t, generator, *beta_range)
        # condition dropout: the decoder alone learns s_∅; the encoder keeps the emotion, since
        # guidance shares μ and the durations between the conditional and the null rows
        dropped = None
        if self.training and self.cfg.cond_dropout > 0 and emo is not None:
            rng_device = generator.device if generator is not None else emo.device
            dropped = torch.rand(emo.shape[0], generator=generator, device=rng_device).to(emo.device)
            dropped = dropped < self.cfg.cond_dropout
        score = self.decoder.estimator(xt, seg_mask, mu_seg, t, spk_vec,
                                       self.decoder_emotion(emo, dropped))
        _, var = sde.marginal_mean_var(target, mu_seg, t, *beta_range)
        diff_loss = sde.diffusion_loss(score, z, var, seg_mask)
        x0_hat = sde.denoised_estimate(xt, score, mu_seg, t, *beta_range) * seg_mask
        return {
            "dur_loss": dur_loss,
            "prior_loss": prior_loss,
            "diff_loss": diff_loss,
            "x0_hat": x0_hat,
            "target": target,
            "seg_mask": seg_mask,
            "t": t,
            "durations": durations,
        }

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
        factor_steps = self.decoder.estimator.n_downsamplings
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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
