"""Grafana write-back and provisioning through grafana-client, against the in-process fake
(``grafana_fake``): the exact requests, idempotence, and failures that do not fail analyses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from api_harness import TOKEN, grafana_alert
from grafana_fake import FakeGrafana, start
from patience import wait_for

from rca.cli import main
from rca.errors import RCAInputError
from rca.grafana.dashboard import dashboard
from rca.grafana.provision import ProvisionConfig, provision
from rca.grafana.writeback import connect

GRAFANA_TOKEN = "glsa_service_account_token"
CHART_DASHBOARD = Path(__file__).parents[2] / "helm" / "rca-platform" / "files" / "dashboard.json"


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server, url = start(fake)
    yield fake, url
    server.shutdown()
    server.server_close()


def finished(client, incident_id: str) -> dict:
    def written_back() -> bool:
        body = client.get(f"/v1/incidents/{incident_id}").json()
        return body["status"] in ("done", "failed") and (
            body["annotation_id"] is not None or body["writeback_error"] is not None
        )

    wait_for(written_back, f"the write-back for {incident_id}")
    return client.get(f"/v1/incidents/{incident_id}").json()


def test_a_finished_alert_analysis_is_annotated_on_its_panel(make_client, grafana, incident):
    fake, url = grafana
    client = make_client(
        grafana_url=url, grafana_token=GRAFANA_TOKEN, public_url="http://rca.example:8080"
    )
    opened = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).json()
    body = finished(client, opened["data"][0]["id"])
    assert body["status"] == "done" and body["annotation_id"] == 1

    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/api/annotations")
    assert request.authorization == f"Bearer {GRAFANA_TOKEN}" and request.org_id == "1"
    note = request.body
    assert set(note) == {"panelId", "time", "timeEnd", "tags", "text", "dashboardUID"}
    assert (note["dashboardUID"], note["panelId"]) == ("llm-slo", 4)
    assert note["time"] == int(incident.onset.timestamp() * 1000)
    assert note["timeEnd"] == int(incident.end.timestamp() * 1000)
    top = [entry["service"] for entry in body["top"]]
    assert note["tags"] == ["rca", *top] and top[0] == incident.truth
    report = f"http://rca.example:8080/v1/incidents/{body['id']}/report?key="
    assert report in note["text"] and f"1. {incident.truth}" in note["text"]


def test_a_resolved_alert_patches_its_annotation(make_client, grafana, incident):
    fake, url = grafana
    client = make_client(grafana_url=url, grafana_token=GRAFANA_TOKEN)
    opened = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).json()
    body = finished(client, opened["data"][0]["id"])
    resolved_at = incident.end + pd.Timedelta(minutes=5)
    resolved = grafana_alert(incident.onset, status="resolved", endsAt=resolved_at.isoformat())
    resolved["status"] = "resolved"
    closed = client.post("/v1/alerts/grafana", json=resolved).json()
    assert closed["data"][0]["action"] == "resolved"
    wait_for(lambda: len(fake.requests) >= 2, "the PATCH")
    assert fake.calls() == [("POST", "/api/annotations"), ("PATCH", "/api/annotations/1")]
    patch = fake.requests[1].body
    assert set(patch) == {"timeEnd", "tags", "text"}  # time, dashboard and panel stay
    assert patch["timeEnd"] == int(resolved_at.timestamp() * 1000)
    top = [entry["service"] for entry in body["top"]]
    assert patch["tags"] == ["rca", *top, "resolved"]
    assert "resolved at " in patch["text"] and f"1. {incident.truth}" in patch["text"]
    assert client.get(f"/v1/incidents/{body['id']}").json()["writeback_error"] is None


def test_a_rest_analysis_is_annotated_org_wide(make_client, grafana, incident):
    fake, url = grafana
    client = make_client(grafana_url=url, grafana_token=GRAFANA_TOKEN, grafana_org_id=3)
    body = client.post(
        "/v1/rca",
        json={
            "start": incident.window_start.isoformat(),
            "end": incident.end.isoformat(),
            "onset": incident.onset.isoformat(),
        },
    ).json()
    assert finished(client, body["id"])["annotation_id"] == 1
    (request,) = fake.requests
    assert request.org_id == "3"
    assert "dashboardUID" not in request.body and request.body["panelId"] is None


def test_grafana_down_is_recorded_and_the_analysis_still_succeeds(make_client, grafana, incident):
    fake, url = grafana
    fake.down = True
    client = make_client(grafana_url=url, grafana_token=GRAFANA_TOKEN)
    opened = client.post("/v1/alerts/grafana", json=grafana_alert(incident.onset)).json()
    body = finished(client, opened["data"][0]["id"])
    assert body["status"] == "done" and body["annotation_id"] is None
    assert "GrafanaServerError" in body["writeback_error"]


def test_provision_creates_everything_then_only_updates(grafana):
    fake, url = grafana
    config = ProvisionConfig(api_url="http://rca-api:8080/", api_token=TOKEN, hmac_secret="s3")
    first = provision(connect(url, GRAFANA_TOKEN), config)
    assert first == {
        "grafana": "12.4.0",
        "folder": "created",
        "datasource": "created",
        "dashboard": "saved",
        "contact_point": "created",
    }
    assert fake.calls() == [
        ("GET", "/api/frontend/settings"),
        ("GET", "/api/folders/rca"),
        ("POST", "/api/folders"),
        ("GET", "/api/datasources/uid/rca-api"),
        ("POST", "/api/datasources"),
        ("POST", "/api/dashboards/db"),
        ("GET", "/api/v1/provisioning/contact-points"),
        ("POST", "/api/v1/provisioning/contact-points"),
    ]
    assert all(r.authorization == f"Bearer {GRAFANA_TOKEN}" for r in fake.requests)
    bodies = {(r.method, r.path): r.body for r in fake.requests}
    assert bodies["POST", "/api/folders"] == {"title": "RCA", "uid": "rca"}
    assert bodies["POST", "/api/datasources"] == {
        "name": "RCA",
        "uid": "rca-api",
        "type": "yesoreyeram-infinity-datasource",
        "access": "proxy",
        "url": "http://rca-api:8080",
        "jsonData": {
            "allowedHosts": ["http://rca-api:8080"],
            "timeoutInSeconds": 30,
            "auth_method": "bearerToken",
        },
        "secureJsonData": {"bearerToken": TOKEN},
    }
    assert bodies["POST", "/api/dashboards/db"] == {
        "dashboard": dashboard("rca-api", "rca-incidents"),
        "folderUid": "rca",
        "overwrite": True,
        "message": "rca grafana provision",
    }
    assert fake.requests[6].query == {"name": ["rca-platform"]}
    assert bodies["POST", "/api/v1/provisioning/contact-points"] == {
        "uid": "rca-platform-webhook",
        "name": "rca-platform",
        "type": "webhook",
        "settings": {
            "url": "http://rca-api:8080/v1/alerts/grafana",
            "httpMethod": "POST",
            "authorization_scheme": "Bearer",
            "authorization_credentials": TOKEN,
            "hmacConfig": {
                "secret": "s3",
                "header": "X-Grafana-Alerting-Signature",
                "timestampHeader": "X-Grafana-Alerting-Timestamp",
            },
        },
        "disableResolveMessage": False,
    }

    fake.requests.clear()
    again = provision(connect(url, GRAFANA_TOKEN), config)
    assert again["folder"] == "exists" and again["datasource"] == "updated"
    assert again["contact_point"] == "updated"
    assert fake.calls() == [
        ("GET", "/api/frontend/settings"),
        ("GET", "/api/folders/rca"),
        ("GET", "/api/datasources/uid/rca-api"),
        ("PUT", "/api/datasources/uid/rca-api"),
        ("POST", "/api/dashboards/db"),
        ("GET", "/api/v1/provisioning/contact-points"),
        ("PUT", "/api/v1/provisioning/contact-points/rca-platform-webhook"),
    ]
    assert len(fake.folders) == len(fake.datasources) == len(fake.contact_points) == 1

    fake.down = True
    with pytest.raises(RCAInputError, match=r"Grafana at http://127\.0\.0\.1:.*Server Error 500"):
        provision(connect(url, GRAFANA_TOKEN), config)


def test_rca_grafana_provision_command(grafana, monkeypatch, capsys):
    fake, url = grafana
    monkeypatch.setenv("RCA_GRAFANA_URL", url)
    monkeypatch.setenv("RCA_GRAFANA_TOKEN", GRAFANA_TOKEN)
    monkeypatch.setenv("RCA_API_TOKEN", TOKEN)
    from rca.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["grafana", "provision", "--api-url", "http://rca:8080"]) == 0
        monkeypatch.delenv("RCA_GRAFANA_TOKEN")
        get_settings.cache_clear()
        assert main(["grafana", "provision", "--api-url", "http://rca:8080"]) == 2
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    assert "contact_point  created" in out and "RCA_GRAFANA_TOKEN" in err
    assert fake.dashboards["rca-incidents"]["folderUid"] == "rca"


def test_the_chart_ships_the_same_dashboard():
    shipped = json.loads(CHART_DASHBOARD.read_text())
    assert shipped == dashboard("__DATASOURCE_UID__", "__DASHBOARD_UID__")
