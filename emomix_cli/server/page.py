"""The page of ``emomix app`` (a slider per emotion) and the server that carries it and the API.

The page (Gradio, the ``[app]`` extra) and ``GET /api/tts`` (:mod:`.http_api`) share one
:class:`~.serve.SpeechService`: one model in memory, one synthesis at a time behind a bounded
queue. The server binds 127.0.0.1 unless told otherwise, never opens a public share link, and
needs no network: Gradio's analytics are off and the theme uses the system's fonts.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import EmomixError
from ..synthesis import mix_label
from . import (
    DEFAULT_HOST,
    DEFAULT_MAX_TEXT_CHARS,
    DEFAULT_PORT,
    DEFAULT_QUEUE_SIZE,
    INSTALL_HINT,
    MAX_STEPS,
)
from .serve import ServerBusy, SpeechService, build_request, effective_weights

# (text, weights): shown when the model has every emotion named
EXAMPLES = [
    ("The weather is lovely today, is it not?", {"angry": 0.6, "happy": 0.4}),
    ("I cannot believe you did that.", {"surprise": 1.0}),
    ("Please put the books back on the shelf.", {"sad": 0.3}),
    ("We found a small cat sleeping in the garden.", {"happy": 0.5, "surprise": 0.5}),
]
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "GRADIO_SSR_MODE": "False"}  # fmt: skip


def import_gradio():
    """Gradio with its analytics and phoning home turned off; EmomixError naming the extra
    when it is not installed."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import gradio
    except ImportError:
        raise EmomixError(f"emomix app needs Gradio, which is not installed; run: {INSTALL_HINT}") from None
    return gradio


def mix_message(weights: dict[str, float], emotions: list[str]) -> str:
    """The line above the audio: the effective mix, or why the weights are refused."""
    try:
        return f"**Mix:** {mix_label(effective_weights(weights, emotions))}"
    except EmomixError as error:
        return f"⚠️ {error}"


def speak_on_page(service: SpeechService, text, speaker, guidance, steps, seed, *weights):
    """The page's Speak button: (message, (rate, pcm16) or None, mel picture or None)."""
    from PIL import Image

    from ..audio import pcm16
    from ..plotting import mel_png_bytes

    given = dict(zip(service.emotions, (float(w or 0) for w in weights), strict=True))
    try:
        request = build_request(text, given, {"speaker": speaker, "guidance": guidance, "steps": steps,
                                              "seed": seed}, service.emotions, service.max_text_chars)
        result = service.speak(request)
    except ServerBusy as busy:
        return f"⏳ {busy}", None, None
    except EmomixError as error:
        return f"⚠️ {error}", None, None
    label = mix_label(result.weights_used)
    picture = Image.open(io.BytesIO(mel_png_bytes(result.mel, title=label)))
    message = (f"**Mix:** {label} · speaker {result.speaker} · {result.duration_s:.2f} s of audio in "
               f"{result.timings['total']:.2f} s")
    return message, (result.sample_rate, pcm16(result.wav)), picture


def build_page(service: SpeechService):
    """The Gradio page: text, one slider per emotion, speaker, guidance, steps, seed, examples;
    the effective mix (or why it is refused), the audio and the mel."""
    gr = import_gradio()
    used = service.defaults()
    with gr.Blocks(title="emomix listening room", analytics_enabled=False) as page:
        gr.Markdown("# emomix listening room\nMix emotions with the sliders; a sum below 1 "
                    "gives the rest to Neutral (intensity). The same voice answers `GET /api/tts`.")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=3, max_length=service.max_text_chars,
                                  value=EXAMPLES[0][0], elem_id="text")
                sliders = [gr.Slider(0.0, 1.0, value=EXAMPLES[0][1].get(emotion, 0.0), step=0.05,
                                     label=emotion, elem_id=f"weight-{emotion}") for emotion in service.emotions]
                speaker = gr.Dropdown(service.speakers, value=(service.speakers or [None])[0], label="Speaker",
                                      visible=bool(service.speakers))  # fmt: skip
                guidance = gr.Slider(0.0, 4.0, value=used.guidance, step=0.25, label="Guidance w (1 = plain mixing)")
                steps = gr.Slider(1, min(50, MAX_STEPS), value=used.steps, step=1, label="Solver steps")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                button = gr.Button("Speak", variant="primary", elem_id="speak")
            with gr.Column():
                message = gr.Markdown(mix_message(EXAMPLES[0][1], service.emotions), elem_id="mix")
                audio = gr.Audio(label="Speech", type="numpy", interactive=False, elem_id="audio",
                                 buttons=["download"])
                mel = gr.Image(label="Mel spectrogram", type="pil", interactive=False, elem_id="mel",
                               buttons=["download", "fullscreen"])
        examples = [[sentence, *[weights.get(e, 0.0) for e in service.emotions]]
                    for sentence, weights in EXAMPLES if set(weights) <= set(service.emotions)]
        if examples:
            gr.Examples(examples, [text, *sliders], label="Examples")
        for slider in sliders:
            slider.change(lambda *w: mix_message(dict(zip(service.emotions, w, strict=True)), service.emotions),
                          sliders, message, queue=False, show_progress="hidden", api_visibility="private")  # fmt: skip
        button.click(lambda *args: speak_on_page(service, *args), [text, speaker, guidance, steps, seed, *sliders],
                     [message, audio, mel], api_name="speak", concurrency_limit=service.worker.queue_size + 1)  # fmt: skip
    return page


def create_server(service: SpeechService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
    """The FastAPI app: ``/api/tts`` and ``/api/info`` first, the page mounted at ``/``."""
    gr = import_gradio()
    from fastapi import FastAPI

    from .http_api import api_router

    server = FastAPI(title="emomix", docs_url=None, redoc_url=None, openapi_url=None)
    server.include_router(api_router(service))
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(server, build_page(service), path="/", server_name=host, server_port=port,
                               ssr_mode=False, pwa=False, mcp_server=False, theme=theme,
                               footer_links=[], enable_monitoring=False)  # fmt: skip


def check_port(host: str, port: int) -> None:
    """EmomixError unless ``host:port`` can be bound now (uvicorn would log and exit instead)."""
    import socket

    if not 0 < port < 65536:
        raise EmomixError(f"--port must be between 1 and 65535, got {port}")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise EmomixError(f"cannot listen on {host}:{port} ({error.strerror}); pass another --port "
                          "or --host") from None


def run_app(model: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
            max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, queue_size: int = DEFAULT_QUEUE_SIZE,
            threads: int | None = None, console=None) -> None:
    """Load the model, build the server and serve until interrupted; ``threads``: torch's CPU
    threads for synthesis (None: torch's default)."""
    import_gradio()
    import uvicorn

    check_port(host, port)
    service = SpeechService.load(model, max_text_chars, queue_size, threads=threads)
    server = create_server(service, host, port)
    service.warm_up()
    if console is not None:
        console.print(f"[green]emomix app[/] on http://{host}:{port}/ (API: /api/tts, /api/info); "
                      "Ctrl+C stops it", highlight=False)
    try:
        uvicorn.run(server, host=host, port=port, log_level="warning")
    finally:
        service.close()
