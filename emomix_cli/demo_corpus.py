"""The synthetic emotional demo corpus (docs/DESIGN.md §6), rendered offline with espeak-ng.

No emotional speech corpus can be downloaded here, so ``render_demo_corpus`` renders one, ESD
style: every speaker reads every sentence in every emotion. Speakers are espeak-ng voice
variants (timbre and pitch differ); each emotion is a documented prosodic style (pitch level
and range, rate, loudness, spectral tilt, sentence-final intonation) with a small seeded
per-utterance jitter. The library comes from the ``espeakng-loader`` wheel and is driven through
its C API with ctypes (``speak_lib.h``, API revision 12): no subprocess, no system package.

espeak-ng keeps global state, is not thread-safe and carries hidden state from one synthesis
to the next, so every (speaker, emotion) unit is rendered in sentence order in a fresh worker
process (spawn-safe top-level functions) that initialises the library once: the same seed gives
byte-identical wavs whatever the worker count, and after a resume.
"""

from __future__ import annotations

import ctypes
import io
import json
import multiprocessing
import os
import queue as queue_module
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from .audio import save_wav, wav_bytes
from .config import atomic_write_text
from .errors import EmomixError
from .progress import progress_bar
from .text import espeak_data_path

SAMPLE_RATE = 22050
EMOTIONS = ["neutral", "angry", "happy", "sad", "surprise"]


@dataclass(frozen=True)
class EmotionStyle:
    """One emotion's prosody. Pitch/range are espeak's 0-100 scales, rate in words/minute."""

    pitch: int
    pitch_range: int
    rate: int
    volume: int  # espeak volume (100 = normal; above ~150 espeak compresses: a harsher voice)
    gain: float  # peak level after normalisation
    tilt: float  # > 0: pre-emphasis y[n] = x[n] - tilt*x[n-1] (brighter); < 0: one-pole low-pass
    word_gap: int  # extra pause between words, espeak units of 10 ms
    ending: str  # sentence-final punctuation used for rendering (intonation tune)
    pitch_jitter: int = 4  # ± uniform, espeak pitch units
    rate_jitter: float = 0.05  # ± fraction of rate


STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(
        pitch=45, pitch_range=35, rate=165, volume=100, gain=0.55, tilt=0.0, word_gap=0, ending="."
    ),
    "angry": EmotionStyle(
        pitch=55, pitch_range=80, rate=205, volume=180, gain=0.98, tilt=0.6, word_gap=0, ending="!"
    ),
    "happy": EmotionStyle(
        pitch=70, pitch_range=90, rate=190, volume=130, gain=0.8, tilt=0.45, word_gap=0, ending="!"
    ),
    "sad": EmotionStyle(
        pitch=30, pitch_range=12, rate=115, volume=70, gain=0.3, tilt=-0.75, word_gap=2, ending="."
    ),
    "surprise": EmotionStyle(
        pitch=92,
        pitch_range=100,
        rate=150,
        volume=120,
        gain=0.75,
        tilt=0.0,
        word_gap=0,
        ending="?",
    ),
}

# (speaker id, espeak voice with variant). Variants live in espeak-ng-data/voices/!v. Every voice
# keeps >= 0.9 of its pYIN voiced fraction in every emotion when its mel goes through the default
# vocoder (HiFi-GAN UNIVERSAL_V1; benchmarks/voice_survival.py, docs/demo_corpus.md): the low male
# variants (m1-m7, en-gb-x-rp, ...) lose most of it in sad and neutral, so none is used.
SPEAKERS: list[tuple[str, str]] = [
    ("demo_spk1", "en-us+Nguyen"),
    ("demo_spk2", "en-us+f2"),
    ("demo_spk3", "en-us+Marco"),
    ("demo_spk4", "en+f4"),
    ("demo_spk5", "en-us+steph"),
    ("demo_spk6", "en-us+f5"),
    ("demo_spk7", "en-us+Andrea"),
    ("demo_spk8", "en-us+shelby"),
]

SENTENCES: list[str] = [
    "The train leaves at seven in the morning.",
    "Please put the green box on the table.",
    "My sister bought a new bicycle yesterday.",
    "We walked along the river after dinner.",
    "The coffee in this shop is very strong.",
    "He forgot his keys at the office again.",
    "The garden looks beautiful in the spring.",
    "They are painting the kitchen walls blue.",
    "I will call you when I get home.",
    "The children played football until it got dark.",
    "Our neighbor has three small dogs.",
    "The meeting was moved to next Tuesday.",
    "She reads a book every night before bed.",
    "The window in the bedroom is open.",
    "We need more bread and milk for breakfast.",
    "The bus was late because of the snow.",
    "He plays the piano in a small band.",
    "This road leads straight to the old harbor.",
    "The cat is sleeping on the warm sofa.",
    "I found a letter under the front door.",
    "The museum opens at ten on Sundays.",
    "My grandfather grew up on a farm.",
    "The lights went out during the storm.",
    "She painted a picture of the mountains.",
    "We should leave before the traffic starts.",
    "The soup needs a little more salt.",
    "He runs five miles every single morning.",
    "The library closes early on Fridays.",
    "Our team won the game last night.",
    "The phone rang in the middle of dinner.",
    "She wore a red coat to the party.",
    "The bridge was built a hundred years ago.",
    "I left my umbrella on the train.",
    "The teacher wrote the answer on the board.",
    "They moved to a house near the sea.",
    "The baby finally fell asleep at noon.",
    "We watched the sunset from the hill.",
    "He cooked pasta with fresh tomatoes.",
    "The shop on the corner sells fresh flowers.",
    "My brother is learning to drive a car.",
    "The printer on the second floor is broken.",
    "She sent me a message this afternoon.",
    "The plane landed safely despite the wind.",
    "We planted apple trees behind the barn.",
    "The doctor will see you in ten minutes.",
    "He lost his wallet at the market.",
    "The river froze during the long winter.",
    "I made a cake for her birthday.",
    "The new bridge opens to traffic next month.",
    "They sat by the fire and told stories.",
    "The dog barked at the mail carrier.",
    "She keeps her notes in a blue folder.",
    "The price of apples went up again.",
    "We took the early ferry to the island.",
    "He fixed the old clock in the hall.",
    "The students finished their exams today.",
    "My aunt lives in a small village.",
    "The car would not start this morning.",
    "She sings in the choir every Sunday.",
    "The hotel room had a view of the lake.",
    "I need to return these books tomorrow.",
    "The wind blew the leaves across the yard.",
    "They built a sandcastle on the beach.",
    "The waiter brought us two cups of tea.",
    "He painted the fence white last summer.",
    "The concert starts in half an hour.",
    "Our flight was delayed by three hours.",
    "She planted tulips along the path.",
    "The old man fed the pigeons in the park.",
    "We ordered pizza for the whole office.",
    "The kettle is boiling on the stove.",
    "My friend lent me his camera.",
    "The town hall clock struck twelve.",
    "They found a puppy near the school.",
    "The exam results will arrive next week.",
    "He always takes the stairs to work.",
    "The rain stopped just before the wedding.",
    "She cut her hair short for the summer.",
    "The farmer sold eggs at the market.",
    "I cleaned the windows on Saturday.",
    "The boat drifted slowly toward the shore.",
    "We met an old friend at the station.",
    "The candles on the table were burning low.",
    "He wrote a song for his mother.",
    "The road was closed for repairs.",
    "My cousin works at the hospital.",
    "The store ran out of fresh bread.",
    "They danced in the kitchen until midnight.",
    "The computer needs a new battery.",
    "She opened the gift very carefully.",
    "The mountain path was steep and narrow.",
    "We heard thunder far in the distance.",
    "He keeps his bike in the garage.",
    "The pilot spoke to the passengers.",
    "The soup was too hot to eat.",
    "I saw a fox in the garden.",
    "The birds sing loudly at dawn.",
    "Our class visited the science museum.",
    "The key is under the flower pot.",
    "She told me the whole story.",
    "The ice cream melted in the sun.",
    "He carried the boxes up the stairs.",
    "The lake was calm and very clear.",
    "We painted the boat bright yellow.",
    "The movie ended with a happy song.",
    "My phone battery is almost empty.",
    "They opened a bakery downtown.",
    "The wall clock is five minutes fast.",
    "She answered every question correctly.",
    "The horses ran across the open field.",
    "I bought tickets for the evening show.",
    "The nurse checked his temperature twice.",
    "We drove through the forest at night.",
    "The bell rang at the end of class.",
    "He spilled juice on the white carpet.",
    "The market is busy on Saturday mornings.",
    "Our new neighbors come from Canada.",
    "The paint on the door is still wet.",
    "She learned to swim when she was six.",
    "The fridge is full of vegetables.",
    "They climbed the tower to see the city.",
    "The letter arrived three days late.",
    "He borrowed a ladder from his neighbor.",
    "The clouds are moving toward the east.",
    "I have a dentist appointment at four.",
    "The puppy chewed my favorite shoes.",
    "We shared a table with two strangers.",
    "The fisherman caught a large silver fish.",
    "She hung the laundry out to dry.",
    "The road sign pointed to the left.",
    "My parents celebrated their anniversary.",
    "The stars were bright over the desert.",
    "He sold his old guitar online.",
    "The kids built a fort in the woods.",
    "The office printer jammed again today.",
    "We walked the dog around the block.",
    "The tea kettle whistled in the kitchen.",
    "She knitted a scarf for her brother.",
    "The gate at the end of the garden squeaks.",
    "They missed the last bus home.",
    "The chef tasted the sauce once more.",
    "I watered the plants on the balcony.",
    "The ship sailed out of the harbor.",
    "He found an old coin in the sand.",
    "The snow covered the whole valley.",
    "Our cat caught a mouse in the shed.",
    "The bakery smells of fresh bread.",
    "She drew a map of the neighborhood.",
    "The game was canceled because of rain.",
    "We cooked dinner together on Friday.",
    "The elevator stopped between two floors.",
    "He taught his son how to fish.",
    "The apples fell from the tall tree.",
    "I wrote my name on the first page.",
    "The old bridge creaks in the wind.",
    "They painted a mural on the school wall.",
    "The radio played music all afternoon.",
    "She waited for the bus in the rain.",
]


# ---------------------------------------------------------------- espeak-ng through ctypes
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _espeakng_loader():
    try:
        import espeakng_loader
    except ImportError:
        raise EmomixError(
            "the demo corpus needs the espeak-ng library: pip install espeakng-loader"
        ) from None
    return espeakng_loader


@lru_cache(maxsize=1)
def voice_variants() -> tuple[str, ...]:
    """The variant names (``voice+variant``) in espeakng-loader's ``espeak-ng-data/voices/!v``."""
    folder = Path(_espeakng_loader().get_data_path()) / "voices" / "!v"
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))


def check_voice(voice: str) -> None:
    """EmomixError unless ``voice``'s variant (after ``+``) exists: espeak-ng would silently
    ignore an unknown variant and speak the base voice. The base voice is checked when it is
    first set (:meth:`_Espeak.synthesize`)."""
    base, _, variant = voice.partition("+")
    if not base:
        raise EmomixError(f"espeak voice '{voice}' has no base voice; write e.g. en-us+f2")
    if variant and variant not in voice_variants():
        raise EmomixError(
            f"espeak-ng has no voice variant '{variant}' (in '{voice}'); "
            f"variants: {', '.join(voice_variants())}"
        )


class _Espeak:
    """One process's espeak-ng engine in synchronous retrieval mode."""

    def __init__(self) -> None:
        espeakng_loader = _espeakng_loader()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        # espeak_ng.h: espeak_ng_STATUS espeak_ng_SetRandSeed(long seed); seeds the noise
        # source (aspiration, frication), without which renders differ run to run
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int
        # path = the folder that *contains* espeak-ng-data
        data_parent = os.path.dirname(espeak_data_path(espeakng_loader.get_data_path()))
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0
        )
        if self.sample_rate <= 0:
            raise EmomixError(
                f"espeak-ng failed to initialise with data in {data_parent}; "
                "reinstall espeakng-loader"
            )
        self._lib = lib
        self._chunks: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds a pointer

    def _collect(self, wav, n_samples, _events) -> int:
        if wav and n_samples > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * n_samples))  # int16 samples
        return 0

    def synthesize(
        self,
        text: str,
        voice: str,
        pitch: int,
        pitch_range: int,
        rate: int,
        volume: int,
        word_gap: int,
        noise_seed: int = 0,
    ) -> np.ndarray:
        """int16 samples at ``self.sample_rate``; equal arguments give equal samples."""
        check_voice(voice)
        lib = self._lib
        lib.espeak_ng_SetRandSeed(noise_seed)
        # set every time: another module in this process may have re-pointed the callback
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EmomixError(f"espeak-ng has no voice '{voice}'; check espeakng-loader's data")
        for parameter, value in (
            (_PARAM_RATE, rate),
            (_PARAM_VOLUME, volume),
            (_PARAM_PITCH, pitch),
            (_PARAM_RANGE, pitch_range),
            (_PARAM_WORDGAP, word_gap),
        ):
            lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8")
        status = lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise EmomixError(f"espeak-ng could not render {text!r} (status {status})")
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)


_ENGINE: _Espeak | None = None


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak()
    return _ENGINE


# ---------------------------------------------------------------- styling the samples
def apply_tilt(audio: np.ndarray, tilt: float) -> np.ndarray:
    """First-order spectral tilt: pre-emphasis for tilt > 0, one-pole low-pass for tilt < 0."""
    if tilt > 0:
        return lfilter([1.0, -tilt], [1.0], audio)
    if tilt < 0:
        pole = -tilt
        return lfilter([1.0 - pole], [1.0, -pole], audio)
    return audio


def trim_silence(
    audio: np.ndarray, sample_rate: int, top_db: float = 40.0, keep_s: float = 0.05
) -> np.ndarray:
    """Cut leading/trailing audio quieter than ``top_db`` below the loudest frame, keeping
    ``keep_s`` seconds of margin on each side."""
    frame = 256
    n_frames = max(1, len(audio) // frame)
    frames = audio[: n_frames * frame].reshape(n_frames, frame)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-top_db / 20))
    if loud.size == 0:
        return audio
    keep = int(keep_s * sample_rate)
    start = max(0, loud[0] * frame - keep)
    end = min(len(audio), (loud[-1] + 1) * frame + keep)
    return audio[start:end]


def style_audio(samples: np.ndarray, style: EmotionStyle, sample_rate: int) -> np.ndarray:
    """int16 espeak samples -> float32 at SAMPLE_RATE: tilt, trim, peak-normalise, gain."""
    audio = samples.astype(np.float64) / 32768.0
    if sample_rate != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    audio = trim_silence(apply_tilt(audio, style.tilt), SAMPLE_RATE)
    peak = np.abs(audio).max()
    if peak > 0:
        audio = audio / peak * style.gain
    return audio.astype(np.float32)


# ---------------------------------------------------------------- the corpus plan
@dataclass(frozen=True)
class Utterance:
    """One file to render, with the jittered espeak parameters already drawn."""

    id: str
    text: str
    render_text: str
    speaker: str
    voice: str
    emotion: str
    split: str
    pitch: int
    pitch_range: int
    rate: int
    noise_seed: int


def split_sizes(n_sentences: int) -> tuple[int, int]:
    """(n_val, n_test): 10 and 15 of 150, scaled, at least one each."""
    n_val = max(1, round(n_sentences * 10 / 150))
    n_test = max(1, round(n_sentences * 15 / 150))
    return n_val, n_test


def split_of(sentence_index: int, n_sentences: int) -> str:
    n_val, n_test = split_sizes(n_sentences)
    if sentence_index < n_val:
        return "val"
    if sentence_index < n_val + n_test:
        return "test"
    return "train"


def with_ending(text: str, ending: str) -> str:
    """The sentence with its final punctuation replaced (the intonation hint)."""
    return text.rstrip(".!?") + ending


def plan_corpus(
    n_speakers: int = 4,
    n_sentences: int = 150,
    seed: int = 0,
    speakers: list[tuple[str, str]] | None = None,
) -> list[Utterance]:
    """Every (speaker, emotion, sentence) with jitter seeded per utterance, so a file's audio
    does not depend on which other files are rendered, or in which order.

    ``speakers``: (speaker id, espeak voice) pairs, default :data:`SPEAKERS` (the corpus); a
    speaker's jitter is seeded by its position in the list, so another list (candidate voices,
    ``benchmarks/voice_survival.py``) plans the corpus's own utterances for a voice only at the
    position it holds in ``SPEAKERS``.
    """
    speakers = SPEAKERS if speakers is None else speakers
    if not 1 <= n_speakers <= len(speakers):
        raise EmomixError(f"n_speakers must be 1..{len(speakers)}, got {n_speakers}")
    if not 1 <= n_sentences <= len(SENTENCES):
        raise EmomixError(f"n_sentences must be 1..{len(SENTENCES)}, got {n_sentences}")
    plan = []
    for s, (speaker, voice) in enumerate(speakers[:n_speakers]):
        for e, emotion in enumerate(EMOTIONS):
            style = STYLES[emotion]
            for i, text in enumerate(SENTENCES[:n_sentences]):
                rng = np.random.default_rng([seed, s, e, i])
                pitch_shift = int(rng.integers(-style.pitch_jitter, style.pitch_jitter + 1))
                rate_scale = 1.0 + rng.uniform(-style.rate_jitter, style.rate_jitter)
                plan.append(
                    Utterance(
                        id=f"{speaker}_{emotion}_{i:04d}",
                        text=text,
                        render_text=with_ending(text, style.ending),
                        speaker=speaker,
                        voice=voice,
                        emotion=emotion,
                        split=split_of(i, n_sentences),
                        pitch=int(np.clip(style.pitch + pitch_shift, 0, 100)),
                        pitch_range=int(np.clip(style.pitch_range + pitch_shift, 0, 100)),
                        rate=int(np.clip(round(style.rate * rate_scale), 80, 450)),
                        noise_seed=int(rng.integers(0, 2**31 - 1)),
                    )
                )
    return plan


def render_utterance(utterance: Utterance) -> np.ndarray:
    """The styled float32 audio of one planned utterance at SAMPLE_RATE.

    espeak-ng carries hidden state from one synthesis to the next (pitch flutter phase, gain
    control), so the samples depend on what this process rendered before: byte-identical
    output needs the same history, which :func:`render_demo_corpus` guarantees.
    """
    return style_audio(_synthesize(utterance), STYLES[utterance.emotion], _engine().sample_rate)


def _synthesize(utterance: Utterance) -> np.ndarray:
    style = STYLES[utterance.emotion]
    return _engine().synthesize(
        utterance.render_text,
        utterance.voice,
        utterance.pitch,
        utterance.pitch_range,
        utterance.rate,
        style.volume,
        style.word_gap,
        utterance.noise_seed,
    )


_PROGRESS_QUEUE = None


def _set_progress_queue(queue) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


def _unit_audio(utterances: list[Utterance], wanted) -> Iterator[tuple[Utterance, np.ndarray]]:
    """Synthesise one (speaker, emotion) unit in sentence order (the espeak history every
    corpus file sees) and yield (utterance, styled audio) for those ``wanted(utterance)``
    accepts; the others are synthesised only, to keep that history."""
    for utterance in utterances:
        samples = _synthesize(utterance)
        if wanted(utterance):
            style = STYLES[utterance.emotion]
            yield utterance, style_audio(samples, style, _engine().sample_rate)


def _render_unit(job: tuple[list[Utterance], str]) -> int:
    """Worker entry point (top level, spawn-safe). Renders one (speaker, emotion) unit in
    sentence order in a fresh process, so every file sees the same espeak history whatever
    the worker count, and files that already exist are synthesised (to keep that history)
    but not styled or written again. Returns the number of files written."""
    utterances, wav_dir = job
    written = 0

    def missing(utterance: Utterance) -> bool:
        return not (Path(wav_dir) / f"{utterance.id}.wav").exists()

    for utterance, audio in _unit_audio(utterances, missing):
        save_wav(Path(wav_dir) / f"{utterance.id}.wav", audio, SAMPLE_RATE)
        written += 1
        if _PROGRESS_QUEUE is not None:
            _PROGRESS_QUEUE.put(1)
    return written


def _as_stored(audio: np.ndarray) -> np.ndarray:
    """``audio`` as its corpus wav holds it and :func:`~.audio.load_wav` reads it back
    (16-bit PCM, through :func:`~.audio.wav_bytes`, the one writer of :func:`save_wav`)."""
    import soundfile as sf

    stored, _ = sf.read(io.BytesIO(wav_bytes(audio, SAMPLE_RATE)), dtype="float32")
    return stored


def _unit_stored_audio(job: tuple[list[Utterance], frozenset[str]]) -> list[tuple[str, np.ndarray]]:
    """Worker entry point: the stored audio of the ``keep`` ids of one unit (fresh process)."""
    utterances, keep = job
    return [(u.id, _as_stored(audio)) for u, audio in _unit_audio(utterances, lambda u: u.id in keep)]


def _units(plan: list[Utterance]) -> list[list[Utterance]]:
    """The plan grouped by (speaker, emotion), sentences in order."""
    groups: dict[tuple[str, str], list[Utterance]] = {}
    for utterance in plan:
        groups.setdefault((utterance.speaker, utterance.emotion), []).append(utterance)
    return list(groups.values())


def _process_context():
    """fork where it exists and this process has no used espeak state to leak into children;
    spawn otherwise. Either way each unit gets a process that has never synthesised."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and _ENGINE is None:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def render_audio(
    plan: list[Utterance], keep: set[str] | None = None, workers: int = 1
) -> dict[str, np.ndarray]:
    """id -> float32 audio at SAMPLE_RATE of the planned utterances in ``keep`` (default all),
    rendered as :func:`render_demo_corpus` renders them (each (speaker, emotion) unit in
    sentence order in a fresh process) and returned as the corpus wav holds them, without
    writing files: for a plan of the corpus, equal to ``load_wav`` of its file. Only the units
    that hold a kept id are synthesised, each up to its last kept sentence.
    """
    if workers < 1:
        raise EmomixError(f"workers must be at least 1, got {workers}")
    keep = frozenset(u.id for u in plan) if keep is None else frozenset(keep)
    jobs = []
    for unit in _units(plan):
        last = max((i for i, u in enumerate(unit) if u.id in keep), default=None)
        if last is not None:
            jobs.append((unit[: last + 1], keep))
    if not jobs:
        return {}
    with _process_context().Pool(min(workers, len(jobs)), maxtasksperchild=1) as pool:
        parts = pool.map(_unit_stored_audio, jobs, chunksize=1)
    return {key: audio for part in parts for key, audio in part}


def _manifest_row(utterance: Utterance) -> dict:
    return {
        "id": utterance.id,
        "wav": f"wavs/{utterance.id}.wav",
        "text": utterance.text,
        "speaker": utterance.speaker,
        "emotion": utterance.emotion,
        "split": utterance.split,
        "language": "en",
    }


def render_demo_corpus(
    root: Path,
    n_speakers: int = 4,
    n_sentences: int = 150,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Render the demo corpus into ``root`` and return ``root``.

    Writes ``root/wavs/<speaker>_<emotion>_<NNNN>.wav`` (22050 Hz, mono, 16-bit) and, last,
    ``root/manifest.jsonl``. Existing wavs are kept, so an interrupted run resumes where it
    stopped; each wav is written atomically, so a kill loses only the files in flight. The
    same seed gives byte-identical wavs for any ``workers`` and across resumes.
    """
    if workers < 1:
        raise EmomixError(f"workers must be at least 1, got {workers}")
    root = Path(root)
    wav_dir = root / "wavs"
    try:
        wav_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EmomixError(f"cannot create {wav_dir}: {error}; choose a writable folder") from None
    for stale in wav_dir.glob(".*.tmp"):  # temp files of a killed run
        stale.unlink(missing_ok=True)
    plan = plan_corpus(n_speakers, n_sentences, seed)
    missing = {u.id for u in plan if not (wav_dir / f"{u.id}.wav").exists()}
    units = [unit for unit in _units(plan) if any(u.id in missing for u in unit)]
    with progress_bar("rendering demo corpus", len(plan), completed=len(plan) - len(missing),
                      enabled=progress) as bar:
        if units:
            context = _process_context()
            queue = context.Queue()
            with context.Pool(
                min(workers, len(units)),
                initializer=_set_progress_queue,
                initargs=(queue,),
                maxtasksperchild=1,
            ) as pool:
                result = pool.map_async(
                    _render_unit, [(unit, str(wav_dir)) for unit in units], chunksize=1
                )
                done = 0
                while done < len(missing) and not (result.ready() and queue.empty()):
                    try:
                        done += queue.get(timeout=0.2)
                        bar.advance()
                    except queue_module.Empty:  # nothing finished: poll the result again
                        continue
                result.get()  # re-raises a worker's error
    lines = "".join(json.dumps(_manifest_row(u), ensure_ascii=False) + "\n" for u in plan)
    atomic_write_text(root / "manifest.jsonl", lines)
    return root
