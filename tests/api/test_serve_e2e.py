"""End to end with real parts: the tansu broker, OTLP records on Kafka, ``rca serve`` under
uvicorn with its ingest consumer and worker processes, and the Grafana webhook fixture posted
over HTTP. The incident's ranking must name the synthetic incident's injected root cause, and
the same notification posted twice must give one analysis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_harness import TOKEN, ServeProcess, fixture, grafana_alert, otlp_records
from patience import patience, wait_for

from collectors.kafka_sink import KafkaSink
from rca.cli import main
from rca.transport.broker import TansuBroker, free_port, start_broker
from rca.transport.topics import ensure_topics


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    running = start_broker(timeout_seconds=patience(60))
    yield running
    assert running.stop(patience(60)) == 0


@pytest.fixture
def serve(tmp_path: Path, broker: TansuBroker) -> Iterator[tuple[ServeProcess, str]]:
    topic = f"otlp_metrics_{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, {topic: 2, f"{topic}.dlq": 1}, patience(60))
    env = {
        "RCA_DATABASE_URL": str(tmp_path / "incidents.db"),
        "RCA_API_TOKEN": TOKEN,
        "RCA_METRICS_TOPIC": topic,
        "RCA_DLQ_TOPIC": f"{topic}.dlq",
        "RCA_INGEST_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "RCA_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "RCA_KAFKA_MAX_POLL_INTERVAL_MS": "5000",
        "RCA_STEP_SECONDS": "5",
        "RCA_RETENTION_SECONDS": "7200",
        "RCA_METHOD": "run-topology",  # the RUN engine without graph learning: seconds, not minutes
        "RCA_WORKERS": "1",
    }
    process = ServeProcess(free_port(), env, ["--bootstrap", broker.bootstrap])
    try:
        yield process, topic
    finally:
        assert process.stop(), process.log.read_text()[-3000:]


def feed(process: ServeProcess, broker: TansuBroker, topic: str, incident) -> dict:
    """The incident's series onto Kafka as OTLP; the server's state once it has them all."""
    sink = KafkaSink(broker.bootstrap, topic)
    try:
        sink.send(otlp_records(incident.frame))
    finally:
        sink.close()
    expected = len(incident.frame.columns)
    return process.wait_ready(lambda s: s["series"] == expected and s["newest_sample"] is not None)


@pytest.mark.slow
def test_grafana_alert_over_http_names_the_injected_root_cause(serve, broker, incident):
    process, topic = serve
    state = feed(process, broker, topic, incident)
    assert state["checks"] == {"store": True, "model": True, "consumer": True}

    auth = {"Authorization": f"Bearer {TOKEN}"}
    payload = grafana_alert(incident.onset)
    with httpx.Client(base_url=process.url, headers=auth, timeout=patience(60)) as client:
        first = client.post("/v1/alerts/grafana", json=payload)
        second = client.post("/v1/alerts/grafana", json=payload)
        assert first.status_code == second.status_code == 202
        incident_id = first.json()["data"][0]["id"]
        assert second.json()["data"][0] == {**first.json()["data"][0], "action": "duplicate"}

        def done() -> bool:
            return client.get(f"/v1/incidents/{incident_id}").json()["status"] in (
                "done",
                "failed",
            )

        wait_for(done, "the analysis")
        body = client.get(f"/v1/incidents/{incident_id}").json()
        assert body["status"] == "done", body["error"]
        ranking = client.get(f"/v1/incidents/{incident_id}/ranking").json()
        assert ranking["method"] == "run-topology"
        assert ranking["data"][0]["service"] == incident.truth
        listing = client.get("/v1/incidents").json()
        assert listing["count"] == 1, "a re-delivered notification started a second analysis"
        assert body["deliveries"] == 2 and body["attempts"] == 1
        assert client.get(f"/v1/incidents/{incident_id}/report").status_code == 200


@pytest.mark.slow
def test_without_being_told_the_onset_rest_and_a_late_alert_name_the_root_cause(
    serve, broker, incident
):
    """The product path: no onset in POST /v1/rca, and an Alertmanager alert whose startsAt
    is 3 minutes after the change (no rca_onset): the onset detector finds the change, and
    both analyses name the injected root cause."""
    process, topic = serve
    feed(process, broker, topic, incident)
    alert = fixture("alertmanager")
    alert["alerts"][0]["startsAt"] = (incident.onset + pd.Timedelta(minutes=3)).isoformat()
    rest = {"start": incident.window_start.isoformat(), "end": incident.end.isoformat()}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=process.url, headers=auth, timeout=patience(60)) as client:
        ids = [
            client.post("/v1/rca", json=rest).json()["id"],
            client.post("/v1/alerts/alertmanager", json=alert).json()["data"][0]["id"],
        ]
        for incident_id in ids:

            def done(incident_id: str = incident_id) -> bool:
                status = client.get(f"/v1/incidents/{incident_id}").json()["status"]
                return status in ("done", "failed")

            wait_for(done, "the analysis")
            body = client.get(f"/v1/incidents/{incident_id}").json()
            assert body["status"] == "done", body["error"]
            ranking = client.get(f"/v1/incidents/{incident_id}/ranking").json()
            assert ranking["data"][0]["service"] == incident.truth, ranking["data"][:3]
            assert ranking["onset_method"] != "given"
            assert abs(pd.Timestamp(ranking["onset"]) - incident.onset) <= pd.Timedelta(seconds=10)


def test_serve_refuses_a_public_address_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("RCA_API_TOKEN", raising=False)
    monkeypatch.delenv("RCA_API_TOKEN_FILE", raising=False)
    from rca.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["serve", "--host", "0.0.0.0", "--no-ingest"]) == 2
    finally:
        get_settings.cache_clear()
    assert "refusing to listen on 0.0.0.0 without an API token" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_reads_the_token_from_a_file(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-0123456789\n")
    env = {
        "RCA_DATABASE_URL": str(tmp_path / "api-only.db"),
        "RCA_API_TOKEN_FILE": str(token_file),
        "RCA_WORKERS": "1",
        "RCA_WORKER_PROCESSES": "false",
    }
    process = ServeProcess(free_port(), env, ["--no-ingest"])
    try:
        process.wait_ready()
        with httpx.Client(base_url=process.url, timeout=patience(60)) as client:
            assert client.get("/v1/incidents").status_code == 401
            ok = client.get(
                "/v1/incidents", headers={"Authorization": "Bearer from-a-file-0123456789"}
            )
        assert ok.status_code == 200 and ok.json() == {"data": [], "count": 0}
    finally:
        assert process.stop(), process.log.read_text()[-3000:]
