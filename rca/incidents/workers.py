"""The bounded worker pool: ``workers`` dispatcher threads claim queued incidents from the
store, read their windows from the source and run :func:`rca.incidents.analysis.analyse` in a
pool of as many worker processes (``processes=True``, the default of ``rca serve``: the analysis
never holds the server's interpreter, so health checks stay fast) or inline on the thread.

Workers start with the ``forkserver`` method: the server process has Kafka and uvicorn threads,
which ``fork`` would copy in an undefined state; the fork server imports the analysis modules
once, so each worker starts warm.

A worker process that dies (the OOM killer's ``kill -9``) breaks the whole process pool: every
analysis running then is given back to the queue (:meth:`IncidentStore.release`, at most
``MAX_ATTEMPTS`` tries each) and the pool is rebuilt. Workers die with the server: a killed
server would otherwise leave them (and the fork server, which waits for them) running.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import datetime as dt
import logging
import math
import multiprocessing
import os
import select
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import networkx as nx
import pandas as pd

from rca.compute import limit_threads, torch_threads
from rca.errors import RCAInputError
from rca.incidents.analysis import AnalysisJob, AnalysisOutcome, analyse, warm_up
from rca.incidents.sources import WindowSource
from rca.incidents.store import IncidentStore

log = logging.getLogger(__name__)

_PRELOAD = ["rca.incidents.analysis", "rca.methods", "rca.report"]


def _die_with(server_pid: int) -> None:
    """End this worker when the server process ends, however it ends. A worker's parent is the
    fork server, so ``PR_SET_PDEATHSIG`` covers only the fork server's death; the server is
    watched through a pidfd (readable once it exits; immune to pid reuse)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    try:
        server = os.pidfd_open(server_pid)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except OSError:  # no pidfds (Linux before 5.3, a strict seccomp profile): no watch
        return

    def watch() -> None:
        select.select([server], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="rca-server-watch", daemon=True).start()


def _init_worker(threads: int, server_pid: int, nice: int) -> None:
    """Each worker process dies with the server and uses its share of the cores (torch would
    take them all) at a lower scheduling priority: analyses are batch work, the API's answers
    are not."""
    _die_with(server_pid)
    with contextlib.suppress(OSError):  # not allowed here: run at normal priority
        os.nice(nice)
    limit_threads(threads)


def worker_processes(processes: int, threads: int, nice: int = 10) -> cf.ProcessPoolExecutor:
    """``processes`` warm worker processes (fork server, analysis modules preloaded) that die
    with this process, each with ``threads`` torch threads at scheduling priority ``nice``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return cf.ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=_init_worker,
        initargs=(threads, os.getpid(), nice),
    )


class AnalysisPool:
    """Runs queued analyses; see the module docstring."""

    def __init__(
        self,
        store: IncidentStore,
        source: WindowSource | None,
        *,
        workers: int = 2,
        processes: bool = True,
        history_seconds: float = 3600.0,
        call_graph: nx.DiGraph | None = None,
        lease_seconds: float = 900.0,
        poll_seconds: float = 1.0,
        on_finished: Callable[[str], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        analysis: Callable[[AnalysisJob], AnalysisOutcome] = analyse,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.store = store
        self.source = source
        self.workers = workers
        self.processes = processes
        self.history_seconds = history_seconds
        self.call_graph = call_graph
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.on_finished = on_finished
        self.clock = clock or store.clock
        # What runs one job (a module-level function: it is pickled to the worker processes).
        self.analysis = analysis
        self.name = f"rca-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._executor: cf.ProcessPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._ready = threading.Event()
        self._seconds_per_analysis = 5.0  # running mean, for Retry-After
        self.completed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.store.single_writer:
            recovered = self.store.recover()
            if recovered:
                log.info("requeued %d analyses left running by a previous process", recovered)
        if self.processes:
            self._executor = self._new_executor()
        threading.Thread(target=self._warm, name="rca-warm-up", daemon=True).start()
        for k in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"rca-worker-{k}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop claiming; wait for running analyses up to the timeout. Analyses cut short stay
        'running' in the store and are claimed again (by the next start or another replica)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_seconds)
        if self._executor is not None:
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.join(timeout=timeout_seconds)
                if process.is_alive():
                    process.kill()
                    process.join(timeout=2)

    def wake(self) -> None:
        """Work arrived: stop waiting for the next poll."""
        self._wake.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def retry_after_seconds(self, queued: int) -> int:
        """When a rejected client could try again: the time the queue takes to drain."""
        seconds = queued * self._seconds_per_analysis / self.workers
        return int(min(300, max(1, math.ceil(seconds))))

    # -- internals --------------------------------------------------------------------------

    def _new_executor(self) -> cf.ProcessPoolExecutor:
        return worker_processes(self.workers, torch_threads(share=self.workers))

    def _warm(self) -> None:
        try:
            if self._executor is not None:
                futures = [self._executor.submit(warm_up) for _ in range(self.workers)]
                for future in futures:
                    future.result()
            else:
                warm_up()
            self._ready.set()
        except Exception:  # pragma: no cover - logged; readiness stays false
            log.exception("warming up the analysis workers failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                row = self.store.claim(self.name, self.lease_seconds)
            except Exception:
                log.exception("claiming an incident failed")
                row = None
            if row is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._run(row)

    def _run(self, row: dict[str, Any]) -> None:
        incident_id = row["id"]
        started = self.clock()
        try:
            job, bounds = self._job(row)
            outcome = self._execute(job)
        except RCAInputError as exc:
            self.store.fail(incident_id, self.name, str(exc))
            self._after(incident_id)
            return
        except BrokenProcessPool:
            status = self.store.release(
                incident_id, self.name, "an analysis process died (out of memory?)"
            )
            log.warning("an analysis process died during %s: %s", incident_id, status)
            if status == "failed":
                self._after(incident_id)
            return
        except Exception as exc:
            log.exception("analysis of %s failed", incident_id)
            self.store.fail(incident_id, self.name, f"internal error: {type(exc).__name__}: {exc}")
            self._after(incident_id)
            return
        elapsed = (self.clock() - started).total_seconds()
        self._seconds_per_analysis = 0.8 * self._seconds_per_analysis + 0.2 * elapsed
        if not self.store.finish(
            incident_id,
            self.name,
            outcome.result,
            outcome.timings,
            outcome.report_html,
            window=(*bounds, outcome.onset.to_pydatetime()),
            top=outcome.top,
        ):
            log.warning("analysis of %s finished after its claim was lost", incident_id)
            return
        self.completed += 1
        self._after(incident_id)

    def _after(self, incident_id: str) -> None:
        """``on_finished`` for every analysis that ended, done or failed."""
        if self.on_finished is not None:
            try:
                self.on_finished(incident_id)
            except Exception:
                log.exception("after-analysis hook failed for %s", incident_id)

    def _job(self, row: dict[str, Any]) -> tuple[AnalysisJob, tuple[dt.datetime, ...]]:
        if self.source is None:
            raise RCAInputError(
                "this server has no window source (run with ingest, or set RCA_INGEST_URL)"
            )
        onset = None if row["onset"] is None else pd.Timestamp(row["onset"])
        # An alert without rca_onset: the change came before its startsAt.
        not_after = None if onset is not None or not row.get("starts_at") else row["starts_at"]
        not_after = None if not_after is None else pd.Timestamp(not_after)
        start = pd.Timestamp(row["window_start"])
        end = min(pd.Timestamp(row["window_end"]), pd.Timestamp(self.clock()))
        if onset is not None and end <= onset:
            raise RCAInputError(
                f"no data after the onset yet ({onset.isoformat()}): the window ends "
                f"{end.isoformat()}"
            )
        first = start - pd.Timedelta(seconds=self.history_seconds)
        services = row["services"]
        missing = RCAInputError(
            f"no data between {start.isoformat()} and {end.isoformat()}"
            + (f" for services {', '.join(services)}" if services else "")
            + ": nothing was ingested for that time. Check that collectors send to Kafka and "
            "that ingest reads it (/readyz: consumer, series, newest_sample)"
        )
        try:
            frame = self.source.window(first, end, services)
        except RCAInputError as exc:
            raise missing from exc
        history = frame.loc[frame.index < start]
        window = frame.loc[frame.index >= start]
        window = window.loc[:, window.notna().any(axis=0)]
        if window.shape[1] == 0 or len(window.index) < 2:
            raise missing
        history = history.reindex(columns=window.columns) if len(history.index) >= 2 else None
        job = AnalysisJob(
            incident_id=row["id"],
            title=row.get("title") or "incident",
            method=row["method"],
            window=window,
            onset=onset,
            history=history,
            call_graph=self.call_graph,
            symptoms=tuple(row.get("symptoms") or ()),
            onset_not_after=not_after,
            learned_graph=self._learned_graph(),
        )
        return job, (window.index[0].to_pydatetime(), window.index[-1].to_pydatetime())

    def _learned_graph(self) -> dict[str, Any] | None:
        """The newest graph fitted in the background, its version in its stats."""
        latest = self.store.latest_graph()
        if latest is None:
            return None
        graph = dict(latest["graph"])
        graph["stats"] = {**graph.get("stats", {}), "graph_version": float(latest["version"])}
        return graph

    def _execute(self, job: AnalysisJob) -> AnalysisOutcome:
        if not self.processes:
            return self.analysis(job)
        with self._executor_lock:
            executor = self._executor
        assert executor is not None
        try:
            return executor.submit(self.analysis, job).result()
        except BrokenProcessPool:
            self._replace_executor(executor)
            raise

    def _replace_executor(self, broken: cf.ProcessPoolExecutor) -> None:
        """A new pool in place of ``broken``, once: every analysis that was running on it
        ends with ``BrokenProcessPool``, and the first to get here replaces it."""
        with self._executor_lock:
            if self._executor is not broken or self._stop.is_set():
                return
            self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)
