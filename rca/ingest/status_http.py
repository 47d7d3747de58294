"""A small HTTP endpoint beside the consumer: ``GET /health`` (JSON counters, lag, last commit)
and ``GET /window?start=&end=&services=a,b`` (the window as pandas' ``split`` JSON: ``index`` in
unix nanoseconds, ``columns``, ``data`` with ``null`` for NaN).

``/window`` is bounded: behind a bearer token when one is given (the API's, ``RCA_API_TOKEN``;
``/health`` stays open for probes), at most ``max_cells`` series x steps per request (413), at
most ``max_concurrent`` requests at once (503 with ``Retry-After``). Every error is a JSON answer,
never a closed connection; the JSON never holds ``NaN`` or ``Infinity``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from rca.errors import RCAInputError
from rca.store.window_store import WindowStore, WindowTooLarge
from rca.window import to_timestamp

log = logging.getLogger(__name__)

# Seconds a client waits before asking again when every /window slot is busy.
RETRY_AFTER_SECONDS = 1
# A request that sends nothing for this long is dropped (a thread is held meanwhile).
SOCKET_TIMEOUT_SECONDS = 30


def window_json(
    store: WindowStore, query: dict[str, list[str]], max_cells: int | None = None
) -> dict[str, object]:
    """The ``/window`` body for parsed query parameters; ``RCAInputError`` for a bad query."""
    if "start" not in query or "end" not in query:
        raise RCAInputError("/window needs start and end (unix seconds or ISO times)")
    try:
        start, end = to_timestamp(query["start"][0]), to_timestamp(query["end"][0])
    except (ValueError, OverflowError) as exc:  # out of pandas' range (years 1677-2262)
        raise RCAInputError(f"start or end out of range: {exc}") from exc
    services = query.get("services", [""])[0]
    window = store.window(
        start, end, [s for s in services.split(",") if s] if services else None, max_cells
    )
    data = window.to_numpy()
    return {
        "index": window.index.as_unit("ns").asi8.tolist(),
        "columns": list(window.columns),
        "data": np.where(np.isfinite(data), data, None).tolist(),
    }


class StatusServer(ThreadingHTTPServer):
    """The endpoint's server, holding what its handlers share."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: WindowStore,
        health: Callable[[], dict[str, object]],
        token: str | None,
        max_cells: int | None,
        max_concurrent: int,
    ) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.health = health
        self.token = token.encode() if token else None
        self.max_cells = max_cells
        self.window_slots = threading.BoundedSemaphore(max_concurrent)


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, allow_nan=False).encode()


class _Handler(BaseHTTPRequestHandler):
    server: StatusServer
    timeout = SOCKET_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            self._reply(200, self.server.health())
        elif url.path == "/window":
            self._window(parse_qs(url.query))
        else:
            self._reply(404, {"error": f"no such path {url.path}"})

    def _window(self, query: dict[str, list[str]]) -> None:
        if not self._authorized():
            challenge = {"WWW-Authenticate": "Bearer"}
            self._reply(401, {"error": "a bearer token is required"}, challenge)
            return
        if not self.server.window_slots.acquire(blocking=False):
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            self._reply(503, {"error": "too many /window requests at once"}, retry)
            return
        # The slot covers building the answer, not sending it: a client that has read its
        # answer may ask again at once without finding its own request still counted.
        try:
            status, body = 200, window_json(self.server.store, query, self.server.max_cells)
            payload = _encode(body)
        except WindowTooLarge as exc:
            status, payload = 413, _encode({"error": str(exc)})
        except RCAInputError as exc:
            status, payload = 400, _encode({"error": str(exc)})
        except Exception:  # a bug must cost one answer, not the connection or the thread
            log.exception("GET /window failed")
            status, payload = 500, _encode({"error": "internal error"})
        finally:
            self.server.window_slots.release()
        self._send(status, payload)

    def _authorized(self) -> bool:
        if self.server.token is None:
            return True
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        # latin-1 gives back the header's bytes: compare_digest refuses non-ASCII str
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("latin-1", "replace"), self.server.token
        )

    def _reply(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, _encode(body), headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: health probes would flood the log."""


def serve_status(
    host: str,
    port: int,
    store: WindowStore,
    health: Callable[[], dict[str, object]],
    *,
    token: str | None = None,
    max_cells: int | None = None,
    max_concurrent: int = 4,
) -> StatusServer:
    """Start the endpoint on a daemon thread; ``port`` 0 picks a free one
    (``server.server_address`` tells which)."""
    server = StatusServer((host, port), store, health, token, max_cells, max_concurrent)
    threading.Thread(target=server.serve_forever, name="rca-ingest-http", daemon=True).start()
    return server
