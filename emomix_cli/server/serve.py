"""The engine of ``emomix app``, apart from Gradio and HTTP: requests, one model, one queue.

- :func:`parse_tts_query`: the query of ``GET /api/tts`` (Coqui ``tts-server``'s convention plus
  one parameter per emotion) -> :class:`SpeechRequest` (text, weights, :class:`SynthesisOptions`);
  :func:`build_request` is the same for the page's widgets. Both are pure: bad input raises
  :class:`EmomixError` with the line the caller shows (HTTP 400, the page's message).
- :class:`BoundedWorker`: one thread runs the jobs one at a time; at most ``queue_size`` wait.
  Past that, :class:`ServerBusy` (HTTP 503 with Retry-After), never an unbounded wait.
- :class:`SpeechService`: the one loaded model and vocoder behind one worker, shared by the page
  and the API (docs/DESIGN.md §5).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..emotion_weights import add_weight
from ..errors import EmomixError
from ..synthesis import SynthesisOptions, load_default_vocoder, synthesize
from ..tags import has_tags
from ..tts.mixing import NEUTRAL, normalise_weights
from . import DEFAULT_MAX_TEXT_CHARS, DEFAULT_QUEUE_SIZE, MAX_GUIDANCE, MAX_SEED, MAX_STEPS

SETTINGS = ("speaker", "seed", "guidance", "steps")  # besides "text"; the rest are emotions
ALIASES = {"speaker_id": "speaker"}  # Coqui tts-server's name for the speaker


@dataclass
class SpeechRequest:
    """One thing to say: ``weights`` as given (checked against the model's emotions)."""

    text: str
    weights: dict[str, float]
    options: SynthesisOptions = field(default_factory=SynthesisOptions)


# ---------------------------------------------------------------- parsing
def check_text(text: str | None, max_chars: int) -> str:
    """The text stripped; empty or longer than ``max_chars`` raises EmomixError."""
    text = (text or "").strip()
    if not text:
        raise EmomixError("text is empty; give a sentence to speak, e.g. text=Hello there.")
    if len(text) > max_chars:
        raise EmomixError(f"text is {len(text)} characters, over this server's limit of {max_chars}; "
                          "send it in shorter pieces (or start the app with a larger --max-text-chars)")
    return text


def _number(name: str, value: Any, low: float, high: float, whole: bool = False) -> float | int:
    """``value`` as a number in [low, high] (a whole one when ``whole``); else EmomixError."""
    kind = "a whole number" if whole else "a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and low <= number <= high and (not whole or number == int(number))):
        raise EmomixError(f"{name} must be {kind} from {low:g} to {high:g}, got '{value}'")
    return int(number) if whole else number


def effective_weights(weights: Mapping[str, float], emotions: list[str]) -> dict[str, float]:
    """:func:`normalise_weights`; no weight, or only zeros of known emotions, is plain Neutral
    (intensity 0: a Coqui client that sends only the text gets the neutral voice)."""
    if NEUTRAL in emotions and set(weights) <= set(emotions) and all(w == 0 for w in weights.values()):
        return {NEUTRAL: 1.0}
    return normalise_weights(weights, emotions)


def build_request(text: str | None, weights: Mapping[str, float], settings: Mapping[str, Any],
                  emotions: list[str], max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> SpeechRequest:
    """A checked :class:`SpeechRequest` from the text, the weights and ``settings`` (any of
    :data:`SETTINGS`; None or absent: the model's default). The weights must pass
    :func:`effective_weights`; the speaker and guidance are checked against the model later."""
    text = check_text(text, max_text_chars)
    effective_weights(weights, emotions)
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}")  # a caller's bug, not the user's
    given = {key: value for key, value in settings.items() if value not in (None, "")}
    options = SynthesisOptions(
        speaker=str(given["speaker"]) if "speaker" in given else None,
        seed=_number("seed", given["seed"], 0, MAX_SEED, whole=True) if "seed" in given else 0,
        guidance=_number("guidance", given["guidance"], 0, MAX_GUIDANCE) if "guidance" in given else None,
        steps=_number("steps", given["steps"], 1, MAX_STEPS, whole=True) if "steps" in given else None,
    )
    return SpeechRequest(text=text, weights=dict(weights), options=options)


def parse_tts_query(pairs: Iterable[tuple[str, str]], emotions: list[str],
                    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> SpeechRequest:
    """``text=…&angry=0.6&happy=0.4&speaker=…&seed=…&guidance=…&steps=…`` (as (name, value)
    pairs, repeats kept) -> a checked :class:`SpeechRequest`. A name that is neither a setting
    nor one of ``emotions`` is refused by name; so is any name given twice."""
    settings: dict[str, str] = {}  # text and SETTINGS
    weights: dict[str, float] = {}
    for raw_name, value in pairs:
        name = ALIASES.get(raw_name.lower(), raw_name.lower())
        if name == "text" or name in SETTINGS:
            if name in settings:
                raise EmomixError(f"{raw_name} is given twice; give it once")
            settings[name] = value
        elif name.replace("-", "_") in emotions:
            add_weight(weights, name, value, name)
        else:
            raise EmomixError(f"unknown parameter '{raw_name}'; give text, {', '.join(SETTINGS)} "
                              f"or an emotion of this model: {', '.join(emotions)}")
    if "text" not in settings:
        raise EmomixError("text is missing; add text=… to the query, e.g. /api/tts?text=Hello.&happy=1")
    return build_request(settings.pop("text"), weights, settings, emotions, max_text_chars)


# ---------------------------------------------------------------- the queue
class ServerBusy(EmomixError):
    """The queue is full; ``retry_after`` (whole seconds) is when a place is likely free."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(f"the server is busy ({waiting} requests ahead); retry in {retry_after} s",
                         code=3)
        self.retry_after = retry_after


class BoundedWorker:
    """One thread that runs submitted jobs in order, one at a time, with at most ``queue_size``
    jobs waiting behind the running one; :meth:`submit` past that raises :class:`ServerBusy`
    at once. A job whose future is cancelled before it starts (its client left) is skipped.
    ``initializer`` runs first in the worker thread (e.g. to set torch's thread count there)."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE, name: str = "emomix-synthesis",
                 initializer=None):
        if queue_size < 0:
            raise EmomixError(f"queue size must be >= 0, got {queue_size}")
        self.queue_size = queue_size
        self._jobs: list[tuple[Future, Any, tuple, dict]] = []
        self._pending = 0  # waiting + running
        self._closed = False
        self._mean_s = 1.0  # running mean of a job's time, for Retry-After
        self._wake = threading.Condition()
        self._initializer = initializer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._wake:
            return self._pending

    def submit(self, fn, *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)``; its :class:`Future` holds the result or the error."""
        future: Future = Future()
        with self._wake:
            if self._closed:
                raise EmomixError("the server is shutting down; retry in a moment")
            if self._pending > self.queue_size:
                raise ServerBusy(self._pending, max(1, math.ceil(self._mean_s * self._pending)))
            self._pending += 1
            self._jobs.append((future, fn, args, kwargs))
            self._wake.notify()
        return future

    def close(self, timeout: float | None = None) -> None:
        """Refuse new jobs, finish the queued ones, and stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if not self._jobs:
                    return
                future, fn, args, kwargs = self._jobs.pop(0)
            if not future.set_running_or_notify_cancel():  # cancelled while it waited
                self._finished(None)
                continue
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # handed to the waiting caller, who reports it
                self._finished(time.perf_counter() - started)
                future.set_exception(error)
            else:
                self._finished(time.perf_counter() - started)
                future.set_result(result)

    def _finished(self, seconds: float | None) -> None:
        """Free the job's place before its caller hears back, so the caller may submit again."""
        with self._wake:
            self._pending -= 1
            if seconds is not None:
                self._mean_s = 0.7 * self._mean_s + 0.3 * seconds


# ---------------------------------------------------------------- the service
def check_limits(max_text_chars: int, threads: int | None) -> None:
    """EmomixError for a text limit below 1 or a thread count below 1."""
    if max_text_chars < 1:
        raise EmomixError(f"--max-text-chars must be >= 1, got {max_text_chars}")
    if threads is not None and threads < 1:
        raise EmomixError(f"--threads must be >= 1, got {threads}")


def synthesis_worker(queue_size: int, threads: int | None) -> BoundedWorker:
    """The service's worker; ``threads`` (None: torch's default) is set on its thread first."""
    return BoundedWorker(queue_size, initializer=None if threads is None else
                         lambda: torch.set_num_threads(threads))  # fmt: skip


class SpeechService:
    """One TTS bundle and one vocoder, loaded once, behind one :class:`BoundedWorker`."""

    def __init__(self, bundle, vocoder, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                 queue_size: int = DEFAULT_QUEUE_SIZE, model_name: str = "", threads: int | None = None,
                 worker: BoundedWorker | None = None):
        check_limits(max_text_chars, threads)
        self.bundle, self.vocoder = bundle, vocoder
        self.max_text_chars, self.model_name = max_text_chars, model_name
        self.worker = worker or synthesis_worker(queue_size, threads)

    @classmethod
    def load(cls, model: str | Path, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
             queue_size: int = DEFAULT_QUEUE_SIZE, device: str = "cpu",
             threads: int | None = None) -> SpeechService:
        """Load the model (a tts checkpoint path) and the default vocoder once, on the worker's
        thread: every torch call of the service then runs on that one thread. Torch work split
        between two threads (loading here, synthesis there) ran 25-35 % slower on 2 cores, as
        each thread kept its own OpenMP team (docs/performance.md, "emomix app")."""
        from ..assets import shipped_model_of
        from ..tts import load_tts

        check_limits(max_text_chars, threads)
        worker = synthesis_worker(queue_size, threads)

        def load_both():
            bundle = load_tts(model, device=device)
            return bundle, load_default_vocoder(bundle)

        try:
            bundle, vocoder = worker.submit(load_both).result()
        except BaseException:
            worker.close()
            raise
        shipped = shipped_model_of(model)
        return cls(bundle, vocoder, max_text_chars, queue_size,
                   shipped.name if shipped else Path(model).name, threads, worker)

    @property
    def emotions(self) -> list[str]:
        return list(self.bundle.emotions)

    @property
    def speakers(self) -> list[str]:
        return list(self.bundle.speakers)

    def defaults(self) -> SynthesisOptions:
        """The model's sampler settings (what a request that names none gets)."""
        return SynthesisOptions().resolve(self.bundle)

    def info(self) -> dict:
        """What ``GET /api/info`` answers: the model's emotions, speakers and defaults, the limits."""
        used = self.defaults()
        return {"model": self.model_name, "emotions": self.emotions, "speakers": self.speakers,
                "sample_rate": int(getattr(self.vocoder, "sample_rate", self.bundle.audio.sample_rate)),
                "defaults": {"speaker": self.speakers[0] if self.speakers else None, "seed": 0,
                             "guidance": used.guidance, "steps": used.steps},
                "max_steps": MAX_STEPS, "max_guidance": MAX_GUIDANCE, "max_text_chars": self.max_text_chars,
                "queue_size": self.worker.queue_size}  # fmt: skip

    def check(self, request: SpeechRequest) -> dict[str, float]:
        """What ``request`` can be refused for before it is queued (emotions, speaker, guidance
        for this model); returns the mix to synthesize with: the effective one, or for text
        with inline tags the weights as given (the mix of any words before the first tag).
        The text itself (tags, letters the voice cannot read) is checked by the synthesis."""
        mix = effective_weights(request.weights, self.emotions)
        request.options.resolve(self.bundle)
        self.bundle.resolve_speaker(request.options.speaker)
        given = {name: weight for name, weight in request.weights.items() if weight}
        return given if has_tags(request.text) else mix

    def submit(self, request: SpeechRequest) -> Future:
        """Check ``request`` now, synthesize it on the worker; the future holds a SynthesisResult."""
        mix = self.check(request)
        return self.worker.submit(synthesize, self.bundle, request.text, mix, request.options, self.vocoder)

    def speak(self, request: SpeechRequest):
        """:meth:`submit` and wait: the :class:`~.synthesis.SynthesisResult`."""
        return self.submit(request).result()

    def warm_up(self) -> Future:
        """Queue one short synthesis, so the first visitor does not pay for the first call."""
        return self.worker.submit(synthesize, self.bundle, "Hello.", effective_weights({}, self.emotions),
                                  SynthesisOptions(steps=1), self.vocoder)

    def close(self) -> None:
        self.worker.close(timeout=30)


__all__ = ["BoundedWorker", "ServerBusy", "SpeechRequest", "SpeechService", "build_request", "check_text",
           "effective_weights", "parse_tts_query"]
