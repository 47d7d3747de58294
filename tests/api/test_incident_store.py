"""The incident store: migrations, the queue's claims and leases, alert dedupe; and the pure
reading of webhook payloads."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from api_harness import fixture
from patience import patience

from rca.errors import RCAInputError
from rca.incidents import store as store_module
from rca.incidents.alerts import (
    AlertmanagerWebhook,
    GrafanaWebhook,
    alertmanager_events,
    grafana_events,
)
from rca.incidents.store import MAX_ATTEMPTS, IncidentStore, NewIncident, migrate, schema_version

T0 = dt.datetime(2026, 11, 26, 14, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def new(**changes: object) -> NewIncident:
    values: dict = dict(
        source="api",
        method="baro",
        not_before=T0,
        window_start=T0 - dt.timedelta(minutes=15),
        window_end=T0 + dt.timedelta(minutes=5),
        onset=T0,
    )
    values.update(changes)
    return NewIncident(**values)


def test_an_old_database_is_migrated_keeping_its_incidents(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what version 1 of the product left behind
        store_module.schema_table.create(conn)
        store_module.MIGRATIONS[1](conn)
        conn.execute(sa.insert(store_module.schema_table).values(id=1, version=1))
        conn.execute(
            sa.text(
                "INSERT INTO incidents (id, source, status, state, method, symptoms, labels, "
                "deliveries, attempts, not_before, created_at, updated_at) VALUES ('old', 'api', "
                "'done', 'open', 'baro', '[]', '{}', 1, 1, '2026-01-01', '2026-01-01', "
                "'2026-01-01')"
            )
        )
    assert "annotation_id" not in {c["name"] for c in sa.inspect(engine).get_columns("incidents")}
    assert migrate(engine) == 1
    with engine.connect() as conn:
        assert schema_version(conn) == store_module.SCHEMA_VERSION
    columns = {c["name"] for c in sa.inspect(engine).get_columns("incidents")}
    assert {"annotation_id", "writeback_error"} <= columns
    store = IncidentStore(url)  # migrating again is a no-op
    assert store.get("old")["annotation_id"] is None
    with engine.begin() as conn:
        conn.execute(sa.update(store_module.schema_table).values(version=99))
    with pytest.raises(RuntimeError, match="newer than this rca"):
        migrate(engine)


def test_one_claim_per_incident_and_expired_leases_are_claimed_again(database_url):
    clock = Clock()
    store = IncidentStore(database_url, clock=clock)
    first = store.insert(new())
    clock.now += dt.timedelta(seconds=1)
    later = store.insert(new(not_before=T0 + dt.timedelta(minutes=1)))
    assert store.queued() == 2
    claimed = store.claim("a", lease_seconds=60)
    assert claimed["id"] == first and claimed["attempts"] == 1
    assert store.claim("b", lease_seconds=60) is None  # the other one is not due yet
    clock.now += dt.timedelta(minutes=2)  # a's lease ran out; `later` is due
    assert store.claim("b", lease_seconds=60)["id"] == first
    assert not store.finish(first, "a", {}, {}, None)  # a lost its claim
    assert store.finish(first, "b", {"method": "baro"}, {"total": 1.0}, "<html>")
    assert store.get(first)["status"] == "done"
    assert store.claim("b", lease_seconds=60)["id"] == later


def test_a_worker_that_keeps_dying_fails_the_incident(database_url):
    clock = Clock()
    store = IncidentStore(database_url, clock=clock)
    incident = store.insert(new())
    for _ in range(MAX_ATTEMPTS):
        assert store.claim("w", lease_seconds=10)["id"] == incident
        clock.now += dt.timedelta(seconds=11)
    assert store.claim("w", lease_seconds=10) is None
    row = store.get(incident)
    assert row["status"] == "failed" and "gave up after 3 attempts" in row["error"]


def test_recover_requeues_what_a_dead_process_left_running(database_url):
    store = IncidentStore(database_url)
    incident = store.insert(new(not_before=dt.datetime.now(dt.UTC)))
    store.claim("dead", lease_seconds=3600)
    assert store.recover() == 1 and store.get(incident)["status"] == "queued"


def test_replicas_racing_for_the_queue_claim_each_incident_once(database_url):
    replicas = [IncidentStore(database_url) for _ in range(2)]
    due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    created = {replicas[0].insert(new(not_before=due)) for _ in range(24)}
    claims: list[str] = []

    def work(store: IncidentStore, worker: str) -> None:
        while (row := store.claim(worker, lease_seconds=600)) is not None:
            claims.append(row["id"])

    threads = [
        threading.Thread(target=work, args=(store, f"{n}-{k}"))
        for n, store in enumerate(replicas)
        for k in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=patience())
    assert sorted(claims) == sorted(created)  # every incident once, none twice
    for store in replicas:
        store.close()


def test_alert_episodes_dedupe_on_fingerprint_and_start(database_url):
    store = IncidentStore(database_url)
    alert = new(source="grafana", dedupe_key="g:f:1")
    first = store.record_alerts([alert, alert], [], queue_limit=10)
    assert first.opened == {"g:f:1"} and store.queued() == 1
    again = store.record_alerts([alert], [], queue_limit=10)
    assert again.opened == set() and again.ids == first.ids
    incident = first.ids["g:f:1"]
    assert store.get(incident)["deliveries"] == 2
    closed = store.record_alerts([], [("g:f:1", T0), ("g:unknown:1", T0)], queue_limit=10)
    assert closed.resolved == {"g:f:1": incident, "g:unknown:1": None}
    assert store.get(incident)["state"] == "resolved"


def test_a_notification_is_admitted_as_far_as_the_queue_has_room(database_url):
    """The queue's room is filled in order; the rest is refused, nothing else undone."""
    store = IncidentStore(database_url)
    store.insert(new())
    alerts = [new(source="grafana", dedupe_key=f"g:{k}:1") for k in range(5)]
    first = store.record_alerts(alerts, [], queue_limit=3)
    assert first.opened == {"g:0:1", "g:1:1"} and first.refused == ["g:2:1", "g:3:1", "g:4:1"]
    assert store.queued() == 3
    store.claim("w", lease_seconds=60)  # room for one more
    retry = store.record_alerts(alerts, [], queue_limit=3)
    assert retry.opened == {"g:2:1"} and retry.refused == ["g:3:1", "g:4:1"]
    assert retry.ids["g:0:1"] == first.ids["g:0:1"]
    assert store.get(first.ids["g:0:1"])["deliveries"] == 2


def test_a_notification_is_stored_in_one_transaction(database_url):
    """An alert the database refuses part-way undoes the ones before it."""
    store = IncidentStore(database_url)
    good = new(source="grafana", dedupe_key="g:good:1")
    bad = new(source="grafana", dedupe_key="g:bad:1", method="m" * 65)  # over String(64)
    if store.engine.dialect.name == "sqlite":  # SQLite ignores lengths; an int it cannot hold
        bad = new(source="grafana", dedupe_key="g:bad:1", panel_id=2**70)
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error
        store.record_alerts([good, bad], [], queue_limit=10)
    assert store.list()[1] == 0


def test_released_claims_are_retried_until_attempts_run_out(database_url):
    clock = Clock()
    store = IncidentStore(database_url, clock=clock)
    incident = store.insert(new())
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert store.claim("w", lease_seconds=600)["attempts"] == attempt
        assert store.release(incident, "other", "died") is None  # not its claim
        expected = "queued" if attempt < MAX_ATTEMPTS else "failed"
        assert store.release(incident, "w", "died") == expected
    row = store.get(incident)
    assert row["status"] == "failed" and row["error"] == "gave up after 3 attempts: died"


def test_housekeeping_deletes_old_finished_incidents_and_fails_unreachable_ones(database_url):
    clock = Clock()
    store = IncidentStore(database_url, clock=clock)
    old = store.insert(new())
    clock.now += dt.timedelta(seconds=1)
    running = store.insert(new())
    future = store.insert(new(not_before=T0 + dt.timedelta(days=3650)))
    assert store.claim("w", 86400 * 365)["id"] == old
    store.finish(old, "w", {}, {}, None)
    assert store.claim("w", 86400 * 365)["id"] == running
    clock.now += dt.timedelta(days=31)
    recent = store.insert(new(not_before=clock.now))
    assert store.claim("w", 600)["id"] == recent
    store.fail(recent, "w", "no data")
    assert store.delete_finished(clock.now - dt.timedelta(days=30)) == 1
    assert store.get(old) is None and store.get(recent)["status"] == "failed"
    assert store.get(running)["status"] == "running"  # unfinished: kept however old
    assert store.fail_unreachable(clock.now + dt.timedelta(days=1), "too far") == 1
    assert store.get(future)["status"] == "failed" and store.queued() == 0


def test_grafana_payload_events():
    payload = GrafanaWebhook.model_validate(fixture("grafana"))
    (event,) = grafana_events(payload, known={"llm/vllm-decode", "llm/router"})
    assert event.dedupe_key == "grafana:c6eadffa33fcdf37:2026-10-12T07:51:03.157076Z"
    assert event.onset == event.starts_at and event.ends_at is None
    assert event.symptoms == ("llm/vllm-decode",)  # the store's namespaced name
    assert (event.dashboard_uid, event.panel_id, event.org_id) == ("llm-slo", 4, 1)
    assert event.scope is None and event.title == "HighTTFT"


def test_alertmanager_payload_events_and_label_choices():
    raw = fixture("alertmanager")
    raw["alerts"][0]["labels"].update(
        {"rca_services": "orders, payment", "rca_onset": "2026-10-12T07:50:00Z"}
    )
    (event,) = alertmanager_events(AlertmanagerWebhook.model_validate(raw))
    assert event.symptoms == ("orders",) and event.scope == ("orders", "payment")
    assert event.onset == dt.datetime(2026, 10, 12, 7, 50, tzinfo=dt.UTC)
    assert event.dashboard_uid is None and event.org_id is None
    pod_alert = {"alertname": "KubePodCrashLooping", "pod": "orders-7b598fc7d-lmggd"}
    raw["alerts"][0]["labels"] = pod_alert
    (event,) = alertmanager_events(AlertmanagerWebhook.model_validate(raw))
    assert event.symptoms == ("orders",)  # the pod's Deployment
    raw["alerts"][0]["labels"]["rca_onset"] = "whenever"
    with pytest.raises(RCAInputError, match="rca_onset 'whenever' is not a time"):
        alertmanager_events(AlertmanagerWebhook.model_validate(raw))


def test_grafana_panel_annotations_win_over_urls():
    raw = fixture("grafana")
    raw["alerts"][0]["annotations"].update({"__dashboardUid__": "other", "__panelId__": "7"})
    raw["alerts"][0]["panelURL"] = "http://grafana.local/d/x?viewPanel=panel-9"
    (event,) = grafana_events(GrafanaWebhook.model_validate(raw))
    assert (event.dashboard_uid, event.panel_id) == ("other", 7)
    del raw["alerts"][0]["annotations"]["__panelId__"]
    (event,) = grafana_events(GrafanaWebhook.model_validate(raw))
    assert event.panel_id == 9
