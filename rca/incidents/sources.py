"""Where the analyses' windows come from.

- In ``rca serve`` (ingest in the same process) the :class:`~rca.store.window_store.WindowStore`
  itself is the source: it has ``window``, ``services`` and ``newest``.
- With ``--no-ingest`` (API-only replicas), :class:`IngestHttpSource` asks the ingest workers'
  status endpoint (``GET /window``, :mod:`rca.ingest.status_http`). Each worker holds the
  services of its partitions, so every address the URL's host resolves to (a headless
  Service lists every worker) is asked and the columns are put side by side.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlencode, urlparse, urlunparse

import httpx
import numpy as np
import pandas as pd

from rca.errors import RCAInputError
from rca.window import Window, check_window, to_timestamp


class WindowSource(Protocol):
    """What the worker pool needs from a source of windows."""

    def window(self, start: object, end: object, services: Iterable[str] | None = None) -> Window:
        """Samples in ``[start, end]`` (all services when ``None``); raises
        :class:`~rca.errors.RCAInputError` when there are none."""
        ...

    def services(self) -> list[str]: ...

    def newest(self) -> pd.Timestamp | None: ...


class IngestHttpSource:
    """Windows from the ingest workers' ``GET /window`` (see the module docstring)."""

    def __init__(self, url: str, token: str | None = None, timeout_seconds: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        # The workers' GET /window asks for the API's token when one is set.
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _bases(self) -> list[str]:
        parsed = urlparse(self.url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise RCAInputError(f"cannot resolve the ingest workers at {self.url}: {exc}") from exc
        addresses = sorted({info[4][0] for info in infos})
        bases = []
        for address in addresses:
            netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            bases.append(urlunparse(parsed._replace(netloc=netloc)))
        return bases or [self.url]

    def window(self, start: object, end: object, services: Iterable[str] | None = None) -> Window:
        query = {
            "start": str(to_timestamp(start).value / 1e9),
            "end": str(to_timestamp(end).value / 1e9),
        }
        if services is not None:
            query["services"] = ",".join(services)
        frames, errors = [], []
        with httpx.Client(timeout=self.timeout_seconds, headers=self.headers) as client:
            for base in self._bases():
                try:
                    reply = client.get(f"{base}/window?{urlencode(query)}")
                except httpx.HTTPError as exc:
                    errors.append(f"{base}: {exc}")
                    continue
                if reply.status_code in (400, 413):  # nothing in the range; too many cells
                    errors.append(f"{base}: {reply.json().get('error', reply.text)}")
                    continue
                if reply.status_code != 200:
                    errors.append(f"{base}: HTTP {reply.status_code}")
                    continue
                frames.append(_from_split(reply.json()))
        if not frames:
            raise RCAInputError(f"no ingest worker had data for the window: {'; '.join(errors)}")
        window = pd.concat(frames, axis=1).sort_index()
        window = window.loc[:, ~window.columns.duplicated()]
        check_window(window)
        return window

    def services(self) -> list[str]:
        return []  # not listed by the status endpoint; label matching then takes names as is

    def newest(self) -> pd.Timestamp | None:
        return None

    def reachable(self) -> bool:
        """Whether at least one worker answers ``GET /health``."""
        try:
            bases = self._bases()
        except RCAInputError:
            return False
        with httpx.Client(timeout=2.0) as client:
            for base in bases:
                try:
                    if client.get(f"{base}/health").status_code == 200:
                        return True
                except httpx.HTTPError:
                    continue
        return False


def _from_split(body: dict) -> Window:
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(body["index"], dtype=np.int64), utc=True))
    data = np.array(
        [[np.nan if v is None else v for v in row] for row in body["data"]], dtype=float
    ).reshape(len(index), len(body["columns"]))
    return pd.DataFrame(data, index=index.rename("time"), columns=[str(c) for c in body["columns"]])
