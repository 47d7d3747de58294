"""The learned causal graph, fitted from the stored history in the background.

At start (when the newest version is older than ``every_seconds``) and then every
``every_seconds``, the refresher reads the last ``history_seconds`` of every series from the
window source, fits ``run``'s learned graph on it in a worker process of its own (minutes of
torch work: off the server's interpreter, never in the way of an alert's analysis, at a lower
scheduling priority than the analyses), and saves it as the next version in the incident
store. Analyses use the newest version instead of
learning per incident, and ``GET /v1/graph`` serves it. Until the store holds
``min_history_seconds`` (the history an analysis would learn from itself) nothing is fitted:
a graph learned from a few minutes would be worse than learning per incident. A fit that cannot
run (too little history yet, the source unreachable) is logged and tried again after
``retry_seconds``.

Several replicas may share one incident database; one of them fits. The background loop fits
only while it holds the store's ``graph-refresh`` lease, taken for twice the refresh period and
renewed before and after every fit: the others read the versions it saves, and take over once
a holder that died lets the lease lapse. A clean shutdown gives the lease up (unless a fit is
still running, which may yet save: then it lapses).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import networkx as nx
import pandas as pd

from rca.compute import torch_threads
from rca.errors import RCAInputError
from rca.incidents.sources import WindowSource
from rca.incidents.store import IncidentStore
from rca.incidents.workers import worker_processes
from rca.window import Window

log = logging.getLogger(__name__)

# Fewer rows than this say too little about how series follow each other to learn from.
MIN_HISTORY_ROWS = 60
LEASE = "graph-refresh"


def fit_graph(history: Window, call_graph: nx.DiGraph | None, seed: int = 0) -> dict[str, Any]:
    """``run``'s learned graph fitted on ``history``, as stored (module level: it runs in a
    worker process)."""
    from rca.methods.run import RUNConfig

    return RUNConfig(seed=seed).learned_graph().fit(history, call_graph).to_json()


class GraphRefresher:
    """See the module docstring; ``refresh`` is one fit, for a caller that cannot wait."""

    def __init__(
        self,
        store: IncidentStore,
        source: WindowSource,
        *,
        every_seconds: float,
        history_seconds: float,
        min_history_seconds: float = 0.0,
        call_graph: nx.DiGraph | None = None,
        retry_seconds: float = 300.0,
        processes: bool = True,
    ) -> None:
        self.store = store
        self.source = source
        self.processes = processes
        self.every_seconds = every_seconds
        self.history_seconds = history_seconds
        self.min_history_seconds = min(min_history_seconds, history_seconds)
        self.call_graph = call_graph
        self.retry_seconds = min(retry_seconds, every_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Renewed at every fit; a fit may take a while, so twice the period.
        self.lease_seconds = 2 * every_seconds

    def refresh(self) -> int:
        """Fit on the newest history and save it; the new version. Raises
        :class:`~rca.errors.RCAInputError` when there is too little history."""
        newest = self.source.newest()
        if newest is None:
            raise RCAInputError("no samples stored yet")
        start = newest - pd.Timedelta(seconds=self.history_seconds)
        history = self.source.window(start, newest)
        # The store answers on its whole grid: rows before the first sample are empty.
        history = history.loc[history.notna().any(axis=1)]
        history = history.loc[:, history.notna().sum() >= MIN_HISTORY_ROWS]
        if len(history.index) < MIN_HISTORY_ROWS or history.shape[1] < 2:
            raise RCAInputError(
                f"{len(history.index)} rows of {history.shape[1]} series with data: need "
                f"{MIN_HISTORY_ROWS} rows of at least 2 series to learn from"
            )
        span = (history.index[-1] - history.index[0]).total_seconds()
        if span < self.min_history_seconds:
            raise RCAInputError(
                f"{span:.0f} s of history stored, {self.min_history_seconds:.0f} s wanted"
            )
        started = time.perf_counter()
        if self.processes:
            # One process per fit, gone after it: a day of history in torch is a lot of memory
            # to keep between hourly fits.
            with worker_processes(1, torch_threads(), nice=15) as fitter:
                graph = fitter.submit(fit_graph, history, self.call_graph).result()
        else:
            graph = fit_graph(history, self.call_graph)
        seconds = time.perf_counter() - started
        version = self.store.save_graph(
            graph,
            history.index[0].to_pydatetime(),
            history.index[-1].to_pydatetime(),
            seconds,
        )
        log.info(
            "causal graph version %d: %d series, %d edges, %d rows of history, fitted in %.1f s",
            version,
            len(graph["nodes"]),
            len(graph["edges"]),
            len(history.index),
            seconds,
        )
        return version

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rca-graph-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop fitting; a fit under way dies with the server (its process watches it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
            if self._thread.is_alive():  # still fitting: it may yet save; let the lease lapse
                return
        try:
            self.store.release_lease(LEASE, self.holder)
        except Exception:  # the database may be gone already; the lease then lapses
            log.warning("could not give the causal graph lease up", exc_info=True)

    def _due_in(self) -> float:
        latest = self.store.latest_graph(with_graph=False)
        if latest is None:
            return 0.0
        age = (self.store.clock() - latest["fitted_at"]) / dt.timedelta(seconds=1)
        return max(0.0, self.every_seconds - age)

    def step(self) -> float:
        """One turn of the background loop: fit if this replica holds (or now takes) the lease;
        the seconds until the next turn."""
        retry = self.retry_seconds
        try:
            if not self.store.take_lease(LEASE, self.holder, self.lease_seconds):
                wait = max(self._due_in(), retry)
                held = self.store.lease_holder(LEASE)
                log.info(
                    "causal graph fitted by another replica (%s); next look in %.0f s",
                    held[0] if held else "its lease just lapsed",
                    wait,
                )
                return wait
            self.refresh()
            # Renewed again once the fit is done: the lease must cover the wait to the next
            # turn however long the fit took.
            self.store.take_lease(LEASE, self.holder, self.lease_seconds)
            return self.every_seconds
        except RCAInputError as exc:
            log.info("causal graph not fitted yet (%s); next try in %.0f s", exc, retry)
        except Exception:
            log.exception("fitting the causal graph failed; next try in %.0f s", retry)
        return retry

    def _run(self) -> None:
        wait = self._due_in()
        while not self._stop.wait(wait):
            wait = self.step()
