"""The EmoMix acoustic model (Grad-TTS + emotion and speaker conditions) and its checkpoint.

``load_tts(path)`` turns a ``tts`` checkpoint (written by ``train_tts`` or
``export_for_shipping``) into a :class:`TTSBundle`: the model in eval mode with the weights the
file holds (a run's ``tts.pt`` holds the EMA weights; an export may hold the raw ones, see
:func:`export_for_shipping`; fp16 weights are cast back to fp32), and everything inference
needs around it (audio config, symbol table, emotions, speakers, prototypes, the SER payload,
the sampler defaults measured for the model).
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

    def resolve_speaker(self, speaker: str | int | None = None) -> tuple[str | None, torch.Tensor | None]:
        """(name, input for ``model.speaker_vector``) of a training speaker given by name or
        index (None: the first): a ``[1]`` id (table), the ``[1, S_in]`` mean wav2vec2 vector, or
        (None, None) for a model without speakers. EmomixError names the known speakers."""
        if self.speaker_encoder == "none":
            return None, None
        if speaker is None:
            name = self.speakers[0]
        elif str(speaker) in self.speakers:
            name = str(speaker)
        elif str(speaker).isdigit() and int(speaker) < len(self.speakers):
            name = self.speakers[int(speaker)]
        else:
            raise EmomixError(f"unknown speaker '{speaker}'; this model knows: "
                              f"{', '.join(self.speakers)} (a name or its index)")
        if self.speaker_encoder == "wav2vec2":
            return name, self.speaker_vectors[name].float()[None]
        return name, torch.tensor([self.speakers.index(name)])


def load_tts(path: str | Path, device: str | torch.device = "cpu") -> TTSBundle:
    """Load a ``tts`` checkpoint; a missing, foreign or other-kind file raises EmomixError."""
    from ..audio import AudioConfig
    from ..config import from_dict
    from ..ser.prototypes import load_prototypes
    from ..text import SymbolTable
    from .model import EmoMixTTS, TTSConfig

    blob = load_checkpoint(path, "tts")
    try:
        config = from_dict(TTSConfig, blob["config"])
        model = EmoMixTTS(config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        model.load_state_dict(state, assign=True)  # the fp32 tensors themselves: no second copy
        if torch.device(device).type == "cpu" and model.family == "score2d":
            # oneDNN's 3x3 convs are faster in channels-last (docs/performance.md)
            model.decoder.estimator.use_channels_last(True)
        prototypes = load_prototypes(blob["prototypes"])
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
        ) from error
    for parameter in bundle.model.parameters():
        parameter.requires_grad_(False)
    return bundle


# the sampler settings a model may store (synthesis.SynthesisOptions fills them when left out)
SYNTHESIS_DEFAULT_KEYS = ("steps", "temperature", "solver", "k_max", "k_min", "guidance",
                          "encoder_condition", "guidance_reference", "guidance_interval")


def export_for_shipping(
    src_ckpt: str | Path,
    dst: str | Path,
    half: bool = True,
    raw_from: str | Path | None = None,
    synthesis_defaults: dict[str, Any] | None = None,
    ema_from: str | Path | None = None,
) -> Path:
    """Copy a ``tts`` checkpoint to ``dst`` with fp16 floating weights (the shipped demo model);
    the embedded SER stays fp32 (it is small and eval loads it as is). ``load_tts`` casts the
    weights back to fp32. ``raw_from``: a run's ``last.pt`` whose raw (non-EMA) weights replace
    the EMA ones — for short runs, where the EMA has not caught up with the model yet.
    ``ema_from``: a ``last.pt`` of the same run whose EMA weights replace the export's (a snapshot
    of a run still going, e.g. for a learning curve).
    ``synthesis_defaults``: sampler settings chosen by measuring this model (`emomix eval`)."""
    blob = load_checkpoint(src_ckpt, "tts")
    payload = {k: v for k, v in blob.items() if k not in ("format", "kind", "version")}
    payload.pop("train_config", None)  # holds local paths; not needed to synthesize
    if raw_from is not None and ema_from is not None:
        raise EmomixError("pass raw_from (the raw weights) or ema_from (the EMA weights), not both")
    for path, key in ((raw_from, "model"), (ema_from, "ema")):
        if path is None:
            continue
        state = load_checkpoint(path, "train-state")
        if state.get(key) is None or set(state[key]) != set(payload["state_dict"]):
            raise EmomixError(f"{path} holds no {key} weights of the model in {src_ckpt}; pass the same run's last.pt")
        payload["state_dict"] = state[key]
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





def unpack_conditioning(model_path: str | Path, ser_out: str | Path, prototypes_out: str | Path) -> None:
    """Write the SER and the prototypes embedded in a ``tts`` checkpoint as their own
    checkpoints, so training can continue from a shipped model (``--init-from``) with exactly
    the conditions it was trained with, without re-training the SER."""
    from ..ser.prototypes import load_prototypes

    blob = load_checkpoint(model_path, "tts")
    if not blob.get("ser"):
        raise EmomixError(f"{model_path} embeds no SER; train one with `emomix train ser`")
    save_checkpoint(ser_out, "ser", blob["ser"])
    prototypes = load_prototypes(blob["prototypes"])  # fp16 in a shipped file -> fp32
    save_checkpoint(prototypes_out, "prototypes", {
        "emotions": prototypes.emotions, "vectors": prototypes.vectors,
        "counts": prototypes.counts, "per_speaker": prototypes.per_speaker,
        "embed_dim": prototypes.embed_dim, "reference_only": prototypes.reference_only,
    })
__all__ = ["TTSBundle", "export_for_shipping", "load_tts", "unpack_conditioning"]
