"""emomix_cli.server.serve: the API's request parsing and the bounded queue (no Gradio, no model)."""

from __future__ import annotations

import threading
import time

import pytest

import emomix_cli.server.serve

from emomix_cli.errors import EmomixError
from emomix_cli.server import DEFAULT_MAX_TEXT_CHARS, MAX_GUIDANCE, MAX_STEPS
from emomix_cli.server.serve import (
    BoundedWorker,
    ServerBusy,
    build_request,
    check_text,
    effective_weights,
    parse_tts_query,
)

EMOTIONS = ["angry", "happy", "neutral", "sad", "surprise"]


def parse(query: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS):
    """A query string as the server reads it: (name, value) pairs, repeats kept."""
    from urllib.parse import parse_qsl

    return parse_tts_query(parse_qsl(query, keep_blank_values=True), EMOTIONS, max_chars)


# ---------------------------------------------------------------- parsing
def test_a_full_query_becomes_text_weights_and_options():
    request = parse("text=Hello+there.&angry=0.6&happy=0.4&speaker=demo_spk2&seed=7&guidance=2&steps=4")
    assert request.text == "Hello there."
    assert request.weights == {"angry": 0.6, "happy": 0.4}
    options = request.options
    assert (options.speaker, options.seed, options.guidance, options.steps) == ("demo_spk2", 7, 2.0, 4)


def test_settings_left_out_take_the_model_defaults_later():
    options = parse("text=Hi.&sad=1").options
    assert (options.speaker, options.seed, options.guidance, options.steps) == (None, 0, None, None)


def test_coqui_speaker_id_is_the_speaker_and_names_ignore_case():
    request = parse("TEXT=Hi.&speaker_id=demo_spk3&Angry=0.5")
    assert request.options.speaker == "demo_spk3" and request.weights == {"angry": 0.5}


@pytest.mark.parametrize("query, fragments", [
    ("text=Hi.&angri=0.5", ["unknown parameter 'angri'", "angry, happy, neutral, sad, surprise"]),
    ("text=Hi.&angry=lots", ["angry needs a number", "lots"]),
    ("text=Hi.&angry=nan", ["finite"]),
    ("text=Hi.&angry=-0.2", ["angry", ">= 0"]),
    ("text=Hi.&angry=2", ["sum to 2 > 1"]),
    ("text=Hi.&angry=0.8&sad=0.4", ["sum to 1.2 > 1"]),
    ("text=Hi.&angry=0.1&angry=0.2", ["angry is given twice"]),
    ("text=Hi.&text=Ho.", ["text is given twice"]),
    ("angry=1", ["text is missing"]),
    ("text=+++&angry=1", ["text is empty"]),
    ("text=Hi.&seed=1.5", ["seed must be a whole number from 0", "'1.5'"]),
    ("text=Hi.&seed=-1", ["seed must be a whole number from 0"]),
    ("text=Hi.&seed=x", ["seed must be a whole number", "'x'"]),
    ("text=Hi.&steps=0", [f"steps must be a whole number from 1 to {MAX_STEPS}"]),
    (f"text=Hi.&steps={MAX_STEPS + 1}", [f"from 1 to {MAX_STEPS}"]),
    ("text=Hi.&guidance=-1", [f"guidance must be a number from 0 to {MAX_GUIDANCE:g}"]),
    ("text=Hi.&guidance=inf", ["guidance must be a number from 0"]),
    ("text=Hi.&guidance=strong", ["guidance must be a number", "'strong'"]),
])  # fmt: skip
def test_bad_queries_are_refused_with_one_line_naming_the_problem(query, fragments):
    with pytest.raises(EmomixError) as caught:
        parse(query)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_text_longer_than_the_limit_is_refused_with_the_limit():
    assert check_text("  abc  ", 3) == "abc"
    with pytest.raises(EmomixError, match="4 characters, over this server's limit of 3"):
        check_text("abcd", 3)
    with pytest.raises(EmomixError, match="--max-text-chars"):
        parse("text=" + "a" * 11, max_chars=10)


def test_no_weight_or_only_zeros_is_plain_neutral_and_a_lone_weight_is_intensity():
    assert effective_weights({}, EMOTIONS) == {"neutral": 1.0}
    assert effective_weights({"angry": 0.0}, EMOTIONS) == {"neutral": 1.0}
    assert effective_weights({"sad": 0.3}, EMOTIONS) == pytest.approx({"neutral": 0.7, "sad": 0.3})
    with pytest.raises(EmomixError, match="unknown emotion 'calm'"):
        effective_weights({"calm": 0.0}, EMOTIONS)
    with pytest.raises(EmomixError, match="no emotion weight"):
        effective_weights({}, ["angry", "happy"])  # a model without neutral has no default


def test_the_page_and_the_query_share_one_parser():
    from_page = build_request(" Hi. ", {"angry": 0.6, "happy": 0.4, "sad": 0.0},
                              {"speaker": "demo_spk1", "seed": 3.0, "guidance": 1.5, "steps": 8.0}, EMOTIONS)
    from_query = parse("text=Hi.&angry=0.6&happy=0.4&sad=0&speaker=demo_spk1&seed=3&guidance=1.5&steps=8")
    assert from_page == from_query
    with pytest.raises(EmomixError, match="sum to 1.5 > 1"):
        build_request("Hi.", {"angry": 1.0, "sad": 0.5}, {}, EMOTIONS)


def test_the_cli_flags_and_the_query_refuse_a_bad_number_alike():
    from emomix_cli.emotion_weights import parse_emotion_flags

    with pytest.raises(EmomixError) as flag:
        parse_emotion_flags(["--angry", "lots"])
    with pytest.raises(EmomixError) as query:
        parse("text=Hi.&angry=lots")
    assert str(flag.value) == "--" + str(query.value)


# ---------------------------------------------------------------- the queue
class Gate:
    """A job that blocks until opened, recording the order jobs ran in."""

    def __init__(self):
        self.opened = threading.Event()
        self.order: list[int] = []

    def job(self, k: int) -> int:
        assert self.opened.wait(10)
        self.order.append(k)
        return k * k


def test_jobs_run_one_at_a_time_in_order_and_return_their_results():
    worker = BoundedWorker(queue_size=4)
    gate = Gate()
    running = []
    peak = []

    def job(k):
        running.append(k)
        peak.append(len(running))
        time.sleep(0.01)
        running.remove(k)
        return gate.job(k)

    futures = [worker.submit(job, k) for k in range(5)]
    gate.opened.set()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 4, 9, 16]
    assert gate.order == [0, 1, 2, 3, 4] and max(peak) == 1
    worker.close(timeout=5)


def test_past_the_queue_submit_raises_busy_at_once_with_a_retry_after():
    worker = BoundedWorker(queue_size=2)
    gate = Gate()
    futures = [worker.submit(gate.job, k) for k in range(3)]  # one running + two waiting
    started = time.perf_counter()
    with pytest.raises(ServerBusy) as busy:
        worker.submit(gate.job, 99)
    assert time.perf_counter() - started < 1.0  # refused, not queued behind the others
    assert busy.value.retry_after >= 1 and "retry in" in str(busy.value)
    assert worker.pending == 3
    gate.opened.set()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 4]
    assert worker.submit(gate.job, 5).result(timeout=10) == 25  # room again once they are done
    worker.close(timeout=5)


def test_a_queue_of_zero_holds_only_the_running_job():
    worker = BoundedWorker(queue_size=0)
    gate = Gate()
    first = worker.submit(gate.job, 1)
    with pytest.raises(ServerBusy):
        worker.submit(gate.job, 2)
    gate.opened.set()
    assert first.result(timeout=10) == 1
    worker.close(timeout=5)


def test_an_error_reaches_the_caller_and_the_worker_goes_on():
    worker = BoundedWorker(queue_size=1)

    def fail():
        raise EmomixError("text holds letters the voice cannot read")

    with pytest.raises(EmomixError, match="cannot read"):
        worker.submit(fail).result(timeout=10)
    assert worker.submit(lambda: "still here").result(timeout=10) == "still here"
    worker.close(timeout=5)


def test_a_job_cancelled_before_it_starts_is_skipped_and_frees_its_place():
    worker = BoundedWorker(queue_size=1)
    gate = Gate()
    running = worker.submit(gate.job, 1)
    waiting = worker.submit(gate.job, 2)
    assert waiting.cancel()  # its client went away
    gate.opened.set()
    assert running.result(timeout=10) == 1
    deadline = time.monotonic() + 10
    while worker.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.order == [1] and worker.pending == 0
    worker.close(timeout=5)


def test_a_closed_worker_refuses_new_jobs():
    worker = BoundedWorker(queue_size=1)
    worker.close(timeout=5)
    with pytest.raises(EmomixError, match="shutting down"):
        worker.submit(lambda: None)
    with pytest.raises(EmomixError, match="queue size must be >= 0"):
        BoundedWorker(queue_size=-1)


def test_the_service_loads_its_model_on_the_worker_thread_and_a_failed_load_stops_it(monkeypatch):
    """Every torch call of the service runs on one thread (split over two, it ran 25-35 % slower)."""
    import emomix_cli.synthesis
    import emomix_cli.tts
    from emomix_cli.server.serve import SpeechService

    loaded_on, before = [], set(threading.enumerate())

    def fake_load(model, device="cpu"):
        loaded_on.append(threading.current_thread().name)
        return object()

    monkeypatch.setattr(emomix_cli.tts, "load_tts", fake_load)
    monkeypatch.setattr(emomix_cli.server.serve, "load_default_vocoder", lambda bundle: "vocoder")
    service = SpeechService.load("some/model.pt", threads=1)
    assert loaded_on == ["emomix-synthesis"] and service.vocoder == "vocoder"
    assert service.model_name == "model.pt"
    service.close()

    monkeypatch.setattr(emomix_cli.tts, "load_tts", lambda model, device="cpu": 1 / 0)
    with pytest.raises(ZeroDivisionError):
        SpeechService.load("some/model.pt")
    time.sleep(0.1)
    assert set(threading.enumerate()) <= before, "the failed load left its worker thread running"
    with pytest.raises(EmomixError, match="--threads must be >= 1"):
        SpeechService.load("some/model.pt", threads=0)
