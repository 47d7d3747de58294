"""Issue 13, the serve half: client input that used to answer 500, hold the queue for ever or
be admitted all or nothing, on SQLite and on PostgreSQL. Every test here failed before."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from api_harness import TOKEN, fixture, grafana_alert, sign
from patience import wait_for

from rca.api import create_app
from rca.api.server import check_bind
from rca.errors import RCAInputError
from rca.incidents.store import IncidentStore, NewIncident
from rca.settings import Settings

BIG = 2**70
ANY_ANALYSIS = {"start": 200_000, "end": 200_600}  # unix seconds, in range


def alertmanager(*alerts: dict) -> dict:
    payload = fixture("alertmanager")
    template = payload["alerts"][0]
    payload["alerts"] = [{**template, **a} for a in alerts]
    return payload


def alert(onset: pd.Timestamp, n: int = 0, **fields: object) -> dict:
    """An Alertmanager alert of episode ``n`` starting at ``onset``."""
    return {"startsAt": onset.isoformat(), "fingerprint": f"fp{n:04d}", **fields}


def post(client, path: str, payload: object):
    """POST ``payload`` as ASCII JSON: lone surrogates go as ``\\ud800`` escapes, as a hostile
    sender writes them (httpx's own encoder refuses them)."""
    body = json.dumps(payload).encode()
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def with_annotations(onset: pd.Timestamp, **annotations: str) -> dict:
    payload = grafana_alert(onset)
    payload["alerts"][0]["annotations"].update(annotations)
    return payload


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("onset 1e30", lambda t: grafana_alert(t, labels={"rca_onset": "1e30"}), "not a time"),
        ("onset -1e30", lambda t: grafana_alert(t, labels={"rca_onset": "-1e30"}), "not a time"),
        ("org id 2^70", lambda t: grafana_alert(t, orgId=BIG), "less than or equal"),
        ("org id -2^70", lambda t: grafana_alert(t, orgId=-BIG), "greater than or equal"),
        ("org id 2^31", lambda t: {**grafana_alert(t), "orgId": 2**31}, "less than or equal"),
    ],
)
def test_unstorable_numbers_are_422_with_the_reason(
    make_client, database_url, incident, name, payload, reason
):
    client = make_client(database_url=database_url)
    reply = client.post("/v1/alerts/grafana", json=payload(incident.onset))
    assert reply.status_code == 422, (name, reply.text)
    assert reason in reply.text
    assert client.get("/v1/incidents").json()["count"] == 0


def test_unstorable_text_and_ids_are_bounded_not_500(make_client, database_url, incident):
    """NUL, lone surrogates, a title over 512 characters, a dashboard uid over 128, panel ids
    of 5,000 digits or over 2^31: stored as U+FFFD, cut, or left out; never a 500."""
    client = make_client(database_url=database_url)
    onset = incident.onset
    cases = {
        "nul": grafana_alert(onset, labels={"alertname": "a\x00b", "x\x00": "\x00"}),
        "surrogate": grafana_alert(onset, labels={"alertname": "lone \ud800 surrogate"}),
        "long title": grafana_alert(onset, labels={"alertname": "t" * 5000}),
        "long uid": with_annotations(onset, __dashboardUid__="u" * 129),
        "huge panel": with_annotations(onset, __panelId__="9" * 5000),
        "panel 2^31": with_annotations(onset, __panelId__=str(2**31)),
        "nul fingerprint": grafana_alert(onset, fingerprint="f\x00"),
        "broken urls": grafana_alert(onset, dashboardURL="http://[/d/x", panelURL="http://[?"),
    }
    rows = {}
    for k, (name, payload) in enumerate(cases.items()):
        payload["alerts"][0]["startsAt"] = (onset + pd.Timedelta(seconds=k)).isoformat()
        reply = post(client, "/v1/alerts/grafana", payload)
        assert reply.status_code == 202, (name, reply.text)
        rows[name] = client.get(f"/v1/incidents/{reply.json()['data'][0]['id']}").json()
    assert rows["nul"]["title"] == "a\ufffdb"
    assert rows["surrogate"]["title"] == "lone \ufffd surrogate"
    assert rows["long title"]["title"] == "t" * 512
    assert rows["long uid"]["dashboard_uid"] is None
    assert rows["huge panel"]["panel_id"] is None and rows["panel 2^31"]["panel_id"] is None
    assert rows["nul fingerprint"]["fingerprint"] == "f\ufffd"
    assert (rows["broken urls"]["dashboard_uid"], rows["broken urls"]["panel_id"]) == (None, None)


def test_non_finite_numbers_in_an_analysis_are_422(client, incident):
    for body in (
        b'{"start": NaN, "end": 1, "onset": 0}',
        b'{"start": Infinity, "end": -Infinity}',
        b"[NaN]",
        b'{"start": "2026-01-01", "end": "2026-01-02", "services": ["\\ud800"], "x": NaN}',
    ):
        reply = client.post("/v1/rca", content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422, (body, reply.text)
        assert reply.json()["detail"]


def test_non_ascii_keys_and_signatures_are_401_not_500(make_client, incident):
    client = make_client(webhook_hmac_secret="hmac-secret")
    done = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).json()
    report = f"/v1/incidents/{done['data'][0]['id']}/report"
    anonymous = type(client)(client.app)
    assert anonymous.get(report, params={"key": "ключ"}).status_code == 401
    body = json.dumps(grafana_alert(incident.onset)).encode()
    for headers in (
        {"X-Grafana-Alerting-Signature": "é" * 64},
        {"X-Grafana-Alerting-Signature": "ÿ"},
        {"Authorization": "Bearer jeton-é-ÿ"},
    ):
        raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
        reply = anonymous.post(
            "/v1/alerts/grafana",
            content=body,
            headers=[(b"content-type", b"application/json"), *raw],
        )
        assert reply.status_code == 401, (headers, reply.text)


def test_a_non_finite_signature_timestamp_is_refused(make_client, incident):
    client = make_client(webhook_hmac_secret="hmac-secret")
    anonymous = type(client)(client.app)
    body = json.dumps(grafana_alert(incident.onset)).encode()
    for stamp in ("nan", "NaN", "inf", "-inf"):
        headers = {
            "Content-Type": "application/json",
            "X-Grafana-Alerting-Timestamp": stamp,
            "X-Grafana-Alerting-Signature": sign(body, "hmac-secret", stamp),
        }
        reply = anonymous.post("/v1/alerts/grafana", content=body, headers=headers)
        assert reply.status_code == 401, stamp


def test_alerts_starting_far_in_the_future_are_refused(make_client, incident):
    client = make_client(queue_limit=4)
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=3650)
    for payload in (
        grafana_alert(future),
        grafana_alert(incident.onset, labels={"rca_onset": future.isoformat()}),
        alertmanager(*[alert(future, n) for n in range(8)]),
    ):
        path = "/v1/alerts/grafana" if payload["version"] == "1" else "/v1/alerts/alertmanager"
        reply = client.post(path, json=payload)
        assert reply.status_code == 422 and "ahead of this server's clock" in reply.text
    assert client.post("/v1/rca", json=ANY_ANALYSIS).status_code == 202
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=60)  # clock skew is tolerated
    assert client.post("/v1/alerts/grafana", json=grafana_alert(soon)).status_code == 202


def test_far_future_incidents_already_queued_cannot_hold_the_queue(tmp_path, make_client):
    """Rows an older version accepted are failed by the housekeeping at start."""
    url = str(tmp_path / "incidents.db")
    store = IncidentStore(url)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    for n in range(3):
        store.insert(
            NewIncident(source="grafana", method="baro", not_before=future, dedupe_key=f"g:{n}")
        )
    store.close()
    client = make_client(database_url=url, queue_limit=3)
    wait_for(lambda: client.get("/readyz").json()["queued"] == 0, "the sweep")
    failed = client.get("/v1/incidents", params={"status": "failed"}).json()
    assert failed["count"] == 3 and "too far in the future" in failed["data"][0]["error"]
    assert client.post("/v1/rca", json=ANY_ANALYSIS).status_code == 202


def test_a_notification_larger_than_the_queue_is_admitted_as_it_fits(make_client, incident):
    """Five new alerts, room for two: two stored and a 503; the sender's retries (the whole
    notification each time) bring the rest in, none twice."""
    client = make_client(source=None, queue_limit=2)  # no source: analyses fail at once
    payload = alertmanager(*[alert(incident.onset, n) for n in range(5)])
    first = client.post("/v1/alerts/alertmanager", json=payload)
    assert first.status_code == 503 and int(first.headers["retry-after"]) >= 1
    assert "3 of 5 new alerts are waiting for room" in first.json()["detail"]
    assert client.get("/v1/incidents").json()["count"] == 2
    reply = first
    for _ in range(10):
        wait_for(lambda: client.get("/readyz").json()["queued"] == 0, "the queue to drain")
        reply = client.post("/v1/alerts/alertmanager", json=payload)
        if reply.status_code == 202:
            break
        assert reply.status_code == 503
    assert reply.status_code == 202, reply.text
    ids = [o["id"] for o in reply.json()["data"]]
    assert len(set(ids)) == 5
    listing = client.get("/v1/incidents", params={"limit": 100}).json()
    assert listing["count"] == 5 and {r["id"] for r in listing["data"]} == set(ids)


def test_finished_incidents_past_the_retention_are_deleted(tmp_path, make_client):
    url = str(tmp_path / "incidents.db")
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    store = IncidentStore(url, clock=lambda: then)
    old = store.insert(NewIncident(source="api", method="baro", not_before=then))
    store.claim("w", 60)
    store.finish(old, "w", {}, {}, None)
    store.close()
    client = make_client(database_url=url, incident_retention="2d")
    kept = client.post("/v1/rca", json=ANY_ANALYSIS).json()["id"]
    wait_for(lambda: client.get(f"/v1/incidents/{old}").status_code == 404, "the sweep")
    assert client.get(f"/v1/incidents/{kept}").status_code == 200


@pytest.mark.parametrize("token", ["", "   ", "\n", "short-token"])
def test_blank_or_short_tokens_are_refused_at_start(tmp_path, token):
    token_file = tmp_path / "token"
    token_file.write_text(token)
    for settings in (Settings(api_token=token), Settings(api_token_file=token_file)):
        if settings.api_token is not None and not token:
            continue  # an empty RCA_API_TOKEN is no token
        with pytest.raises(RCAInputError, match="at least 16 characters"):
            check_bind("0.0.0.0", settings)
        with pytest.raises(RCAInputError, match="at least 16 characters"):
            create_app(settings)


def test_tokens_are_stripped(make_client, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    for overrides in (
        {"api_token": f" {TOKEN}\n"},
        {"api_token": None, "api_token_file": token_file},
    ):
        client = make_client(**overrides)
        assert client.get("/v1/incidents").status_code == 200
