"""``emomix app``: the listening room (a page with a slider per emotion) and the HTTP API.

- :mod:`.serve`: request parsing, the bounded queue and the one loaded model (no Gradio, no
  HTTP: unit-tested alone);
- :mod:`.http_api`: ``GET /api/tts`` and ``GET /api/info`` (Coqui ``tts-server``'s convention);
- :mod:`.page`: the Gradio page, the server that carries both, and :func:`~.page.run_app`.

Importing this package is cheap (the CLI reads the defaults below at start-up); Gradio and
FastAPI come with the ``[app]`` extra.
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"  # loopback only unless --host says otherwise
DEFAULT_PORT = 7860
DEFAULT_MAX_TEXT_CHARS = 500  # about 6 sentences: a few seconds of synthesis on 2 cores
DEFAULT_QUEUE_SIZE = 8  # requests waiting behind the running one; past them: 503
MAX_STEPS = 100  # a bound on one request's work (the demo model's default is 10)
MAX_GUIDANCE = 10.0  # the page's slider stops at 4
MAX_SEED = 2**63 - 1
INSTALL_HINT = "pip install 'emomix[app]'"

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_TEXT_CHARS", "DEFAULT_PORT", "DEFAULT_QUEUE_SIZE",
           "INSTALL_HINT", "MAX_GUIDANCE", "MAX_SEED", "MAX_STEPS"]
