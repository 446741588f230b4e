"""Speaker conditions for the TTS model: a learned table, a pretrained wav2vec 2.0, or none.

- ``table``: one learned vector per speaker id; it lives inside the model (Grad-TTS style), so
  this module only validates the name.
- ``wav2vec2``: a transformers ``Wav2Vec2Model`` loaded from a LOCAL folder (never the hub),
  from its safetensors weights; a folder with only pickled weights (``pytorch_model.bin``, which
  can run code when unpickled) is refused unless the caller opts in (``allow_pickle``; config
  ``wav2vec2_allow_pickle``). The utterance is resampled to 16 kHz, normalised like ``Wav2Vec2FeatureExtractor`` does, and
  the hidden state of one layer is mean-pooled over time into a vector ``[hidden_size]``. The
  vectors of a feature store are computed once and cached under
  ``store/cache/speaker_<hash>/<id>.npy`` (the hash covers the model folder's weights and the
  layer), so training never runs the encoder; ``embed_wav`` serves ``--speaker-wav``.
- ``none``: no speaker condition.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from math import gcd
from pathlib import Path

import numpy as np
import torch

from ..audio import AudioConfig, load_wav
from ..config import atomic_write_bytes
from ..errors import EmomixError
from ..progress import progress_bar

SPEAKER_ENCODERS = ("table", "wav2vec2", "none")
WAV2VEC2_SAMPLE_RATE = 16000
_MIN_SAMPLES = 400  # the default wav2vec 2.0 conv stack needs 400 samples for one frame


def check_speaker_encoder(name: str) -> str:
    """Return ``name`` if it is a known speaker condition, else raise EmomixError."""
    if name not in SPEAKER_ENCODERS:
        raise EmomixError(
            f"unknown speaker_encoder '{name}'; use one of: {', '.join(SPEAKER_ENCODERS)}"
        )
    return name


def _load_wav2vec2(folder: Path, allow_pickle: bool):
    """``Wav2Vec2Model`` from ``folder``: safetensors weights, or pickled ones when allowed."""
    from transformers import Wav2Vec2Model

    safe = any(folder.glob("*.safetensors"))
    if not safe and any(folder.glob("*.bin")) and not allow_pickle:
        raise EmomixError(
            f"{folder} holds only pickled weights (*.bin), which can run code when loaded; "
            "re-save them as safetensors (Wav2Vec2Model.from_pretrained(folder).save_pretrained("
            "folder)) or, for a folder you trust, set wav2vec2_allow_pickle: true"
        )
    try:
        return Wav2Vec2Model.from_pretrained(str(folder), local_files_only=True, use_safetensors=safe)
    except Exception as error:  # transformers raises OSError/ValueError for bad folders
        raise EmomixError(
            f"cannot load a Wav2Vec2Model from {folder}: {str(error).splitlines()[0]} "
            "(the folder needs config.json and model weights)"
        ) from error


def _weights_fingerprint(folder: Path) -> str:
    """A cheap, content-sensitive id of a model folder: names, sizes and mtimes of its files."""
    digest = hashlib.sha1()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


class Wav2Vec2SpeakerEncoder:
    """Mean-pooled hidden state of a local wav2vec 2.0 model: wav -> vector ``[dim]``.

    ``layer`` indexes ``hidden_states`` as transformers returns them: 0 is the projected CNN
    output, ``i`` the i-th transformer layer, negative values count from the last.
    """

    def __init__(self, path: str | Path, layer: int = -1, device: str | torch.device = "cpu",
                 allow_pickle: bool = False):
        folder = Path(path).expanduser()
        if not str(path) or not folder.is_dir():
            raise EmomixError(
                f"wav2vec2 model folder not found: '{path}'; set wav2vec2_path to a local folder "
                "holding config.json and the weights (saved with save_pretrained)"
            )
        model = _load_wav2vec2(folder, allow_pickle)
        n_states = model.config.num_hidden_layers + 1
        if not -n_states <= layer < n_states:
            raise EmomixError(
                f"wav2vec2_layer {layer} is out of range; this model has hidden states "
                f"0..{n_states - 1} (or -{n_states}..-1)"
            )
        self.path = folder
        self.layer = layer
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.dim = int(model.config.hidden_size)
        self.fingerprint = hashlib.sha1(
            f"{_weights_fingerprint(folder)}|layer={layer}".encode()
        ).hexdigest()[:16]

    @torch.no_grad()
    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Speaker vector float32 ``[dim]`` of mono ``audio`` at ``sample_rate``."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate != WAV2VEC2_SAMPLE_RATE:
            from scipy.signal import resample_poly

            g = gcd(int(sample_rate), WAV2VEC2_SAMPLE_RATE)
            audio = resample_poly(audio, WAV2VEC2_SAMPLE_RATE // g, int(sample_rate) // g)
        if audio.size < _MIN_SAMPLES:
            audio = np.pad(audio, (0, _MIN_SAMPLES - audio.size))
        # Wav2Vec2FeatureExtractor's zero-mean/unit-variance step (do_normalize=True).
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)
        out = self.model(wav, output_hidden_states=True)
        hidden = out.hidden_states[self.layer]  # [1, frames, dim]
        return hidden.mean(dim=1)[0].float().cpu().numpy()

    def embed_wav(self, path: str | Path) -> np.ndarray:
        """Speaker vector ``[dim]`` of a wav file (``--speaker-wav`` at inference)."""
        import soundfile as sf

        try:
            sample_rate = sf.info(str(path)).samplerate
        except Exception:
            sample_rate = WAV2VEC2_SAMPLE_RATE  # load_wav below names the broken file
        audio = load_wav(path, AudioConfig(sample_rate=sample_rate))
        return self.embed_audio(audio, sample_rate)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    atomic_write_bytes(path, buffer.getvalue())


def cache_dir(store_root: str | Path, encoder: Wav2Vec2SpeakerEncoder) -> Path:
    """``store/cache/speaker_<hash>/``: one folder per (model weights, layer)."""
    return Path(store_root) / "cache" / f"speaker_{encoder.fingerprint}"


def store_speaker_embeddings(
    store, encoder: Wav2Vec2SpeakerEncoder, items: Iterable[dict] | None = None, progress: bool = True
) -> dict[str, np.ndarray]:
    """Speaker vectors ``{id: [dim]}`` for ``items`` of a FeatureStore, computed once and cached.

    Utterances whose ``<id>.npy`` already exists are read back, not recomputed, so a crash
    loses nothing and a second training run starts at once. The source wav named in the
    manifest must still exist for utterances not yet cached.
    """
    items = list(store.items() if items is None else items)
    folder = cache_dir(store.root, encoder)
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, np.ndarray] = {}
    missing = [item for item in items if not (folder / f"{item['id']}.npy").is_file()]
    with progress_bar("speaker embeddings", len(missing), enabled=progress and bool(missing)) as bar:
        for item in missing:
            wav = _resolve_wav(store.root, item)
            _save_npy(folder / f"{item['id']}.npy", encoder.embed_wav(wav))
            bar.advance()
    for item in items:
        result[item["id"]] = np.load(folder / f"{item['id']}.npy")
    return result


def _resolve_wav(store_root: Path, item: dict) -> Path:
    wav = Path(item["wav"])
    if not wav.is_absolute():
        wav = Path(store_root) / wav
    if not wav.is_file():
        raise EmomixError(
            f"wav for utterance '{item['id']}' not found: {wav}; the wav2vec2 speaker encoder "
            "reads the source audio, so keep the corpus where `emomix prep` found it "
            "(or use speaker_encoder: table)"
        )
    return wav
