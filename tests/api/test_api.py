"""The REST API through TestClient: happy paths and every error path, status and body."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from api_harness import (
    ALERT_SERVICE,
    STEP_SECONDS,
    TOKEN,
    Incident,
    fill_store,
    fixture,
    grafana_alert,
    sign,
)
from fastapi.testclient import TestClient
from patience import wait_for
from toys import chain_incident

from rca.api.deps import get_service
from rca.store.window_store import WindowStore


def finished(client: TestClient, incident_id: str) -> dict:
    def done() -> bool:
        return client.get(f"/v1/incidents/{incident_id}").json()["status"] in ("done", "failed")

    wait_for(done, f"incident {incident_id} to finish")
    return client.get(f"/v1/incidents/{incident_id}").json()


def rca_body(incident: Incident, **extra: object) -> dict:
    return {
        "start": incident.window_start.isoformat(),
        "end": incident.end.isoformat(),
        "onset": incident.onset.isoformat(),
        **extra,
    }


def test_post_rca_queues_an_analysis_that_names_the_root_cause(client, incident):
    reply = client.post("/v1/rca", json=rca_body(incident))
    assert reply.status_code == 202
    body = reply.json()
    assert body["status"] == "queued" and body["source"] == "api" and body["method"] == "baro"
    assert reply.headers["location"].endswith(f"/v1/incidents/{body['id']}")

    done = finished(client, body["id"])
    assert done["status"] == "done", done["error"]
    assert done["top_service"] == incident.truth
    assert {"total", "fit", "report"} <= done["timings_seconds"].keys()
    assert done["onset"] == incident.onset.isoformat().replace("+00:00", "Z")

    ranking = client.get(f"/v1/incidents/{body['id']}/ranking").json()
    assert ranking["data"][0] == {
        "rank": 1,
        "service": incident.truth,
        "score": ranking["data"][0]["score"],
        "series": ranking["data"][0]["series"],
        "anomaly": None,
    }
    assert ranking["data"][0]["series"].startswith(f"{incident.truth}:")
    assert (
        ranking["count"]
        == len(ranking["data"])
        == incident.frame.columns.map(lambda c: c.split(":")[0]).nunique()
    )

    listing = client.get("/v1/incidents").json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == body["id"]


def test_the_graph_is_in_grafana_node_graph_shape(client, incident):
    body = client.post("/v1/rca", json=rca_body(incident, method="run-topology")).json()
    assert finished(client, body["id"])["status"] == "done"
    graph = client.get(f"/v1/incidents/{body['id']}/graph", params={"top": 12}).json()
    assert len(graph["nodes"]) == 12 and graph["edges"]
    ids = {node["id"] for node in graph["nodes"]}
    for node in graph["nodes"]:
        assert set(node) == {"id", "title", "subTitle", "mainStat"}
        assert node["subTitle"] == node["id"].split(":")[0]
    for edge in graph["edges"]:
        assert set(edge) == {"id", "source", "target", "mainStat"}
        assert edge["source"] in ids and edge["target"] in ids
        assert edge["id"] == f"{edge['source']}->{edge['target']}" and edge["mainStat"] > 0


def test_the_report_is_html_with_its_pictures_and_verdict(client, incident):
    body = client.post("/v1/rca", json=rca_body(incident, method="run-topology")).json()
    finished(client, body["id"])
    reply = client.get(f"/v1/incidents/{body['id']}/report")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', reply.text)
    assert len(pictures) == 2  # the causal graph of the services, the series around the onset
    assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert f"{incident.truth} is the likely root cause" in reply.text


def test_report_links_open_without_the_token_but_only_with_their_key(client, incident):
    body = client.post("/v1/rca", json=rca_body(incident)).json()
    url = finished(client, body["id"])["report_url"]
    path = url.split("testserver", 1)[1]
    assert "?key=" in path
    anonymous = TestClient(client.app)
    assert anonymous.get(path).status_code == 200
    assert anonymous.get(path.split("?")[0]).status_code == 401
    assert anonymous.get(path.split("?")[0] + "?key=" + "0" * 32).status_code == 401


def test_reads_and_writes_need_the_token(client, incident):
    anonymous = TestClient(client.app)
    for method, path in [
        ("post", "/v1/rca"),
        ("get", "/v1/incidents"),
        ("get", "/v1/incidents/x"),
        ("get", "/v1/incidents/x/ranking"),
        ("get", "/v1/incidents/x/graph"),
        ("get", "/v1/methods"),
        ("post", "/v1/alerts/grafana"),
        ("post", "/v1/alerts/alertmanager"),
    ]:
        reply = getattr(anonymous, method)(path, **({"json": {}} if method == "post" else {}))
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.headers["www-authenticate"].startswith("Bearer")
    wrong = anonymous.get("/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["detail"]
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert (
        anonymous.get("/v1/incidents", headers={"Authorization": f"Basic {basic}"}).json()["count"]
        == 0
    )
    for open_path in ("/healthz", "/readyz", "/openapi.json"):
        assert anonymous.get(open_path).status_code == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"end": "2020-01-01T00:00:00Z"}, "end must be after start"),
        ({"method": "nope"}, "unknown method 'nope'; known: nsigma, baro"),
        ({"onset": "2001-01-01T00:00:00Z"}, "the onset must lie strictly between"),
        ({"start": "0001-01-01T00:00:00Z"}, "time out of range"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"services": [""]}, "at least 1 character"),
        ({"start": "yesterday"}, "valid datetime"),
    ],
)
def test_malformed_analyses_are_422_with_the_reason(client, incident, change, reason):
    reply = client.post("/v1/rca", json={**rca_body(incident), **change})
    assert reply.status_code == 422
    assert reason in json.dumps(reply.json()["detail"])


def test_invalid_json_and_wrong_types_are_422(client):
    reply = client.post(
        "/v1/rca", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 422 and reply.json()["detail"][0]["type"] == "json_invalid"
    assert client.post("/v1/rca", json=[1, 2]).status_code == 422
    assert client.get("/v1/incidents", params={"limit": 0}).status_code == 422
    assert client.get("/v1/incidents", params={"status": "weird"}).status_code == 422


def test_a_body_over_the_limit_is_413(make_client, incident):
    client = make_client(max_body_bytes=2000)
    big = {**rca_body(incident), "services": ["x" * 200] * 20}
    reply = client.post("/v1/rca", json=big)
    assert reply.status_code == 413 and "larger than 2000 bytes" in reply.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"services": ["'
        for _ in range(30):
            yield b"y" * 100
        yield b'"]}'

    streamed = client.post(
        "/v1/rca", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_a_full_queue_sheds_with_retry_after(make_client, incident):
    client = make_client(queue_limit=0)
    rest = client.post("/v1/rca", json=rca_body(incident))
    assert rest.status_code == 429 and int(rest.headers["retry-after"]) >= 1
    assert "queue is full" in rest.json()["detail"]
    hook = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset))
    assert hook.status_code == 503 and int(hook.headers["retry-after"]) >= 1
    assert client.get("/v1/incidents").json()["count"] == 0  # nothing half-accepted
    resolved = fixture("grafana")
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    assert client.post("/v1/alerts/grafana", json=resolved).status_code == 202


def test_unknown_incidents_are_404_and_unfinished_ones_409(client):
    for suffix in ("", "/ranking", "/graph", "/report"):
        reply = client.get(f"/v1/incidents/{'f' * 32}{suffix}")
        assert reply.status_code == 404 and reply.json() == {"detail": f"no incident {'f' * 32}"}
    body = client.post(
        "/v1/rca", json={"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T00:10:00Z"}
    ).json()
    failed = finished(client, body["id"])
    assert failed["status"] == "failed"
    assert "nothing was ingested for that time" in failed["error"]  # and what to check
    for suffix in ("/ranking", "/graph", "/report"):
        reply = client.get(f"/v1/incidents/{body['id']}{suffix}")
        assert reply.status_code == 409 and "failed" in reply.json()["detail"]


def test_grafana_alert_opens_one_incident_per_episode_and_resolves_it(
    make_client, database_url, incident
):
    client = make_client(database_url=database_url)  # on SQLite and on PostgreSQL
    payload = grafana_alert(incident.onset)
    first = client.post("/v1/alerts/grafana", json=payload)
    assert first.status_code == 202
    (opened,) = first.json()["data"]
    assert opened["action"] == "opened" and opened["fingerprint"] == "c6eadffa33fcdf37"
    again = client.post("/v1/alerts/grafana", json=payload).json()["data"][0]
    assert again == {**opened, "action": "duplicate"}

    done = finished(client, opened["id"])
    assert done["status"] == "done" and done["top_service"] == incident.truth
    assert done["source"] == "grafana" and done["deliveries"] == 2 and done["attempts"] == 1
    assert done["symptoms"] == [ALERT_SERVICE] and done["services"] is None
    assert (done["dashboard_uid"], done["panel_id"]) == ("llm-slo", 4)
    assert client.get("/v1/incidents").json()["count"] == 1

    payload["status"] = payload["alerts"][0]["status"] = "resolved"
    payload["alerts"][0]["endsAt"] = (incident.end + pd.Timedelta(seconds=5)).isoformat()
    closed = client.post("/v1/alerts/grafana", json=payload).json()["data"][0]
    assert closed["action"] == "resolved" and closed["id"] == opened["id"]
    assert client.get(f"/v1/incidents/{opened['id']}").json()["state"] == "resolved"


def test_a_new_episode_of_the_same_alert_is_a_new_incident(client, incident):
    first = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).json()
    later = grafana_alert(incident.onset + pd.Timedelta(seconds=5))
    second = client.post("/v1/alerts/grafana", json=later).json()
    assert second["data"][0]["action"] == "opened"
    assert second["data"][0]["id"] != first["data"][0]["id"]


def test_alertmanager_alert_opens_an_incident(client, incident):
    payload = fixture("alertmanager")
    payload["alerts"][0]["startsAt"] = incident.onset.isoformat()
    payload["alerts"][0]["labels"]["rca_services"] = f"{incident.truth},{ALERT_SERVICE}"
    reply = client.post("/v1/alerts/alertmanager", json=payload)
    assert reply.status_code == 202
    incident_id = reply.json()["data"][0]["id"]
    done = finished(client, incident_id)
    assert done["source"] == "alertmanager" and done["symptoms"] == ["orders"]
    assert done["services"] == [incident.truth, ALERT_SERVICE]
    assert done["top_service"] == incident.truth
    ranking = client.get(f"/v1/incidents/{incident_id}/ranking").json()
    assert {r["service"] for r in ranking["data"]} == {incident.truth, ALERT_SERVICE}


def test_webhook_payloads_are_checked(client, incident):
    wrong_version = fixture("alertmanager")
    assert client.post("/v1/alerts/grafana", json=wrong_version).status_code == 422
    assert client.post("/v1/alerts/alertmanager", json=fixture("grafana")).status_code == 422
    no_fingerprint = grafana_alert(incident.onset)
    del no_fingerprint["alerts"][0]["fingerprint"]
    assert client.post("/v1/alerts/grafana", json=no_fingerprint).status_code == 422
    bad_onset = grafana_alert(incident.onset, labels={"rca_onset": "soon"})
    reply = client.post("/v1/alerts/grafana", json=bad_onset)
    assert reply.status_code == 422 and "rca_onset 'soon' is not a time" in reply.text
    ancient = grafana_alert(pd.Timestamp("1900-01-01", tz="UTC"))
    assert client.post("/v1/alerts/grafana", json=ancient).status_code == 422
    unknown_method = grafana_alert(incident.onset, labels={"rca_method": "magic"})
    assert client.post("/v1/alerts/grafana", json=unknown_method).status_code == 422
    assert client.get("/v1/incidents").json()["count"] == 0


def test_alert_labels_choose_onset_scope_and_method(client, incident):
    labels = {
        "alertname": "Slow",
        "service": ALERT_SERVICE,
        "rca_onset": str(incident.onset.timestamp()),
        "rca_services": incident.truth,
        "rca_method": "nsigma",
    }
    payload = grafana_alert(incident.onset - pd.Timedelta(seconds=60), labels=labels)
    incident_id = client.post("/v1/alerts/grafana", json=payload).json()["data"][0]["id"]
    done = finished(client, incident_id)
    assert done["method"] == "nsigma" and done["services"] == [incident.truth]
    assert pd.Timestamp(done["onset"]) == incident.onset
    assert done["title"] == "Slow"


SECRET = "hmac-secret"


def test_webhooks_accept_hmac_signatures(make_client, incident):
    client = make_client(webhook_hmac_secret=SECRET)
    anonymous = TestClient(client.app)
    body = json.dumps(grafana_alert(incident.onset)).encode()
    headers = {"Content-Type": "application/json"}
    signed = {**headers, "X-Grafana-Alerting-Signature": sign(body, SECRET)}
    assert anonymous.post("/v1/alerts/grafana", content=body, headers=signed).status_code == 202

    now = str(int(time.time()))
    stamped = {
        **headers,
        "X-Grafana-Alerting-Timestamp": now,
        "X-Grafana-Alerting-Signature": sign(body, SECRET, now),
    }
    assert anonymous.post("/v1/alerts/grafana", content=body, headers=stamped).status_code == 202
    # Grafana's own default header name works too.
    default = {**headers, "X-Grafana-Alert-Signature": sign(body, SECRET)}
    assert anonymous.post("/v1/alerts/grafana", content=body, headers=default).status_code == 202

    old = str(int(time.time()) - 3600)
    stale = {**stamped, "X-Grafana-Alerting-Timestamp": old}
    stale["X-Grafana-Alerting-Signature"] = sign(body, SECRET, old)
    tampered = {**signed, "X-Grafana-Alerting-Signature": sign(body + b" ", SECRET)}
    for bad in (stale, tampered):
        reply = anonymous.post("/v1/alerts/grafana", content=body, headers=bad)
        assert reply.status_code == 401 and "signature" in reply.json()["detail"]
    unsigned = anonymous.post("/v1/alerts/grafana", content=body, headers=headers)
    assert unsigned.status_code == 401
    # The token still works for senders that cannot sign (Alertmanager).
    bearer = {**headers, "Authorization": f"Bearer {TOKEN}"}
    assert anonymous.post("/v1/alerts/grafana", content=body, headers=bearer).status_code == 202


def test_without_token_or_secret_everything_is_open(make_client, incident):
    client = make_client(api_token=None)
    anonymous = TestClient(client.app)
    assert anonymous.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).status_code == (
        202
    )
    assert anonymous.get("/v1/incidents").json()["count"] == 1
    report_url = anonymous.get("/v1/incidents").json()["data"][0]["report_url"]
    assert "?key=" not in report_url


def test_methods_lists_the_registry(client):
    body = client.get("/v1/methods").json()
    names = [m["name"] for m in body["data"]]
    assert {"run", "baro", "run-topology"} <= set(names) and body["count"] == len(names)
    assert not {"random", "run-oracle", "run-nograph"} & set(names)  # bench-only
    assert [m["name"] for m in body["data"] if m["default"]] == ["baro"]


def test_readyz_reports_each_check(client, incident):
    body = client.get("/readyz").json()
    assert body["ready"] is True and body["checks"] == {"store": True, "model": True}
    assert body["series"] == len(incident.frame.columns)
    assert pd.Timestamp(body["newest_sample"]) == incident.end

    class Down:
        source = None

        def readiness(self):
            return {"store": False, "model": True}

        def window_status(self):
            return {"queued": None, "newest_sample": None, "series": None}

    client.app.dependency_overrides[get_service] = Down
    try:
        reply = client.get("/readyz")
    finally:
        client.app.dependency_overrides.clear()
    assert reply.status_code == 503 and reply.json()["checks"]["store"] is False
    assert client.get("/healthz").json() == {"status": "ok"}


def test_without_a_window_source_analyses_fail_with_a_reason(make_client, incident):
    client = make_client(source=None)
    body = client.post("/v1/rca", json=rca_body(incident)).json()
    failed = finished(client, body["id"])
    assert failed["status"] == "failed" and "RCA_INGEST_URL" in failed["error"]


def test_a_configured_call_graph_reaches_the_analysis(make_client, tmp_path):
    """frontend -> mid -> root: the quiet root is found only with the call graph."""
    window, onset, _ = chain_incident(np.random.default_rng(7))
    store = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    fill_store(store, window)
    body = {
        "start": window.index[0].isoformat(),
        "end": window.index[-1].isoformat(),
        "onset": onset.isoformat(),
        "method": "run-topology",
    }
    calls = tmp_path / "calls.csv"
    calls.write_text("caller,callee\nfrontend,mid\nmid,root\n")
    tops = []
    for overrides in ({}, {"call_graph": calls}):
        client = make_client(source=store, **overrides)
        incident_id = client.post("/v1/rca", json=body).json()["id"]
        done = finished(client, incident_id)
        assert done["status"] == "done", done["error"]
        tops.append(done["top_service"])
    assert tops == ["frontend", "root"]


def test_post_rca_without_an_onset_finds_it_and_the_root_cause(client, incident):
    body = rca_body(incident)
    del body["onset"]
    reply = client.post("/v1/rca", json=body)
    assert reply.status_code == 202 and reply.json()["onset"] is None
    done = finished(client, reply.json()["id"])
    assert done["status"] == "done", done["error"]
    assert done["top_service"] == incident.truth
    ranking = client.get(f"/v1/incidents/{done['id']}/ranking").json()
    step = pd.Timedelta(seconds=STEP_SECONDS)
    assert abs(pd.Timestamp(ranking["onset"]) - incident.onset) <= 2 * step
    assert ranking["onset_method"] != "given" and "confidence" in ranking["onset_method"]
    assert ranking["verdict"]["headline"].startswith(f"{incident.truth} ")
    assert pd.Timestamp(done["onset"]) == pd.Timestamp(ranking["onset"])  # recorded


def test_an_alert_three_minutes_late_is_searched_back_from(client, incident):
    """Alertmanager's startsAt is when the rule fired (its `for:` elapsed after the change):
    without rca_onset the analysis finds the change before it."""
    late = incident.onset + pd.Timedelta(minutes=3)
    payload = fixture("alertmanager")
    payload["alerts"][0]["startsAt"] = late.isoformat()
    payload["alerts"][0]["fingerprint"] = "late-alert"
    reply = client.post("/v1/alerts/alertmanager", json=payload)
    assert reply.status_code == 202
    done = finished(client, reply.json()["data"][0]["id"])
    assert done["status"] == "done", done["error"]
    assert done["top_service"] == incident.truth
    ranking = client.get(f"/v1/incidents/{done['id']}/ranking").json()
    assert "searched back from the alert" in ranking["onset_method"]
    assert abs(pd.Timestamp(ranking["onset"]) - incident.onset) <= 2 * pd.Timedelta(
        seconds=STEP_SECONDS
    )
