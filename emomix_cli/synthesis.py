"""Text -> mixed-emotion speech: the one function that ``mix``, ``eval`` and notebooks call.

``synthesize`` runs: text -> sentences -> phoneme ids -> encoder (conditioned on the
γ-weighted prototype, DESIGN §1) -> sampler over a :class:`~.tts.mixing.MixedScore`
(Eq. 8, one batched forward per step) -> vocoder -> wav. Long text is split at sentence
boundaries; each sentence is synthesized on its own and joined with a short pause.
The seed fixes all randomness (one ``torch.Generator``), so the same call gives the same audio.

Defaults (module constants, tuned by measurement in ``benchmarks/bench_synthesis.py``):
``DEFAULT_STEPS = 25`` Euler steps, ``DEFAULT_K_MAX = 1.0`` and ``DEFAULT_K_MIN = 0.0`` (the
plain combination at every step), temperature 1.5 as Grad-TTS.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import EmomixError
from .text import text_to_ids
from .tts.mixing import MixedScore, condition_for_encoder, normalise_weights
from .tts.sampling import SOLVERS

DEFAULT_STEPS = 25
DEFAULT_K_MAX = 1.0
DEFAULT_K_MIN = 0.0
DEFAULT_TEMPERATURE = 1.5
DEFAULT_SOLVER = "euler"
SENTENCE_PAUSE_S = 0.25
SILENCE_LOG_MEL = float(np.log(1e-5))  # the log-mel floor (audio.mel_spectrogram clamps at 1e-5)
ENCODER_CONDITIONS = ("weighted", "base")


@dataclass
class SynthesisResult:
    wav: np.ndarray  # float32 [N], N = mel frames · hop
    mel: np.ndarray  # float32 [n_mels, T] (sentences joined by silent frames)
    sample_rate: int
    weights_used: dict[str, float]  # normalised, base first
    duration_s: float
    rtf: float  # wall time / audio duration (all stages)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage + "total"
    speaker: str | None = None
    sentences: list[str] = field(default_factory=list)
    sampler: dict = field(default_factory=dict)  # steps/temperature/solver/k_max/k_min used


# ---------------------------------------------------------------- text
_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+(?=[\"'(\[]?[A-Z0-9\u00C0-\u024F])|(?<=[。！？；])\s*")


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends (``. ! ? ;`` then a capital/digit; CJK ``。！？；``); drop empties."""
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part and part.strip()]


# ---------------------------------------------------------------- conditions
def resolve_speaker(bundle, speaker: str | int | None = None,
                    speaker_wav: str | Path | None = None) -> tuple[str | None, torch.Tensor | None]:
    """(speaker name or None, input for ``model.speaker_vector``) from an id/name or a wav."""
    if speaker_wav is not None:
        if speaker is not None:
            raise EmomixError("give either --speaker or --speaker-wav, not both")
        if bundle.speaker_encoder != "wav2vec2" or not bundle.wav2vec2:
            raise EmomixError(
                f"--speaker-wav needs a model trained with speaker_encoder=wav2vec2, this one uses "
                f"'{bundle.speaker_encoder}'; pass --speaker with one of: {', '.join(bundle.speakers)}"
            )
        from .tts.speaker import Wav2Vec2SpeakerEncoder

        encoder = Wav2Vec2SpeakerEncoder(bundle.wav2vec2["path"], bundle.wav2vec2.get("layer", -1))
        vector = torch.as_tensor(np.asarray(encoder.embed_wav(speaker_wav)), dtype=torch.float32)
        return None, vector[None]
    if bundle.speaker_encoder == "none":
        return None, None
    if speaker is None:
        name = bundle.speakers[0] if bundle.speakers else None
    elif str(speaker) in bundle.speakers:
        name = str(speaker)
    elif str(speaker).isdigit() and int(speaker) < len(bundle.speakers):
        name = bundle.speakers[int(speaker)]
    else:
        raise EmomixError(f"unknown speaker '{speaker}'; this model knows: {', '.join(bundle.speakers)}"
                          " (a name or its index)")
    return name, bundle.speaker_input(name)


def emotion_prototypes(bundle, names, speaker: str | None) -> dict[str, torch.Tensor]:
    """Prototype [D] per emotion: the speaker's own when the bundle has per-speaker ones."""
    prototypes = bundle.prototypes
    missing = [name for name in names if name not in prototypes.emotions]
    if missing:
        raise EmomixError(f"the model has no prototype for {', '.join(missing)}; "
                          f"use one of: {', '.join(prototypes.emotions)}")
    return {name: prototypes.vector(name, speaker).float() for name in names}


def fill_padding(mu: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One utterance's prior ``mu [1, n_feats, T]`` with its ``T − frames`` (< 4) padding frames
    filled by its last frame, and an all-ones mask.

    The decoder then sees no padding and takes its dense path (no mask products, native
    GroupNorm, ~1.2× faster on CPU), as if the final token (silence) lasted up to 3 frames
    longer; the caller crops the sampled mel back to ``frames``.
    """
    if mu.shape[0] != 1:
        raise ValueError(f"fill_padding takes one utterance, got a batch of {mu.shape[0]}")
    filled = mu.clone()
    filled[..., frames:] = mu[..., frames - 1 : frames]
    return filled, torch.ones_like(mu[:, :1])


def _check_options(solver: str, encoder_condition: str, length_scale: float, temperature: float):
    if solver not in SOLVERS:
        raise EmomixError(f"unknown solver '{solver}'; choose one of: {', '.join(SOLVERS)}")
    if encoder_condition not in ENCODER_CONDITIONS:
        raise EmomixError(f"unknown encoder condition '{encoder_condition}'; use weighted or base")
    if not length_scale > 0:
        raise EmomixError(f"length scale must be > 0, got {length_scale}; 1.0 is normal speed")
    if not temperature > 0:
        raise EmomixError(f"temperature must be > 0, got {temperature}; Grad-TTS uses 1.5")


def _get_vocoder(vocoder, bundle) -> Callable[[torch.Tensor], torch.Tensor]:
    if vocoder is None or isinstance(vocoder, str):
        from .vocoder import load_vocoder

        return load_vocoder(vocoder or "griffinlim", audio=bundle.audio)
    return vocoder


# ---------------------------------------------------------------- synthesis
def synthesize(
    bundle,
    text: str,
    weights: Mapping[str, float],
    speaker: str | int | None = None,
    speaker_wav: str | Path | None = None,
    steps: int | None = None,
    temperature: float | None = None,
    k_max: float | None = None,
    k_min: float | None = None,
    seed: int = 0,
    solver: str | None = None,
    length_scale: float = 1.0,
    encoder_condition: str = "weighted",
    vocoder=None,
    language: str | None = None,
    sequential: bool = False,
) -> SynthesisResult:
    """Speak ``text`` with the emotion mix ``weights`` (e.g. ``{"angry": 0.6, "happy": 0.4}``).

    ``weights`` summing below 1 get the rest on Neutral (intensity). ``vocoder``: a callable
    ``mel[B,80,T] -> wav[B,T·hop]``, a name for :func:`~.vocoder.load_vocoder`, or None for
    Griffin-Lim. ``sequential`` evaluates the emotion conditions one by one (benchmark only).
    Sampler options left as None take the model's measured defaults (see
    :func:`resolve_sampler_options`), as ``emomix mix`` does. User errors raise
    :class:`EmomixError`.
    """
    start = time.perf_counter()
    sampler = resolve_sampler_options(bundle, steps=steps, temperature=temperature,
                                      solver=solver, k_max=k_max, k_min=k_min)
    steps, temperature, solver = sampler["steps"], sampler["temperature"], sampler["solver"]
    k_max, k_min = sampler["k_max"], sampler["k_min"]
    weights_used = normalise_weights(weights, bundle.emotions)
    _check_options(solver, encoder_condition, length_scale, temperature)
    sentences = split_sentences(text or "")
    if not sentences:
        raise EmomixError("text is empty; give a sentence with words to speak")
    model = bundle.model
    name, speaker_input = resolve_speaker(bundle, speaker, speaker_wav)
    prototypes = emotion_prototypes(bundle, weights_used, name)
    vocode = _get_vocoder(vocoder, bundle)
    generator = torch.Generator().manual_seed(int(seed))
    timings = {"text": 0.0, "encoder": 0.0, "decoder": 0.0, "vocoder": 0.0}
    pause = round(SENTENCE_PAUSE_S * bundle.audio.sample_rate / bundle.audio.hop_length)  # frames
    mels, wavs = [], []
    with torch.inference_mode():
        device = next(model.parameters()).device
        prototypes = {k: v.to(device) for k, v in prototypes.items()}
        spk = model.speaker_vector(None if speaker_input is None else speaker_input.to(device))
        emotion = condition_for_encoder(prototypes, weights_used, encoder_condition)[None]
        for index, sentence in enumerate(sentences):
            tick = time.perf_counter()
            ids = text_to_ids(sentence, bundle.symbols, language or getattr(bundle, "language", "en"))
            tokens = torch.tensor([ids], dtype=torch.long, device=device)
            tock = time.perf_counter()
            timings["text"] += tock - tick
            encoded = model.encode(tokens, torch.tensor([len(ids)], device=device), emotion, spk,
                                   length_scale=length_scale)
            frames = int(encoded["y_lengths"][0])
            mu, mask = fill_padding(encoded["mu_y"], frames)
            tick = time.perf_counter()
            timings["encoder"] += tick - tock
            conditions = {n: (vec, None if spk is None else spk[0]) for n, vec in prototypes.items()}
            score = MixedScore(model, mu, mask, conditions, weights_used, k_max, k_min, sequential)
            mel = SOLVERS[solver](score, mu, mask, int(steps), temperature, generator)
            mel = mel[:, :, :frames]
            tock = time.perf_counter()
            timings["decoder"] += tock - tick
            wav = vocode(mel.float().cpu())[0].cpu().numpy().astype(np.float32)
            timings["vocoder"] += time.perf_counter() - tock
            if index:
                mels.append(np.full((mel.shape[1], pause), SILENCE_LOG_MEL, np.float32))
                wavs.append(np.zeros(pause * bundle.audio.hop_length, np.float32))
            mels.append(mel[0].float().cpu().numpy())
            wavs.append(wav)
    wav = np.concatenate(wavs)
    sample_rate = int(getattr(vocode, "sample_rate", bundle.audio.sample_rate))
    duration = len(wav) / sample_rate
    timings["total"] = time.perf_counter() - start
    return SynthesisResult(
        wav=wav, mel=np.concatenate(mels, axis=1), sample_rate=sample_rate,
        weights_used=weights_used, duration_s=duration, rtf=timings["total"] / max(duration, 1e-9),
        timings=timings, speaker=name, sentences=sentences, sampler=sampler,
    )


# ---------------------------------------------------------------- batch files
def parse_batch_line(line: str) -> tuple[dict[str, float], str] | None:
    """``"angry=0.6,happy=0.4|text"`` -> (weights, text); None for blank lines and ``#`` comments.

    A bare name (``"sad|text"``) means weight 1. Raises EmomixError (no line number) when malformed.
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if "|" not in line:
        raise EmomixError("expected 'emotion=weight,...|text' (e.g. angry=0.6,happy=0.4|Hello.)")
    spec, text = (part.strip() for part in line.split("|", 1))
    if not text:
        raise EmomixError("no text after '|'; write the sentence to speak after the weights")
    weights: dict[str, float] = {}
    for item in filter(None, (piece.strip() for piece in spec.split(","))):
        name, _, value = (part.strip() for part in item.partition("="))
        if not name or (_ and not value):
            raise EmomixError(f"bad weight '{item}'; write emotion=weight, e.g. angry=0.6")
        try:
            weights[name.lower()] = float(value) if _ else 1.0
        except ValueError:
            raise EmomixError(f"weight of '{name}' is not a number: '{value}'; e.g. angry=0.6") from None
    if not weights:
        raise EmomixError("no emotion weights before '|'; e.g. angry=0.6,happy=0.4|Hello.")
    return weights, text


def synthesize_batch_file(bundle, path: str | Path, out_dir: str | Path, **options) -> list[Path]:
    """Synthesize every line of a batch file to ``out_dir/<NNN>.wav`` (NNN = 001, 002, ...).

    All lines are parsed and their weights checked before any audio is made; an error names
    the file and line. ``options`` go to :func:`synthesize`.
    """
    from .audio import save_wav

    path = Path(path)
    if not path.is_file():
        raise EmomixError(f"batch file not found: {path}; one 'angry=0.6,happy=0.4|text' per line")
    jobs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            parsed = parse_batch_line(line)
            if parsed is not None:
                normalise_weights(parsed[0], bundle.emotions)
                jobs.append((number, *parsed))
        except EmomixError as error:
            raise EmomixError(f"{path}, line {number}: {error}") from None
    if not jobs:
        raise EmomixError(f"batch file {path} has no lines to speak; write 'angry=0.6|text' lines")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (number, weights, text) in enumerate(jobs, start=1):
        try:
            result = synthesize(bundle, text, weights, **options)
        except EmomixError as error:
            raise EmomixError(f"{path}, line {number}: {error}") from None
        target = out_dir / f"{index:03d}.wav"
        save_wav(target, result.wav, result.sample_rate)
        written.append(target)
    return written


def save_mel_png(mel: np.ndarray | torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Plot a log-mel [n_mels, T] to a PNG (matplotlib Agg), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .config import atomic_write_bytes

    mel = mel.detach().cpu().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel)
    figure, axis = plt.subplots(figsize=(max(4.0, mel.shape[-1] / 60), 3.0))
    image = axis.imshow(mel, origin="lower", aspect="auto", interpolation="none")
    axis.set(title=title, xlabel="frame", ylabel="mel bin")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


# ---------------------------------------------------------------- the `emomix mix` job
def resolve_sampler_options(bundle, **given) -> dict:
    """steps/temperature/solver/k_max/k_min: what the user gave, else the model's measured
    defaults (``bundle.synthesis_defaults``), else the module defaults."""
    fallback = {"steps": DEFAULT_STEPS, "temperature": DEFAULT_TEMPERATURE, "solver": DEFAULT_SOLVER,
                "k_max": DEFAULT_K_MAX, "k_min": DEFAULT_K_MIN}
    model_defaults = getattr(bundle, "synthesis_defaults", None) or {}
    return {
        key: given.get(key) if given.get(key) is not None else model_defaults.get(key, value)
        for key, value in fallback.items()
    }


def run_mix(
    text: str | None,
    weights: Mapping[str, float],
    output: str | Path,
    model: str | Path,
    speaker: str | None = None,
    speaker_wav: str | Path | None = None,
    steps: int | None = None,
    temperature: float | None = None,
    k_max: float | None = None,
    k_min: float | None = None,
    seed: int = 0,
    solver: str | None = None,
    length_scale: float = 1.0,
    encoder_condition: str = "weighted",
    vocoder: str = "griffinlim",
    vocoder_checkpoint: str | Path | None = None,
    vocoder_config: str | Path | None = None,
    mel_png: str | Path | None = None,
    batch: str | Path | None = None,
    device: str = "cpu",
    gl_iters: int | None = None,
    console=None,
) -> SynthesisResult | list[Path]:
    """Load the model and vocoder, synthesize, write the wav (atomically) and report.

    Everything is validated before any audio is written, so a failure leaves no half file.
    With ``batch`` the lines of that file go to ``output/NNN.wav``.
    """
    from .audio import save_wav
    from .tts import load_tts
    from .vocoder import canonical_name, load_vocoder

    output = Path(output)
    if batch is None and output.suffix.lower() != ".wav":
        raise EmomixError(f"output {output} must end in .wav (or pass --batch FILE with an output folder)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EmomixError("--device cuda was given but no CUDA GPU is visible; use --device cpu")
    bundle = load_tts(model, device=device)
    if batch is None:
        normalise_weights(weights, bundle.emotions)  # fail on bad weights before the slow parts
    if gl_iters is not None:
        if vocoder_config is not None or canonical_name(vocoder) != "griffinlim":
            raise EmomixError("--gl-iters sets Griffin-Lim's iterations; drop it for --vocoder hifigan")
        vocoder_config = {"n_iter": gl_iters}
    voc = load_vocoder(vocoder, checkpoint=vocoder_checkpoint, config=vocoder_config,
                       audio=bundle.audio, device=device)
    options = dict(speaker=speaker, speaker_wav=speaker_wav, seed=seed, length_scale=length_scale,
                   encoder_condition=encoder_condition, vocoder=voc, steps=steps,
                   temperature=temperature, solver=solver, k_max=k_max, k_min=k_min)
    if batch is not None:
        written = synthesize_batch_file(bundle, batch, output, **options)
        if console is not None:
            console.print(f"[green]wrote {len(written)} wavs[/] to {output}")
        return written
    result = synthesize(bundle, text or "", weights, **options)
    save_wav(output, result.wav, result.sample_rate)
    if mel_png is not None:
        mix_name = " + ".join(f"{w:.2f} {e}" for e, w in result.weights_used.items())
        save_mel_png(result.mel, mel_png, title=mix_name)
    if console is not None:
        mix_name = ", ".join(f"{e} {w:.2f}" for e, w in result.weights_used.items())
        console.print(
            f"[green]wrote[/] {output}  [bold]{mix_name}[/]  speaker {result.speaker}  "
            f"{result.duration_s:.2f} s audio  RTF {result.rtf:.2f} "
            f"({result.sampler['solver']}, {result.sampler['steps']} steps)",
            highlight=False,
        )
    return result
