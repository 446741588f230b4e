"""The EmoMix acoustic model (Grad-TTS + emotion and speaker conditions) and its checkpoint.

``load_tts(path)`` turns a ``tts`` checkpoint (written by ``train_tts`` or
``export_for_shipping``) into a :class:`TTSBundle`: the model in eval mode with its EMA
weights (fp16 weights of a shipped file are cast back to fp32), and everything inference
needs around it (audio config, symbol table, emotions, speakers, prototypes, the SER payload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import EmomixError


@dataclass
class TTSBundle:
    model: Any  # EmoMixTTS, eval mode
    config: Any  # TTSConfig
    audio: Any  # AudioConfig
    symbols: Any  # SymbolTable
    emotions: list[str]
    speakers: list[str]
    prototypes: Any  # ser.prototypes.Prototypes
    speaker_encoder: str  # table | wav2vec2 | none
    ser_payload: dict | None = None  # SER checkpoint payload embedded at training time
    wav2vec2: dict | None = None  # {"path", "layer"} when speaker_encoder == "wav2vec2"
    speaker_vectors: dict[str, torch.Tensor] = field(default_factory=dict)  # wav2vec2: per speaker
    # sampler settings measured best for this model (steps, temperature, solver, k_max, k_min);
    # `emomix mix`/`eval` use them for options the user leaves out
    synthesis_defaults: dict[str, Any] = field(default_factory=dict)

    def speaker_input(self, speaker: str | None) -> torch.Tensor | None:
        """What ``model.speaker_vector`` takes for one training speaker: ``[1]`` id (table),
        ``[1, S_in]`` mean wav2vec2 vector, or None; EmomixError for an unknown name."""
        if self.speaker_encoder == "none":
            return None
        name = self.speakers[0] if speaker is None else speaker
        if name not in self.speakers:
            raise EmomixError(f"unknown speaker '{name}'; this model knows: {', '.join(self.speakers)}")
        if self.speaker_encoder == "wav2vec2":
            return self.speaker_vectors[name].float()[None]
        return torch.tensor([self.speakers.index(name)])


def load_tts(path: str | Path, device: str | torch.device = "cpu") -> TTSBundle:
    """Load a ``tts`` checkpoint; a missing, foreign or other-kind file raises EmomixError."""
    from ..audio import AudioConfig
    from ..config import from_dict
    from ..ser.prototypes import Prototypes
    from ..text import SymbolTable
    from .model import EmoMixTTS, TTSConfig

    blob = load_checkpoint(path, "tts")
    try:
        config = from_dict(TTSConfig, blob["config"])
        model = EmoMixTTS(config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        model.load_state_dict(state)
        if torch.device(device).type == "cpu":  # oneDNN's 3x3 convs: 1.27x faster per score call
            model.decoder.estimator.use_channels_last(True)
        protos = blob["prototypes"]
        prototypes = Prototypes(
            emotions=list(protos["emotions"]),
            vectors=protos["vectors"].float(),
            counts=list(protos["counts"]),
            per_speaker={k: v.float() for k, v in protos.get("per_speaker", {}).items()},
        )
        bundle = TTSBundle(
            model=model.to(device).eval(),
            config=config,
            audio=from_dict(AudioConfig, blob["audio"]),
            symbols=SymbolTable.from_dict(blob["symbols"]),
            emotions=list(blob["emotions"]),
            speakers=list(blob["speakers"]),
            prototypes=prototypes,
            speaker_encoder=blob["speaker_encoder"],
            ser_payload=blob.get("ser"),
            wav2vec2=blob.get("wav2vec2"),
            speaker_vectors={k: v.float() for k, v in blob.get("speaker_vectors", {}).items()},
            synthesis_defaults=dict(blob.get("synthesis_defaults", {})),
        )
    except (KeyError, RuntimeError, TypeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EmomixError(
            f"{path} is a damaged or incompatible tts checkpoint ({first}); retrain or re-export it"
        ) from None
    for parameter in bundle.model.parameters():
        parameter.requires_grad_(False)
    return bundle


SYNTHESIS_DEFAULT_KEYS = ("steps", "temperature", "solver", "k_max", "k_min")


def export_for_shipping(
    src_ckpt: str | Path,
    dst: str | Path,
    half: bool = True,
    raw_from: str | Path | None = None,
    synthesis_defaults: dict[str, Any] | None = None,
) -> Path:
    """Copy a ``tts`` checkpoint to ``dst`` with fp16 floating weights (the shipped demo model);
    the embedded SER stays fp32 (it is small and eval loads it as is). ``load_tts`` casts the
    weights back to fp32. ``raw_from``: a run's ``last.pt`` whose raw (non-EMA) weights replace
    the EMA ones — for short runs, where the EMA has not caught up with the model yet.
    ``synthesis_defaults``: sampler settings chosen by measuring this model (`emomix eval`)."""
    blob = load_checkpoint(src_ckpt, "tts")
    payload = {k: v for k, v in blob.items() if k not in ("format", "kind", "version")}
    payload.pop("train_config", None)  # holds local paths; not needed to synthesize
    if raw_from is not None:
        state = load_checkpoint(raw_from, "train-state")
        if set(state["model"]) != set(payload["state_dict"]):
            raise EmomixError(f"{raw_from} holds another model than {src_ckpt}; pass the same run's last.pt")
        payload["state_dict"] = state["model"]
    if synthesis_defaults:
        unknown = sorted(set(synthesis_defaults) - set(SYNTHESIS_DEFAULT_KEYS))
        if unknown:
            raise EmomixError(f"unknown synthesis default '{unknown[0]}'; use {', '.join(SYNTHESIS_DEFAULT_KEYS)}")
        payload["synthesis_defaults"] = dict(synthesis_defaults)

    def cast(value):
        if torch.is_tensor(value) and value.is_floating_point() and half:
            return value.half()
        if isinstance(value, dict):
            return {k: cast(v) for k, v in value.items()}
        return value

    payload["state_dict"] = cast(payload["state_dict"])
    return save_checkpoint(dst, "tts", payload)


__all__ = ["TTSBundle", "export_for_shipping", "load_tts"]
