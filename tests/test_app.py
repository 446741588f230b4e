"""``emomix app``: the HTTP API on the shipped model (FastAPI's test client), the answer without
the extra, and (slow) the real server in a subprocess driven by headless Chromium.

The slow test needs the ``[app]`` extra, playwright (``[dev]``) and Debian's ``chromium``;
.ci/run installs them and runs ``pytest -m slow tests/test_app.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.cli import app as cli_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUICK = "&steps=2"  # the fast tests need audio, not good audio


def assert_speech(payload: bytes) -> np.ndarray:
    """A 22.05 kHz mono wav that is not silent."""
    audio, rate = sf.read(io.BytesIO(payload))
    assert rate == 22050 and audio.ndim == 1 and len(audio) > 2000
    assert np.sqrt(np.mean(audio**2)) > 0.01, "the wav is silent"
    return audio


def test_without_gradio_the_command_names_the_extra_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    result = CliRunner().invoke(cli_app, ["app", "--port", "7999"])
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in text
    assert "pip install 'emomix[app]'" in text and text.count("error:") == 1


# ---------------------------------------------------------------- the API, in process
@pytest.fixture(scope="module")
def service():
    pytest.importorskip("fastapi", reason="the [app] extra")
    from emomix_cli.server.serve import SpeechService

    service = SpeechService.load(DEMO_MODEL, max_text_chars=80, queue_size=1)
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(service):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from emomix_cli.server.http_api import api_router

    server = FastAPI()
    server.include_router(api_router(service))
    with TestClient(server) as client:
        yield client


def test_info_lists_the_models_emotions_speakers_and_limits(client):
    info = client.get("/api/info").json()
    assert info["model"] == "espeak"  # the shipped model's name
    assert info["emotions"] == ["angry", "happy", "neutral", "sad", "surprise"]
    assert info["speakers"] == ["demo_spk1", "demo_spk2", "demo_spk3", "demo_spk4"]
    assert info["max_text_chars"] == 80 and info["queue_size"] == 1
    assert info["defaults"]["steps"] == 10 and info["sample_rate"] == 22050


def test_tts_answers_a_wav_of_the_mix_and_the_same_seed_gives_the_same_audio(client):
    url = "/api/tts?text=Good+morning.&angry=0.6&happy=0.4&speaker=demo_spk2&seed=3" + QUICK
    first = client.get(url)
    assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
    assert first.headers["x-emomix-mix"] == "0.60 angry + 0.40 happy"
    assert_speech(first.content)
    assert client.get(url).content == first.content
    other = client.get(url.replace("seed=3", "seed=4"))
    assert other.status_code == 200 and other.content != first.content


def test_tts_with_only_text_speaks_neutral_like_coquis_server(client):
    answer = client.get("/api/tts?text=Hello.&speaker_id=demo_spk1" + QUICK)
    assert answer.status_code == 200 and answer.headers["x-emomix-mix"] == "1.00 neutral"
    assert_speech(answer.content)


def test_inline_tags_in_the_text_reach_the_synthesis(client):
    answer = client.get("/api/tts?text=%5Bsad%5D+I+lost+my+keys.+%5Bangry%5D+Who+moved+them%3F" + QUICK)
    assert answer.status_code == 200, answer.text
    mix = answer.headers["x-emomix-mix"]
    assert "sad" in mix and "angry" in mix  # the shares of both tagged segments
    assert_speech(answer.content)


@pytest.mark.parametrize("query, fragment", [
    ("text=Hello.&angry=2", "sum to 2 > 1"),
    ("text=Hello.&angry=-0.5", ">= 0"),
    ("text=Hello.&calm=1", "unknown parameter 'calm'"),
    ("text=&angry=1", "text is empty"),
    ("text=" + "a" * 81 + "&angry=1", "limit of 80"),
    ("text=Hello.&angry=1&speaker=nobody", "unknown speaker 'nobody'"),
    ("text=Hello.&angry=1&steps=0", "steps must be a whole number"),
    ("text=%E6%9D%B1%E4%BA%AC&angry=1", "voice cannot read"),  # 東京: refused by the library's check
    ("text=%5Bangy%5D+Hello.", "angy"),  # an inline tag naming no emotion of the model
])  # fmt: skip
def test_bad_input_is_a_400_with_one_line_and_the_server_stays_up(client, query, fragment):
    answer = client.get("/api/tts?" + query)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain")
    body = answer.text
    assert body.startswith("error: ") and fragment in body and body.count("\n") == 1
    assert "Traceback" not in body
    assert client.get("/api/tts?text=Still+here.&sad=1" + QUICK).status_code == 200


def test_past_the_queue_the_answer_is_503_with_retry_after(client, service):
    gate = threading.Event()
    running = service.worker.submit(gate.wait, 30)  # the one running job
    waiting = service.worker.submit(gate.wait, 30)  # queue_size=1: the queue is full
    try:
        answer = client.get("/api/tts?text=Hello.&happy=1" + QUICK)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
        assert answer.text.startswith("busy: ") and answer.text.count("\n") == 1
    finally:
        gate.set()
    assert running.result(timeout=30) and waiting.result(timeout=30)
    assert client.get("/api/tts?text=Hello.&happy=1" + QUICK).status_code == 200


def test_the_page_shows_the_refusal_and_speaks_the_mix(service):
    pytest.importorskip("gradio", reason="the [app] extra")
    from emomix_cli.server.page import mix_message, speak_on_page

    assert "sum to 1.5 > 1" in mix_message({"angry": 1.0, "sad": 0.5}, service.emotions)
    assert mix_message({"sad": 0.3}, service.emotions) == "**Mix:** 0.70 neutral + 0.30 sad"
    refused = speak_on_page(service, "Hello.", "demo_spk1", 1.0, 2, 0, 1.0, 0.5, 0, 0, 0)
    assert "sum to 1.5 > 1" in refused[0] and refused[1:] == (None, None)
    message, (rate, pcm), picture = speak_on_page(service, "Hello.", "demo_spk1", 1.0, 2, 0, 0.6, 0.4, 0, 0, 0)
    assert "0.60 angry + 0.40 happy" in message and rate == 22050
    assert pcm.dtype == np.int16 and np.abs(pcm).max() > 300 and picture.size[0] > 100


# ---------------------------------------------------------------- the real server (slow)
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 120) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (Linux: /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]) if len(address) == 8 else address)
    return found


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    pytest.importorskip("gradio", reason="the [app] extra")
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "emomix_cli", "app", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(base + "/api/info", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the app did not answer within 60 s:\n" + log.read_text()
            time.sleep(0.5)
        yield base, port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_app_listens_on_loopback_only_and_answers_the_api(running_app):
    base, port, process = running_app
    assert listening_addresses(port) == {"127.0.0.1"}
    status, headers, payload = get(base + "/api/tts?text=The+weather+is+lovely+today.&angry=0.6&happy=0.4")
    assert status == 200 and headers["content-type"] == "audio/wav"
    assert_speech(payload)
    status, _, body = get(base + "/api/tts?text=Hello.&angry=2")
    assert 400 <= status < 500 and body.decode().count("\n") == 1 and b"sum to 2 > 1" in body
    assert b"Traceback" not in body and process.poll() is None
    assert get(base + "/api/info")[0] == 200  # still up


@pytest.mark.slow
def test_four_concurrent_requests_all_get_a_wav(running_app):
    base = running_app[0]
    texts = ["One more time.", "Where is the cat?", "The bus is late.", "We will see."]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda t: get(f"{base}/api/tts?text={t.replace(' ', '+')}&sad=0.5"), texts))
    assert [status for status, _, _ in answers] == [200] * 4
    for _, _, payload in answers:
        assert_speech(payload)


def browser_driver():
    """playwright's sync API, with Debian's chromium present; skipped without them, except in CI
    (.ci/run installs both, so there a missing one fails instead of checking nothing)."""
    missing = None if Path(CHROMIUM).exists() else "Debian's chromium (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        missing, sync_api = missing or "playwright (pip install -e '.[dev]')", None
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{missing} is not installed")
    return sync_api


@pytest.fixture(scope="module")
def browser():
    with browser_driver().sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_the_page_in_chromium_names_every_emotion_and_speaks(running_app, browser):
    base = running_app[0]
    info = __import__("json").loads(get(base + "/api/info")[2])
    page = browser.new_page()
    elsewhere = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith((base, "blob:", "data:")) else None)
    page.goto(base + "/")
    page.wait_for_selector("#speak", timeout=60000)
    for emotion in info["emotions"]:
        assert page.locator(f"#weight-{emotion}").inner_text().strip().startswith(emotion)
    page.fill("#weight-sad input[type=number]", "0.5")  # 0.6 angry + 0.4 happy + 0.5 sad
    page.press("#weight-sad input[type=number]", "Enter")
    page.wait_for_function("document.querySelector('#mix').innerText.includes('sum to 1.5 > 1')", timeout=30000)
    page.fill("#weight-sad input[type=number]", "0")
    page.press("#weight-sad input[type=number]", "Enter")
    page.click("#speak")
    page.wait_for_selector("#audio audio[src]", state="attached", timeout=120000)
    page.wait_for_function("document.querySelector('#mel img') && document.querySelector('#mel img').naturalWidth > 100")
    assert "0.60 angry + 0.40 happy" in page.inner_text("#mix")
    assert elsewhere == [], f"the page reached beyond the server: {elsewhere}"
    page.close()
