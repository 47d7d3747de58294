"""The causal graph learned in the background: stored in versions, served at GET /v1/graph,
used by the analyses that follow."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from api_harness import Incident, fill_store
from patience import wait_for
from test_api import finished, rca_body

from rca.errors import RCAInputError
from rca.incidents.graph_refresh import GraphRefresher
from rca.incidents.store import GRAPH_VERSIONS_KEPT, IncidentStore
from rca.store.window_store import WindowStore
from rca.types import CausalGraph


def _tiny(weight: float) -> dict:
    return CausalGraph(("a:x", "b:y"), pd.DataFrame([[0, weight], [0, 0]]).to_numpy()).to_json()


def test_graph_versions_are_kept_newest_first(database_url):
    store = IncidentStore(database_url)
    assert store.latest_graph() is None
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for k in range(GRAPH_VERSIONS_KEPT + 2):
        version = store.save_graph(_tiny(0.1 * (k + 1)), start, start + dt.timedelta(hours=1), 2.5)
    latest = store.latest_graph()
    assert latest is not None and latest["version"] == version
    assert latest["graph"]["edges"] == [[0, 1, pytest.approx(0.1 * (GRAPH_VERSIONS_KEPT + 2))]]
    assert latest["history_start"] == start and latest["series"] == 2 and latest["edges"] == 1
    summary = store.latest_graph(with_graph=False)
    assert summary is not None and "graph" not in summary
    with store.engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT count(*) FROM causal_graphs").scalar_one()
    assert kept == GRAPH_VERSIONS_KEPT
    store.close()


def test_too_little_history_is_not_learned_from(tmp_path, incident: Incident):
    short = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    fill_store(short, incident.history.iloc[-100:])  # 500 s
    store = IncidentStore(str(tmp_path / "incidents.db"))
    refresher = GraphRefresher(
        store,
        short,
        every_seconds=3600,
        history_seconds=7200,
        min_history_seconds=3600,
        processes=False,
    )
    with pytest.raises(RCAInputError, match="s of history stored, 3600 s wanted"):
        refresher.refresh()
    assert store.latest_graph() is None
    store.close()


def test_the_fitted_graph_is_served_and_used_by_the_next_analysis(make_client, incident):
    client = make_client(
        method="run", graph_refresh_seconds=3600, history_seconds=1800, graph_history_seconds=7200
    )
    # The refresher fits at start (no version yet); wait for it like an operator would.
    wait_for(lambda: client.get("/v1/graph").status_code == 200, "the first background fit")
    graph = client.get("/v1/graph").json()
    assert graph["version"] == 1 and graph["level"] == "service"
    assert graph["series"] == incident.frame.shape[1] and graph["learned_edges"] > 0
    ids = {node["id"] for node in graph["nodes"]}
    assert graph["edges"] and all(e["source"] in ids and e["target"] in ids for e in graph["edges"])
    assert all(e["source"] != e["target"] for e in graph["edges"])  # services, folded
    series = client.get("/v1/graph", params={"level": "series", "top": 5}).json()
    assert len(series["edges"]) <= 5 and all(":" in node["id"] for node in series["nodes"])
    weights = [e["mainStat"] for e in series["edges"]]
    assert weights == sorted(weights, reverse=True)
    # A series edge carries its estimated lag (steps) as Grafana's secondary stat.
    assert all(e["secondaryStat"] >= 1 for e in series["edges"])
    assert all(e["secondaryStat"] is None for e in graph["edges"])

    body = client.post("/v1/rca", json=rca_body(incident, method="run")).json()
    done = finished(client, body["id"])
    assert done["status"] == "done", done.get("error")
    report = client.get(f"/v1/incidents/{body['id']}/report").text
    assert "graph version 1" in report  # the analysis used the fitted graph, not its own


def test_no_graph_yet_is_a_404_that_says_why(make_client):
    reply = make_client().get("/v1/graph")
    assert reply.status_code == 404
    assert "RCA_GRAPH_REFRESH_SECONDS" in reply.json()["detail"]


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_one_replica_holds_the_graph_lease_until_it_lapses(database_url):
    clock = _Clock()
    first, second = IncidentStore(database_url, clock), IncidentStore(database_url, clock)
    assert first.lease_holder("fit") is None
    assert first.take_lease("fit", "a", 60) and not second.take_lease("fit", "b", 60)
    clock.now += dt.timedelta(seconds=50)
    assert first.take_lease("fit", "a", 60)  # renewed: good for 60 s from now
    clock.now += dt.timedelta(seconds=50)
    assert not second.take_lease("fit", "b", 60)
    assert second.lease_holder("fit") == ("a", clock.now + dt.timedelta(seconds=10))
    clock.now += dt.timedelta(seconds=11)  # "a" died: its lease lapses
    assert second.lease_holder("fit") is None
    assert second.take_lease("fit", "b", 60) and not first.take_lease("fit", "a", 60)
    first.release_lease("fit", "a")  # not its lease: nothing happens
    assert first.lease_holder("fit") == ("b", clock.now + dt.timedelta(seconds=60))
    second.release_lease("fit", "b")  # a clean shutdown hands over at once
    assert first.take_lease("fit", "a", 60)
    assert first.take_lease("other", "b", 60)  # leases are per name
    first.close()
    second.close()


def test_two_replicas_fit_one_graph_and_the_second_takes_over(tmp_path, incident: Incident):
    history = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    fill_store(history, incident.history)
    clock = _Clock()
    path = str(tmp_path / "incidents.db")
    replicas = [
        GraphRefresher(
            IncidentStore(path, clock),
            history,
            every_seconds=3600,
            history_seconds=3600,
            retry_seconds=60,
            processes=False,
        )
        for _ in range(2)
    ]
    first, second = replicas
    assert first.step() == 3600 and first.store.latest_graph()["version"] == 1
    assert second.step() == 3600  # fresh graph, someone else's lease: look again when due
    assert second.store.latest_graph()["version"] == 1
    clock.now += dt.timedelta(seconds=3600)  # due again, but the first still holds the lease
    assert second.step() == 60 and second.store.latest_graph()["version"] == 1
    clock.now += dt.timedelta(seconds=3601)  # the first died an hour ago: its lease lapsed
    assert second.step() == 3600 and second.store.latest_graph()["version"] == 2
    first.stop()  # not the holder any more: stopping it leaves the lease alone
    assert second.store.lease_holder("graph-refresh")[0] == second.holder
    second.stop()
    assert second.store.lease_holder("graph-refresh") is None
    for replica in replicas:
        replica.store.close()


def test_a_fit_that_outlasts_the_lease_still_holds_it_afterwards(tmp_path, incident: Incident):
    history = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    fill_store(history, incident.history)
    clock = _Clock()
    path = str(tmp_path / "incidents.db")
    first, second = (
        GraphRefresher(
            IncidentStore(path, clock),
            history,
            every_seconds=60,
            history_seconds=3600,
            processes=False,
        )
        for _ in range(2)
    )
    fit = first.refresh

    def slow_fit() -> int:
        clock.now += dt.timedelta(seconds=3 * first.lease_seconds)  # longer than the lease
        return fit()

    first.refresh = slow_fit  # type: ignore[method-assign]
    assert first.step() == 60
    assert second.step() == 60 and second.store.latest_graph()["version"] == 1
    assert second.store.lease_holder("graph-refresh")[0] == first.holder
    for replica in (first, second):
        replica.store.close()
