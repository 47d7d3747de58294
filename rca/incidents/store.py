"""The incident store: one SQL table of incidents, which is also the analysis queue, and the
versions of the causal graph learned from history in the background.

SQLAlchemy Core over SQLite by default (a file path), or any SQLAlchemy URL (PostgreSQL for
several API replicas: every replica claims work from the same table). The product creates and
migrates the schema itself (:func:`migrate`, numbered steps recorded in ``rca_schema``).

Queue semantics: an accepted incident is a row with ``status='queued'`` before the API answers,
so nothing accepted is lost by a crash. A worker claims a row atomically (``UPDATE ... WHERE
status = 'queued'``; one winner) and holds a lease; a row whose lease ran out (its worker died)
is claimed again, at most ``MAX_ATTEMPTS`` times. Alert incidents are unique on
``dedupe_key`` (source + fingerprint + startsAt), so re-deliveries find the first row.

Times are stored as naive UTC (portable across dialects) and returned as aware UTC.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

Status = Literal["queued", "running", "done", "failed"]
State = Literal["open", "resolved"]
Source = Literal["api", "grafana", "alertmanager"]

MAX_ATTEMPTS = 3
SCHEMA_VERSION = 4
# Fitted causal graphs kept (newest first); older versions are deleted when one is saved.
GRAPH_VERSIONS_KEPT = 5

metadata = sa.MetaData()

schema_table = sa.Table(
    "rca_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# The table as of the newest schema version; :data:`MIGRATIONS` brings older files there.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("dedupe_key", sa.String(512), unique=True, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("title", sa.String(512), nullable=True),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("window_start", sa.DateTime, nullable=True),
    sa.Column("window_end", sa.DateTime, nullable=True),
    sa.Column("onset", sa.DateTime, nullable=True),
    sa.Column("services", sa.JSON, nullable=True),
    sa.Column("symptoms", sa.JSON, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=True),
    sa.Column("starts_at", sa.DateTime, nullable=True),
    sa.Column("ends_at", sa.DateTime, nullable=True),
    sa.Column("org_id", sa.Integer, nullable=True),
    sa.Column("dashboard_uid", sa.String(128), nullable=True),
    sa.Column("panel_id", sa.Integer, nullable=True),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime, nullable=True),
    sa.Column("not_before", sa.DateTime, nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=True),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("timings", sa.JSON, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    # The best few services of the result, for listings that should not load whole results.
    sa.Column("top", sa.JSON, nullable=True),
    sa.Column("report_html", sa.Text, nullable=True),
    # Version 2: Grafana write-back.
    sa.Column("annotation_id", sa.Integer, nullable=True),
    sa.Column("writeback_error", sa.Text, nullable=True),
)

# Version 3: each row is one version of the graph learned from history (CausalGraph.to_json).
causal_graphs = sa.Table(
    "causal_graphs",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fitted_at", sa.DateTime, nullable=False),
    sa.Column("history_start", sa.DateTime, nullable=False),
    sa.Column("history_end", sa.DateTime, nullable=False),
    sa.Column("series", sa.Integer, nullable=False),
    sa.Column("edges", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("graph", sa.JSON, nullable=False),
)

# Version 4: a named lease per background job that one replica of several should run (the
# graph fit): held by ``holder`` until ``expires_at``.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

# Columns a listing returns (the result and the report stay in the database until asked for).
_SUMMARY = [c for c in incidents.c if c.name not in ("result", "report_html")]


def _v1(conn: Connection) -> None:
    """Version 1: the incidents table without the write-back columns."""
    v1 = sa.MetaData()
    sa.Table(
        "incidents",
        v1,
        *[c._copy() for c in incidents.c if c.name not in ("annotation_id", "writeback_error")],
    )
    v1.create_all(conn)


def _v2(conn: Connection) -> None:
    """Version 2: where the Grafana annotation went (or why it did not)."""
    conn.execute(sa.text("ALTER TABLE incidents ADD COLUMN annotation_id INTEGER"))
    conn.execute(sa.text("ALTER TABLE incidents ADD COLUMN writeback_error TEXT"))


def _v3(conn: Connection) -> None:
    """Version 3: the learned causal graph's versions."""
    causal_graphs.create(conn)


def _v4(conn: Connection) -> None:
    """Version 4: leases, so that one replica of several fits the graph."""
    leases.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1, 2: _v2, 3: _v3, 4: _v4}


def database_url(value: str) -> str:
    """A SQLAlchemy URL from ``RCA_DATABASE_URL``: a URL as is, a file path as SQLite.

    >>> database_url("postgresql+psycopg://rca@db/rca")
    'postgresql+psycopg://rca@db/rca'
    >>> database_url("/var/lib/rca/incidents.db")
    'sqlite:////var/lib/rca/incidents.db'
    """
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (see :func:`database_url`); SQLite gets WAL mode and a busy
    timeout so that the API's threads and the workers can write side by side."""
    url = database_url(url)
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def schema_version(conn: Connection) -> int:
    """The version recorded in the database; 0 for an empty database."""
    if not sa.inspect(conn).has_table("rca_schema"):
        return 0
    row = conn.execute(sa.select(schema_table.c.version)).first()
    return int(row[0]) if row else 0


def migrate(engine: Engine) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`, one recorded step at a time; returns
    the version it started from. Safe to run at every start and from several replicas (each
    step runs in a transaction; a newer schema than this code knows is refused)."""
    with engine.begin() as conn:
        schema_table.create(conn, checkfirst=True)
        start = schema_version(conn)
    if start > SCHEMA_VERSION:
        raise RuntimeError(
            f"the incident database has schema version {start}, newer than this rca "
            f"({SCHEMA_VERSION}): upgrade rca"
        )
    for version in range(start + 1, SCHEMA_VERSION + 1):
        with engine.begin() as conn:
            if schema_version(conn) >= version:  # another replica did it meanwhile
                continue
            MIGRATIONS[version](conn)
            conn.execute(sa.delete(schema_table))
            conn.execute(sa.insert(schema_table).values(id=1, version=version))
    return start


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


_TIME_COLUMNS = {
    c.name for t in (incidents, causal_graphs) for c in t.c if isinstance(c.type, sa.DateTime)
}


def _row(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    for name in _TIME_COLUMNS & out.keys():
        out[name] = _aware(out[name])
    return out


@dataclass(frozen=True)
class NewIncident:
    """What opening an incident needs; times are aware UTC."""

    source: Source
    method: str
    not_before: dt.datetime
    title: str | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    onset: dt.datetime | None = None
    services: tuple[str, ...] | None = None
    symptoms: tuple[str, ...] = ()
    labels: dict[str, str] | None = None
    dedupe_key: str | None = None
    fingerprint: str | None = None
    starts_at: dt.datetime | None = None
    org_id: int | None = None
    dashboard_uid: str | None = None
    panel_id: int | None = None


@dataclass(frozen=True)
class AlertsRecorded:
    """What one notification did: the incident of each firing episode (dedupe key -> id; new
    or re-delivered), which were opened, which did not fit the queue, and the incident each
    resolved episode closed (``None`` when unknown)."""

    ids: dict[str, str]
    opened: set[str]
    refused: list[str]
    resolved: dict[str, str | None]


class IncidentStore:
    """Incidents in a SQL database; every method is one short transaction (thread-safe)."""

    def __init__(self, url: str, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = make_engine(url)
        self.clock = clock
        migrate(self.engine)
        # Admission (count, then insert) is atomic within this process; across replicas the
        # queue limit is approximate by the number of replicas racing, which is harmless.
        self.admission = threading.Lock()

    @property
    def single_writer(self) -> bool:
        """SQLite: one API process owns the file, so its 'running' rows at start are orphans."""
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(1))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    # -- opening ------------------------------------------------------------------------

    def insert(self, new: NewIncident) -> str:
        """Insert a queued incident; raises ``IntegrityError`` on a duplicate ``dedupe_key``."""
        with self.engine.begin() as conn:
            return self._insert(conn, new, _naive(self.clock()))

    @staticmethod
    def _insert(conn: Connection, new: NewIncident, now: dt.datetime | None) -> str:
        incident_id = uuid.uuid4().hex
        conn.execute(
            sa.insert(incidents).values(
                id=incident_id,
                source=new.source,
                dedupe_key=new.dedupe_key,
                status="queued",
                state="open",
                title=new.title,
                method=new.method,
                window_start=_naive(new.window_start),
                window_end=_naive(new.window_end),
                onset=_naive(new.onset),
                services=list(new.services) if new.services is not None else None,
                symptoms=list(new.symptoms),
                labels=dict(new.labels or {}),
                fingerprint=new.fingerprint,
                starts_at=_naive(new.starts_at),
                org_id=new.org_id,
                dashboard_uid=new.dashboard_uid,
                panel_id=new.panel_id,
                deliveries=1,
                attempts=0,
                not_before=_naive(new.not_before),
                created_at=now,
                updated_at=now,
            )
        )
        return incident_id

    def record_alerts(
        self,
        firing: Sequence[NewIncident],
        resolved: Sequence[tuple[str, dt.datetime | None]],
        queue_limit: int,
    ) -> AlertsRecorded:
        """One notification in one transaction: re-delivered episodes are counted, new ones
        opened while the queue has room (the rest refused, in order), resolved ones marked.
        Raced on a new episode by another replica, the whole transaction runs again."""
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    return self._record_alerts(conn, firing, resolved, queue_limit)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _record_alerts(
        self,
        conn: Connection,
        firing: Sequence[NewIncident],
        resolved: Sequence[tuple[str, dt.datetime | None]],
        queue_limit: int,
    ) -> AlertsRecorded:
        now = _naive(self.clock())
        episodes: dict[str, NewIncident] = {}
        for new in firing:  # the same episode twice in one notification opens it once
            episodes.setdefault(str(new.dedupe_key), new)
        ids: dict[str, str] = {}
        if episodes:
            rows = conn.execute(
                sa.select(incidents.c.dedupe_key, incidents.c.id).where(
                    incidents.c.dedupe_key.in_(list(episodes))
                )
            )
            ids = {str(key): str(found) for key, found in rows}
        if ids:
            conn.execute(
                sa.update(incidents)
                .where(incidents.c.dedupe_key.in_(list(ids)))
                .values(deliveries=incidents.c.deliveries + 1, updated_at=now)
            )
        fresh = [new for key, new in episodes.items() if key not in ids]
        refused: list[str] = []
        if fresh:
            queued = self._queued(conn)
            room = max(0, queue_limit - queued)
            refused = [str(new.dedupe_key) for new in fresh[room:]]
            for new in fresh[:room]:
                ids[str(new.dedupe_key)] = self._insert(conn, new, now)
        closed: dict[str, str | None] = {}
        for key, ends_at in resolved:
            found = conn.execute(
                sa.select(incidents.c.id).where(incidents.c.dedupe_key == key)
            ).scalar_one_or_none()
            closed[key] = None if found is None else str(found)
            if found is not None:
                conn.execute(
                    sa.update(incidents)
                    .where(incidents.c.id == found)
                    .values(state="resolved", ends_at=_naive(ends_at), updated_at=now)
                )
        opened = {str(new.dedupe_key) for new in fresh} - set(refused)
        return AlertsRecorded(ids=ids, opened=opened, refused=refused, resolved=closed)

    def queued(self) -> int:
        with self.engine.connect() as conn:
            return self._queued(conn)

    @staticmethod
    def _queued(conn: Connection) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(incidents.c.status == "queued")
            ).scalar_one()
        )

    # -- the queue ------------------------------------------------------------------------

    def claim(self, worker: str, lease_seconds: float) -> dict[str, Any] | None:
        """Take the oldest claimable incident (queued and due, or running with an expired
        lease) for ``worker``; ``None`` when there is none. Incidents whose lease ran out
        ``MAX_ATTEMPTS`` times are failed instead of retried forever."""
        now = _naive(self.clock())
        assert now is not None
        claimable = sa.or_(
            sa.and_(incidents.c.status == "queued", incidents.c.not_before <= now),
            sa.and_(incidents.c.status == "running", incidents.c.lease_until < now),
        )
        for _ in range(10):  # lose a race to another worker: try the next row
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.select(incidents.c.id, incidents.c.status, incidents.c.attempts)
                    .where(claimable)
                    .order_by(incidents.c.created_at, incidents.c.id)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                if row.attempts >= MAX_ATTEMPTS:
                    conn.execute(
                        sa.update(incidents)
                        .where(incidents.c.id == row.id, incidents.c.status == row.status)
                        .values(
                            status="failed",
                            error=f"gave up after {row.attempts} attempts (worker lost)",
                            finished_at=now,
                            updated_at=now,
                        )
                    )
                    continue
                claimed = conn.execute(
                    sa.update(incidents)
                    .where(
                        incidents.c.id == row.id,
                        incidents.c.status == row.status,
                        incidents.c.attempts == row.attempts,
                    )
                    .values(
                        status="running",
                        claimed_by=worker,
                        attempts=incidents.c.attempts + 1,
                        lease_until=now + dt.timedelta(seconds=lease_seconds),
                        started_at=now,
                        updated_at=now,
                    )
                )
                if claimed.rowcount == 1:
                    full = conn.execute(sa.select(*_SUMMARY).where(incidents.c.id == row.id)).one()
                    return _row(full._mapping)
        return None

    def recover(self) -> int:
        """Requeue every running incident (at start, when this process is the only writer);
        returns how many."""
        now = _naive(self.clock())
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(incidents)
                .where(incidents.c.status == "running")
                .values(status="queued", claimed_by=None, lease_until=None, updated_at=now)
            )
        return int(done.rowcount)

    def finish(
        self,
        incident_id: str,
        worker: str,
        result: dict[str, Any],
        timings: dict[str, float],
        report_html: str | None,
        window: tuple[dt.datetime, dt.datetime, dt.datetime] | None = None,
        top: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Store a finished analysis; ``False`` if this worker no longer holds the claim."""
        now = _naive(self.clock())
        values: dict[str, Any] = dict(
            status="done",
            result=result,
            top=top,
            timings=timings,
            report_html=report_html,
            finished_at=now,
            updated_at=now,
            lease_until=None,
            error=None,
        )
        if window is not None:
            values.update(
                window_start=_naive(window[0]),
                window_end=_naive(window[1]),
                onset=_naive(window[2]),
            )
        return self._settle(incident_id, worker, values)

    def release(self, incident_id: str, worker: str, reason: str) -> Status | None:
        """Give back a claim whose analysis was lost with its worker process: queued again
        while attempts remain, else failed. The new status; ``None`` if the claim was lost."""
        now = _naive(self.clock())
        with self.engine.begin() as conn:
            attempts = conn.execute(
                sa.select(incidents.c.attempts).where(
                    incidents.c.id == incident_id,
                    incidents.c.status == "running",
                    incidents.c.claimed_by == worker,
                )
            ).scalar_one_or_none()
            if attempts is None:
                return None
            status: Status = "queued" if attempts < MAX_ATTEMPTS else "failed"
            values: dict[str, Any] = dict(status=status, updated_at=now, lease_until=None)
            if status == "queued":
                values.update(claimed_by=None, not_before=now, error=f"retrying: {reason}")
            else:
                values.update(finished_at=now, error=f"gave up after {attempts} attempts: {reason}")
            conn.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(values))
        return status

    def fail(self, incident_id: str, worker: str, error: str) -> bool:
        now = _naive(self.clock())
        return self._settle(
            incident_id,
            worker,
            dict(
                status="failed",
                error=error[:4000],
                finished_at=now,
                updated_at=now,
                lease_until=None,
            ),
        )

    def _settle(self, incident_id: str, worker: str, values: dict[str, Any]) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(incidents)
                .where(
                    incidents.c.id == incident_id,
                    incidents.c.status == "running",
                    incidents.c.claimed_by == worker,
                )
                .values(**values)
            )
        return done.rowcount == 1

    def set_writeback(self, incident_id: str, annotation_id: int | None, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(incidents)
                .where(incidents.c.id == incident_id)
                .values(annotation_id=annotation_id, writeback_error=error)
            )

    # -- housekeeping ---------------------------------------------------------------------

    def delete_finished(self, before: dt.datetime) -> int:
        """Delete incidents whose analysis finished (done or failed) before ``before``."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.delete(incidents).where(
                    incidents.c.status.in_(["done", "failed"]),
                    incidents.c.finished_at < _naive(before),
                )
            )
        return int(done.rowcount)

    def fail_unreachable(self, latest: dt.datetime, reason: str) -> int:
        """Fail queued incidents not due until after ``latest`` (onsets far in the future,
        accepted before such alerts were refused), so that they cannot hold the queue."""
        now = _naive(self.clock())
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(incidents)
                .where(incidents.c.status == "queued", incidents.c.not_before > _naive(latest))
                .values(status="failed", error=reason, finished_at=now, updated_at=now)
            )
        return int(done.rowcount)

    # -- reading --------------------------------------------------------------------------

    def get(self, incident_id: str, with_result: bool = False) -> dict[str, Any] | None:
        columns = list(incidents.c) if with_result else _SUMMARY
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*columns).where(incidents.c.id == incident_id)).first()
        return None if row is None else _row(row._mapping)

    def report(self, incident_id: str) -> tuple[bool, str | None]:
        """``(exists, report_html)``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(incidents.c.report_html).where(incidents.c.id == incident_id)
            ).first()
        return (False, None) if row is None else (True, row[0])

    def list(
        self,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        state: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, with the total count of matching incidents."""
        where = []
        if status is not None:
            where.append(incidents.c.status == status)
        if state is not None:
            where.append(incidents.c.state == state)
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(incidents).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(*_SUMMARY)
                .where(*where)
                .order_by(incidents.c.created_at.desc(), incidents.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_row(r._mapping) for r in rows], int(total)

    def counts(self) -> dict[str, int]:
        """Incidents per analysis status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(incidents.c.status, sa.func.count()).group_by(incidents.c.status)
            ).all()
        return {str(status): int(n) for status, n in rows}

    # -- the learned graph ----------------------------------------------------------------

    def save_graph(
        self,
        graph: dict[str, Any],
        history_start: dt.datetime,
        history_end: dt.datetime,
        seconds: float,
    ) -> int:
        """Store a newly fitted graph (``CausalGraph.to_json``) as the next version, keeping
        the newest :data:`GRAPH_VERSIONS_KEPT`; returns its version."""
        with self.engine.begin() as conn:
            version = conn.execute(
                sa.insert(causal_graphs).values(
                    fitted_at=_naive(self.clock()),
                    history_start=_naive(history_start),
                    history_end=_naive(history_end),
                    series=len(graph["nodes"]),
                    edges=len(graph["edges"]),
                    seconds=float(seconds),
                    graph=graph,
                )
            ).inserted_primary_key[0]
            kept = (
                sa.select(causal_graphs.c.version)
                .order_by(causal_graphs.c.version.desc())
                .limit(GRAPH_VERSIONS_KEPT)
                .scalar_subquery()
            )
            conn.execute(sa.delete(causal_graphs).where(causal_graphs.c.version.not_in(kept)))
        return int(version)

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold lease ``name`` for ``seconds`` from now if it is free, expired or already
        ``holder``'s (renewed); whether ``holder`` holds it now. Atomic across replicas: one
        conditional update, or one insert that a racing replica's insert makes fail."""
        now = self.clock()
        until = _naive(now + dt.timedelta(seconds=seconds))
        now = _naive(now)
        table = leases.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(leases)
                .where(table.name == name)
                .where(sa.or_(table.holder == holder, table.expires_at <= now))
                .values(holder=holder, expires_at=until)
            ).rowcount
            if taken:
                return True
            if conn.execute(sa.select(table.name).where(table.name == name)).first():
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(leases).values(name=name, holder=holder, expires_at=until))
        except IntegrityError:  # another replica inserted it first
            return False
        return True

    def lease_holder(self, name: str) -> tuple[str, dt.datetime] | None:
        """Who holds lease ``name`` and until when; ``None`` if nobody does."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(
                    leases.c.name == name, leases.c.expires_at > _naive(self.clock())
                )
            ).first()
        return None if row is None else (row[0], _aware(row[1]))

    def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` up now, if ``holder`` holds it (a clean shutdown)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=_naive(self.clock()))
            )

    def latest_graph(self, with_graph: bool = True) -> dict[str, Any] | None:
        """The newest fitted graph's row (``graph``: its JSON, when ``with_graph``); ``None``
        before the first fit."""
        columns = [c for c in causal_graphs.c if with_graph or c.name != "graph"]
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*columns).order_by(causal_graphs.c.version.desc()).limit(1)
            ).first()
        return None if row is None else _row(row._mapping)
