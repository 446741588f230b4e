"""``GET /api/tts`` and ``GET /api/info`` (Coqui ``tts-server``'s convention) over a
:class:`~.serve.SpeechService`: the HTTP status codes are all this module adds.

- 200 ``audio/wav`` (16-bit PCM), with the effective mix in ``X-Emomix-Mix``;
- 400 and one line of text for bad input (any :class:`EmomixError`: unknown emotion, a weight
  below 0 or a sum above 1, empty or over-long text, text the voice cannot read, …);
- 503 with ``Retry-After`` when the queue is full; 500 and one line for a bug (logged).

FastAPI comes with the ``[app]`` extra (Gradio depends on it).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..audio import wav_bytes
from ..errors import EmomixError
from ..synthesis import mix_label
from .serve import ServerBusy, SpeechService, parse_tts_query

log = logging.getLogger("emomix.app")


def one_line(status: int, message: str, headers: dict | None = None) -> PlainTextResponse:
    """A plain-text answer of one line (newlines in ``message`` folded)."""
    return PlainTextResponse(" ".join(str(message).split()) + "\n", status_code=status, headers=headers)


def api_router(service: SpeechService) -> APIRouter:
    """The API's routes, bound to ``service``."""
    router = APIRouter()

    @router.get("/api/info")
    def info() -> JSONResponse:
        return JSONResponse(service.info())

    @router.get("/api/tts")
    async def tts(request: Request) -> Response:
        try:
            speech = parse_tts_query(request.query_params.multi_items(), service.emotions,
                                     service.max_text_chars)
            result = await asyncio.wrap_future(service.submit(speech))  # cancelled if the client leaves
        except ServerBusy as busy:
            return one_line(503, f"busy: {busy}", {"Retry-After": str(busy.retry_after)})
        except EmomixError as error:
            return one_line(400, f"error: {error}")
        except Exception as error:  # a bug: the server stays up, the log keeps the traceback
            log.exception("synthesis failed")
            return one_line(500, f"internal error: {type(error).__name__}: {error}; see the server log")
        return Response(wav_bytes(result.wav, result.sample_rate), media_type="audio/wav",
                        headers={"X-Emomix-Mix": mix_label(result.weights_used)})

    return router
