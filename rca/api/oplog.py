"""The operator's log of ``rca serve``: one line per analysis accepted, done or failed (logger
``rca.analyses``), so ``kubectl logs`` tells what the server did without asking the API."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from rca.incidents.store import IncidentStore

log = logging.getLogger("rca.analyses")


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def accepted(row: dict[str, Any]) -> None:
    """``incident ID accepted (api): method run, window START .. END, onset ONSET``."""
    onset = "found by the analysis" if row.get("onset") is None else _when(row["onset"])
    log.info(
        "incident %s accepted (%s%s): method %s, window %s .. %s, onset %s",
        row["id"],
        row["source"],
        f" alert {row['title']!r}" if row["source"] != "api" and row.get("title") else "",
        row["method"],
        _when(row.get("window_start")),
        _when(row.get("window_end")),
        onset,
    )


def settled(row: dict[str, Any]) -> None:
    """``incident ID done: method run, 4.2 s, top cause svc07 (svc07:metric)`` or
    ``incident ID failed: method run, 0.1 s: the reason``."""
    started, finished = row.get("started_at"), row.get("finished_at")
    seconds = (finished - started).total_seconds() if started and finished else float("nan")
    if row["status"] == "done":
        top = (row.get("top") or [{}])[0]
        cause = f"{top['service']} ({top['series']})" if top.get("service") else "none"
        log.info(
            "incident %s done: method %s, %.1f s, top cause %s",
            row["id"],
            row["method"],
            seconds,
            cause,
        )
    elif row["status"] == "failed":
        log.warning(
            "incident %s failed: method %s, %.1f s: %s",
            row["id"],
            row["method"],
            seconds,
            row.get("error"),
        )


def after_analysis(
    store: IncidentStore, then: Sequence[Callable[[str], None]] = ()
) -> Callable[[str], None]:
    """The worker pool's hook: log how the analysis ended, then run ``then`` (write-back)."""

    def hook(incident_id: str) -> None:
        row = store.get(incident_id)
        if row is not None:
            settled(row)
        for after in then:
            after(incident_id)

    return hook
