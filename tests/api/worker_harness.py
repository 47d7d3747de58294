"""For the worker-pool tests: an analysis a test can kill mid-way, and a server process (run
as a script) that holds a pool of worker processes and prints their process ids.

The first attempt of each incident writes its process id to :func:`gate` and waits to be
killed (``kill -9``, as the OOM killer would); later attempts run the real analysis.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from rca.incidents.analysis import AnalysisJob, AnalysisOutcome, analyse


def gate(incident_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"rca-test-gate-{incident_id}"


def analyse_after_a_kill(job: AnalysisJob) -> AnalysisOutcome:
    marker = gate(job.incident_id)
    if not marker.exists():
        partial = marker.with_suffix(".partial")
        partial.write_text(str(os.getpid()))
        partial.rename(marker)  # the test never reads half a pid
        time.sleep(600)
    return analyse(job)


def _serve(database: str) -> None:
    from rca.incidents.store import IncidentStore
    from rca.incidents.workers import AnalysisPool

    pool = AnalysisPool(IncidentStore(database), None, workers=2, processes=True)
    pool.start()
    deadline = time.monotonic() + 300
    while not pool.ready and time.monotonic() < deadline:
        time.sleep(0.1)
    executor = pool._executor
    assert executor is not None
    print(" ".join(str(pid) for pid in executor._processes), flush=True)
    time.sleep(600)  # until killed


if __name__ == "__main__":
    _serve(sys.argv[1])
