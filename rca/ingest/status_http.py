"""A small HTTP endpoint beside the consumer: ``GET /health`` (JSON counters, lag, last commit)
and ``GET /window?start=&end=&services=a,b`` (the window as pandas' ``split`` JSON: ``index`` in
unix nanoseconds, ``columns``, ``data`` with ``null`` for NaN)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from rca.errors import RCAInputError
from rca.store.window_store import WindowStore


def window_json(store: WindowStore, query: dict[str, list[str]]) -> dict[str, object]:
    """The ``/window`` body for parsed query parameters."""
    services = query.get("services", [""])[0]
    window = store.window(
        query["start"][0],
        query["end"][0],
        [s for s in services.split(",") if s] if services else None,
    )
    data = window.to_numpy()
    return {
        "index": window.index.as_unit("ns").asi8.tolist(),
        "columns": list(window.columns),
        "data": np.where(np.isnan(data), None, data).tolist(),
    }


def serve_status(
    host: str, port: int, store: WindowStore, health: Callable[[], dict[str, object]]
) -> ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; ``port`` 0 picks a free one
    (``server.server_address`` tells which)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            try:
                if url.path == "/health":
                    self._reply(200, health())
                elif url.path == "/window":
                    self._reply(200, window_json(store, parse_qs(url.query)))
                else:
                    self._reply(404, {"error": f"no such path {url.path}"})
            except (RCAInputError, KeyError) as exc:
                self._reply(400, {"error": str(exc)})

        def _reply(self, status: int, body: dict[str, object]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: health probes would flood the log."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="rca-ingest-http", daemon=True).start()
    return server
