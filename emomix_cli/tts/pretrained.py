"""Official pretrained weights into an EmoMix model (``emomix train tts --init-from``).

Two sources (docs/DESIGN.md §1.7):

- **Grad-TTS** ``grad-tts.pt``: a plain ``state_dict`` (maybe under ``state_dict``/``model``,
  names maybe prefixed ``module.``). Every tensor whose name and shape match is copied; the
  rest of the model keeps its fresh initialisation.
- **Matcha-TTS** Lightning ``.ckpt`` (``state_dict`` with ``encoder.*``, ``decoder.*``, the
  ``mel_mean``/``mel_std`` buffers and ``spk_emb`` for multi-speaker models), into the
  ``matcha`` preset. It must load *whole*: every official tensor finds its place (a speaker
  table of another size excepted: training on other speakers starts that table fresh), and the mel
  statistics, the mel itself and the 178-symbol vocabulary must be Matcha's, else one
  :class:`EmomixError` line names the mismatch. The emotion paths are new and zero-initialised,
  so the loaded model computes what the official one does until training moves them.

Files are read with ``torch.load(weights_only=True)``. A Lightning checkpoint also pickles its
training configuration (OmegaConf and Lightning objects), which weights_only refuses; then it
is read with a restricted unpickler that resolves only the globals weights_only allows and
turns every other class into an inert placeholder, so no code of the file is ever imported or
called, and only the tensors are used.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import EmomixError

MATCHA_MEL = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "win_length": 1024,
              "n_mels": 80, "fmin": 0.0, "fmax": 8000.0}
MATCHA_BUFFERS = ("mel_mean", "mel_std")
MATCHA_VOCABULARY = 178


@dataclass
class InitReport:
    loaded: list[str]  # copied from the file (name and shape match)
    new: list[str]  # in the model, absent from the file (keep their fresh init)
    skipped: list[str]  # in both, but the shapes differ (kept fresh)
    unused: list[str]  # in the file only
    source: str = "grad-tts"  # grad-tts | matcha
    checked: dict = field(default_factory=dict)  # what was compared (matcha: statistics, sizes)


class _Inert(dict):
    """What a class outside the allowlist unpickles to: it takes any arguments, items and state
    and does nothing with them."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = _get_allowed_globals()
        return allowed.get(f"{module}.{name}", _Inert)


class _RestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is :class:`_RestrictedUnpickler`."""

    Unpickler = _RestrictedUnpickler
    load = staticmethod(pickle.load)


def read_checkpoint(path: str | Path) -> dict:
    """The object in ``path`` via ``torch.load(weights_only=True)``, else (a Lightning
    checkpoint's configuration objects) via the restricted unpickler of the module doc."""
    path = Path(path)
    if not path.is_file():
        raise EmomixError(f"--init-from file not found: {path} (pass an official grad-tts.pt "
                          "or Matcha-TTS .ckpt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as error:  # torch raises many types for a foreign or truncated file
        raise EmomixError(f"{path} is not a readable torch checkpoint; pass an official "
                          "grad-tts.pt or Matcha-TTS .ckpt") from error
    try:
        return torch.load(path, map_location="cpu", weights_only=False,
                          pickle_module=_RestrictedPickle)
    except Exception as error:
        raise EmomixError(f"{path} cannot be read as a checkpoint of tensors ({type(error).__name__}); "
                          "pass an official grad-tts.pt or Matcha-TTS .ckpt") from error


def state_dict_of(blob) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint object, ``module.`` prefixes removed."""
    for key in ("state_dict", "model"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
    if not isinstance(blob, dict) or not any(torch.is_tensor(v) for v in blob.values()):
        raise EmomixError("the file holds no state_dict of tensors; pass an official "
                          "grad-tts.pt or Matcha-TTS .ckpt")
    return {k.removeprefix("module."): v for k, v in blob.items() if torch.is_tensor(v)}


def is_matcha(state: dict[str, torch.Tensor]) -> bool:
    return "decoder.estimator.time_mlp.linear_1.weight" in state


def check_matcha(state: dict[str, torch.Tensor], cfg, symbols=None, audio=None) -> dict:
    """EmomixError naming the first way a Matcha-TTS state_dict does not fit ``cfg`` (a
    TTSConfig), the feature store's ``symbols`` and ``audio``; returns what was compared."""
    from ..text import matcha_symbol_table

    missing = [name for name in MATCHA_BUFFERS if name not in state]
    if missing:
        raise EmomixError(f"the Matcha-TTS checkpoint has no {missing[0]}; is it an official one?")
    mean, std = float(state["mel_mean"]), float(state["mel_std"])
    if abs(mean - cfg.mel_mean) > 1e-4 or abs(std - cfg.mel_std) > 1e-4:
        raise EmomixError(
            f"another mel config: the checkpoint normalises with mel_mean {mean:g}, mel_std "
            f"{std:g}, the model with {cfg.mel_mean:g}, {cfg.mel_std:g}; set model.mel_mean={mean:g} "
            f"model.mel_std={std:g} (its mel must be emomix's: 22050 Hz, hop 256, 80 bins, 0-8 kHz)")
    vocabulary = int(state["encoder.emb.weight"].shape[0])
    if vocabulary != MATCHA_VOCABULARY:
        raise EmomixError(f"another vocabulary: the checkpoint embeds {vocabulary} symbols, "
                          f"Matcha-TTS's has {MATCHA_VOCABULARY}; this loader takes official "
                          "Matcha-TTS checkpoints only")
    if symbols is not None and symbols != matcha_symbol_table():
        raise EmomixError("the feature store's vocabulary is not Matcha-TTS's; prepare it with "
                          "`emomix prep --symbols matcha` to fine-tune a Matcha-TTS checkpoint")
    if audio is not None:
        for key, value in MATCHA_MEL.items():
            if float(getattr(audio, key)) != float(value):
                raise EmomixError(f"another mel config: the feature store has {key} "
                                  f"{getattr(audio, key)}, Matcha-TTS's mel has {value}; "
                                  "prepare the store with the default audio config")
    n_feats = int(state["encoder.proj_m.weight"].shape[0])
    if n_feats != cfg.n_feats:
        raise EmomixError(f"another mel config: the checkpoint has {n_feats} mel bins, the "
                          f"model {cfg.n_feats}")
    return {"mel_mean": mean, "mel_std": std, "vocabulary": vocabulary, "n_feats": n_feats}


def load_init_weights(model: nn.Module, path: str | Path, symbols=None, audio=None) -> InitReport:
    """Copy an official checkpoint's tensors into ``model`` (see the module doc); a Matcha-TTS
    checkpoint must load whole into a ``flow1d`` model with rotary attention."""
    state = state_dict_of(read_checkpoint(path))
    target = model.state_dict()
    checked, source = {}, "grad-tts"
    if is_matcha(state):
        source = "matcha"
        cfg = model.cfg
        if cfg.decoder != "flow1d" or cfg.enc_position != "rotary":
            raise EmomixError(f"{path} is a Matcha-TTS checkpoint; train with preset: matcha "
                              "(a flow1d decoder and a rotary encoder) to load it")
        checked = check_matcha(state, cfg, symbols, audio)
        state = {k: v for k, v in state.items() if k not in MATCHA_BUFFERS}
    loaded = [k for k in target if k in state and state[k].shape == target[k].shape]
    skipped = [k for k in target if k in state and state[k].shape != target[k].shape]
    new = [k for k in target if k not in state]
    unused = [k for k in state if k not in target]
    # a checkpoint of other speakers still loads whole but for its speaker table, which then
    # starts fresh (reported in init_from.json and printed): fine-tuning on a new corpus
    speakers_only = skipped == ["spk_emb.weight"] and not unused
    if source == "matcha" and (skipped or unused) and not speakers_only:
        name = (skipped or unused)[0]
        why = (f"has shape {tuple(state[name].shape)} there and {tuple(target[name].shape)} here"
               if name in skipped else "has no place in this model")
        hint = ("; a single-speaker checkpoint needs speaker_encoder: none, a multi-speaker one "
                "speaker_encoder: table with its speaker count" if "spk" in name or "estimator" in
                name or "encoder.encoder" in name else "")
        raise EmomixError(f"{path} does not load whole: {name} {why}{hint}")
    if not loaded:
        raise EmomixError(f"{path}: no tensor name/shape matches this model; is it a Grad-TTS "
                          "state_dict of a compatible size (use preset: paper)?")
    with torch.no_grad():
        for key in loaded:
            target[key].copy_(state[key].to(target[key].dtype))
    return InitReport(loaded, new, skipped, unused, source, checked)
