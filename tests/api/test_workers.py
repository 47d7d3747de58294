"""The analysis worker processes: one killed mid-analysis (``kill -9``, as the OOM killer
does) loses no incident, and none outlives a killed server."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from patience import wait_for
from worker_harness import analyse_after_a_kill, gate

from rca.incidents.store import IncidentStore, NewIncident
from rca.incidents.workers import AnalysisPool

pytestmark = pytest.mark.slow  # real worker processes


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_killed_worker_process_sends_its_analyses_back_to_the_queue(
    tmp_path, window_store, incident
):
    """Both analyses running when one worker dies (the pool breaks under both) are retried
    on a rebuilt pool and finish; before, both failed at attempt 1."""
    store = IncidentStore(str(tmp_path / "incidents.db"))
    pool = AnalysisPool(
        store, window_store, workers=2, analysis=analyse_after_a_kill, poll_seconds=0.2
    )
    pool.start()
    try:
        now = dt.datetime.now(dt.UTC)
        ids = [
            store.insert(
                NewIncident(
                    source="api",
                    method="baro",
                    not_before=now,
                    window_start=incident.window_start.to_pydatetime(),
                    window_end=incident.end.to_pydatetime(),
                    onset=incident.onset.to_pydatetime(),
                )
            )
            for _ in range(2)
        ]
        pool.wake()
        wait_for(lambda: all(gate(i).exists() for i in ids), "both analyses to start")
        first = int(gate(ids[0]).read_text())
        os.kill(first, signal.SIGKILL)

        def finished() -> bool:
            return all(store.get(i)["status"] in ("done", "failed") for i in ids)

        wait_for(finished, "the analyses to finish")
        for incident_id in ids:
            row = store.get(incident_id)
            assert (row["status"], row["attempts"], row["error"]) == ("done", 2, None)
            assert row["top"][0]["service"] == incident.truth
        executor = pool._executor
        assert executor is not None and first not in executor._processes  # rebuilt
    finally:
        pool.stop()
        for incident_id in ids:
            gate(incident_id).unlink(missing_ok=True)


def test_worker_processes_die_with_a_killed_server(tmp_path):
    script = Path(__file__).with_name("worker_harness.py")
    server = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "incidents.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        workers = [int(pid) for pid in server.stdout.readline().split()]
        assert len(workers) == 2 and all(alive(pid) for pid in workers)
    finally:
        server.kill()  # SIGKILL: no cleanup of its own runs
        server.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to exit")
