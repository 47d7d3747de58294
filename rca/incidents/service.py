"""What the API's routes call: open incidents (REST or alerts), read them, report readiness.

Every function here takes and returns plain data; the routes only parse and map to schemas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rca.errors import RCAInputError
from rca.incidents.alerts import AlertEvent
from rca.incidents.sources import WindowSource
from rca.incidents.store import AlertsRecorded, IncidentStore, NewIncident
from rca.incidents.workers import AnalysisPool
from rca.methods import METHODS

log = logging.getLogger(__name__)

# Longest window one analysis may ask for (the window store keeps an hour by default).
MAX_WINDOW_SECONDS = 7 * 86400.0
# How far ahead of this server's clock an alert may start (the senders' clock skew). Later
# onsets are refused (422): their incidents would wait in the queue, counted against its
# limit, until the onset came.
MAX_ALERT_LEAD_SECONDS = 600.0


class QueueFull(Exception):
    """The analysis queue is at its limit; try again after ``retry_after_seconds``."""

    def __init__(self, queued: int, retry_after_seconds: int, note: str = "") -> None:
        super().__init__(f"the analysis queue is full ({queued} waiting){note}")
        self.queued = queued
        self.retry_after_seconds = retry_after_seconds


class NotFound(Exception):
    """No incident with that id."""


@dataclass(frozen=True)
class AlertOutcome:
    id: str | None
    fingerprint: str
    status: Literal["firing", "resolved"]
    action: Literal["opened", "duplicate", "resolved", "ignored"]


@dataclass(frozen=True)
class AlertWindow:
    """How an alert becomes a window: seconds before the onset, after it, and how long after
    the onset the analysis waits for data."""

    before_seconds: float = 900.0
    after_seconds: float = 300.0
    settle_seconds: float = 60.0


def check_method(name: str) -> str:
    if name not in METHODS:
        raise RCAInputError(f"unknown method {name!r}; known: {', '.join(METHODS.names())}")
    return name


class IncidentService:
    """Incidents over a store, analysed by a pool; see the module docstring."""

    def __init__(
        self,
        store: IncidentStore,
        pool: AnalysisPool,
        source: WindowSource | None,
        *,
        default_method: str = "run",
        queue_limit: int = 64,
        alert_window: AlertWindow | None = None,
        report_key: bytes | None = None,
        ready_checks: dict[str, Callable[[], bool]] | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.source = source
        self.default_method = check_method(default_method)
        self.queue_limit = queue_limit
        self.alert_window = alert_window or AlertWindow()
        self.report_key = report_key
        self.ready_checks = dict(ready_checks or {})
        # Called with the id of an incident whose alert resolved (Grafana write-back).
        self.on_resolved: Callable[[str], object] | None = None

    # -- opening --------------------------------------------------------------------------

    def _admit(self, new: int) -> None:
        queued = self.store.queued()
        if queued + new > self.queue_limit:
            raise QueueFull(queued, self.pool.retry_after_seconds(queued))

    def submit(
        self,
        start: dt.datetime,
        end: dt.datetime,
        onset: dt.datetime | None,
        services: Sequence[str] | None,
        method: str | None,
    ) -> dict[str, Any]:
        """Queue an analysis of ``[start, end]``; without an onset the analysis finds it
        (:mod:`rca.detect.onset`). Raises :class:`QueueFull` or ``RCAInputError``."""
        if end <= start:
            raise RCAInputError("end must be after start")
        if (end - start).total_seconds() > MAX_WINDOW_SECONDS:
            raise RCAInputError(f"a window may span at most {MAX_WINDOW_SECONDS:.0f} s")
        if onset is not None and not start < onset < end:
            raise RCAInputError("the onset must lie strictly between start and end")
        chosen = check_method(method or self.default_method)
        new = NewIncident(
            source="api",
            method=chosen,
            not_before=self.store.clock(),
            title="REST query",
            window_start=start,
            window_end=end,
            onset=onset,
            services=tuple(services) if services else None,
        )
        with self.store.admission:
            self._admit(1)
            incident_id = self.store.insert(new)
        row = self.get(incident_id)  # as accepted, before a worker can claim it
        self.pool.wake()
        return row

    def on_alerts(self, events: Sequence[AlertEvent]) -> list[AlertOutcome]:
        """Firing alerts open incidents (once per episode), resolved ones close them, all in
        one transaction. New episodes are opened while the queue has room; when some do not
        fit, :class:`QueueFull` says so after the rest is stored, and the sender's retry of
        the whole notification finds the stored ones as duplicates."""
        firing = [e for e in events if e.status == "firing"]
        self._check_alerts(firing)
        window = self.alert_window
        with self.store.admission:
            recorded = self.store.record_alerts(
                [self._new_alert(e, window) for e in firing],
                [(e.dedupe_key, e.ends_at) for e in events if e.status == "resolved"],
                self.queue_limit,
            )
        if recorded.opened:
            self.pool.wake()
        for found in recorded.resolved.values():
            if found is not None and self.on_resolved is not None:
                self.on_resolved(found)
        if recorded.refused:
            queued = self.store.queued()
            raise QueueFull(
                queued,
                self.pool.retry_after_seconds(queued),
                f"; {len(recorded.refused)} of {len(recorded.refused) + len(recorded.opened)} "
                "new alerts are waiting for room (the others are stored)",
            )
        return [self._outcome(e, recorded) for e in events]

    def _check_alerts(self, firing: Sequence[AlertEvent]) -> None:
        latest = self.store.clock() + dt.timedelta(seconds=MAX_ALERT_LEAD_SECONDS)
        for event in firing:
            if event.method is not None:
                check_method(event.method)
            for name, value in (("startsAt", event.starts_at), ("onset", event.onset)):
                if value > latest:
                    raise RCAInputError(
                        f"alert {event.fingerprint}: {name} {value.isoformat()} is more than "
                        f"{MAX_ALERT_LEAD_SECONDS:.0f} s ahead of this server's clock"
                    )

    def _new_alert(self, event: AlertEvent, window: AlertWindow) -> NewIncident:
        onset = event.onset
        return NewIncident(
            source=event.source,
            method=event.method or self.default_method,
            not_before=onset + dt.timedelta(seconds=window.settle_seconds),
            title=event.title,
            window_start=onset - dt.timedelta(seconds=window.before_seconds),
            window_end=onset + dt.timedelta(seconds=window.after_seconds),
            # Without rca_onset the analysis finds the onset before startsAt (see AlertEvent).
            onset=onset if event.onset_given else None,
            services=event.scope,
            symptoms=event.symptoms,
            labels=event.labels,
            dedupe_key=event.dedupe_key,
            fingerprint=event.fingerprint,
            starts_at=event.starts_at,
            org_id=event.org_id,
            dashboard_uid=event.dashboard_uid,
            panel_id=event.panel_id,
        )

    @staticmethod
    def _outcome(event: AlertEvent, recorded: AlertsRecorded) -> AlertOutcome:
        key = event.dedupe_key
        if event.status == "resolved":
            found = recorded.resolved.get(key)
            return AlertOutcome(
                found, event.fingerprint, event.status, "resolved" if found else "ignored"
            )
        action = "opened" if key in recorded.opened else "duplicate"
        return AlertOutcome(recorded.ids[key], event.fingerprint, event.status, action)

    def known_services(self) -> list[str] | None:
        if self.source is None:
            return None
        services = self.source.services()
        return services or None

    # -- reading --------------------------------------------------------------------------

    def get(self, incident_id: str) -> dict[str, Any]:
        row = self.store.get(incident_id)
        if row is None:
            raise NotFound(incident_id)
        return row

    def get_result(self, incident_id: str) -> dict[str, Any]:
        row = self.store.get(incident_id, with_result=True)
        if row is None:
            raise NotFound(incident_id)
        return row

    def list(
        self, limit: int, offset: int, status: str | None, state: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        return self.store.list(limit, offset, status, state)

    def report(self, incident_id: str) -> str | None:
        exists, html = self.store.report(incident_id)
        if not exists:
            raise NotFound(incident_id)
        return html

    def report_signature(self, incident_id: str) -> str | None:
        """A key that opens this incident's report without the bearer token (links in Grafana
        annotations: a browser cannot add headers). ``None`` without a token."""
        if self.report_key is None:
            return None
        digest = hmac.new(self.report_key, f"report:{incident_id}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def window_status(self) -> dict[str, Any]:
        """Queue length, newest sample and number of series (where the source tells)."""
        newest = self.source.newest() if self.source is not None else None
        names = getattr(self.source, "series", None)
        return {
            "queued": self.store.queued() if self.store.ping() else None,
            "newest_sample": newest.to_pydatetime() if newest is not None else None,
            "series": len(names()) if callable(names) else None,
        }

    def readiness(self) -> dict[str, bool]:
        checks = {"store": self.store.ping(), "model": self.pool.ready}
        for name, check in self.ready_checks.items():
            try:
                checks[name] = bool(check())
            except Exception:
                checks[name] = False
        return checks


class Housekeeper:
    """A thread that, at start and every ``interval_seconds``, deletes incidents finished
    more than ``retention_seconds`` ago (``RCA_INCIDENT_RETENTION``; 0 keeps them) and fails
    queued ones that could not become due for longer than any accepted alert allows."""

    def __init__(
        self,
        service: IncidentService,
        retention_seconds: float,
        interval_seconds: float = 600.0,
    ) -> None:
        self.service = service
        self.retention_seconds = retention_seconds
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> tuple[int, int]:
        """One pass: ``(deleted, failed)``."""
        store = self.service.store
        now = store.clock()
        deleted = 0
        if self.retention_seconds > 0:
            deleted = store.delete_finished(now - dt.timedelta(seconds=self.retention_seconds))
        latest = now + dt.timedelta(
            seconds=MAX_ALERT_LEAD_SECONDS + self.service.alert_window.settle_seconds + 60
        )
        failed = store.fail_unreachable(
            latest, "the alert's onset is too far in the future to analyse"
        )
        return deleted, failed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rca-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deleted, failed = self.sweep()
                if deleted or failed:
                    log.info(
                        "housekeeping: %d old incidents deleted, %d unreachable failed",
                        deleted,
                        failed,
                    )
            except Exception:  # the database may be away for a while: try again next time
                log.exception("incident housekeeping failed")
            self._stop.wait(self.interval_seconds)
