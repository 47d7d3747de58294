"""A real alert sender: Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) on
loopback, its webhook receiver pointed at ``rca serve --no-ingest`` (bearer token, as an
Alertmanager ``http_config.authorization`` sends it). The API reads windows from an ingest
status endpoint (``GET /window``, the path API-only replicas use). An alert pushed to
Alertmanager's API opens an incident whose analysis names the root cause; ending the alert
resolves it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_harness import ALERT_SERVICE, TOKEN, Incident, ServeProcess
from patience import patience, wait_for

from rca.ingest.status_http import serve_status
from rca.store.window_store import WindowStore
from rca.transport.broker import free_port, wait_until_listening

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = [
    pytest.mark.skipif(
        BINARY is None,
        reason="Alertmanager is not installed (Debian package prometheus-alertmanager; "
        "scripts/test.sh installs it)",
    ),
    pytest.mark.slow,  # Alertmanager and rca serve as processes
]

CONFIG = """\
route:
  receiver: rca
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rca
    webhook_configs:
      - url: {url}/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@pytest.fixture
def ingest_status(window_store: WindowStore) -> Iterator[str]:
    server = serve_status("127.0.0.1", 0, window_store, lambda: {"status": "ok"})
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(tmp_path: Path, ingest_status: str) -> Iterator[ServeProcess]:
    env = {
        "RCA_DATABASE_URL": str(tmp_path / "incidents.db"),
        "RCA_API_TOKEN": TOKEN,
        "RCA_INGEST_URL": ingest_status,
        "RCA_METHOD": "baro",
        "RCA_WORKERS": "1",
        "RCA_WORKER_PROCESSES": "false",
    }
    process = ServeProcess(free_port(), env, ["--no-ingest"])
    try:
        state = process.wait_ready()
        assert state["checks"] == {"store": True, "model": True, "ingest": True}
        yield process
    finally:
        assert process.stop(), process.log.read_text()[-3000:]


@pytest.fixture
def alertmanager(tmp_path: Path, api: ServeProcess) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=api.url, token=TOKEN))
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            str(BINARY),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one instance, nothing off loopback
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening("127.0.0.1", port, patience(60))
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(patience())
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def push(alertmanager: str, alert: dict) -> None:
    reply = httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=patience(60))
    assert reply.status_code == 200, reply.text


def test_alertmanager_delivers_an_alert_that_opens_and_resolves_an_incident(
    alertmanager: str, api: ServeProcess, incident: Incident
):
    alert = {
        "labels": {"alertname": "HighLatency", "service": ALERT_SERVICE, "severity": "page"},
        "annotations": {"summary": "p90 latency above SLO"},
        "startsAt": incident.onset.isoformat(),
        "generatorURL": "http://prometheus.invalid/graph",
    }
    push(alertmanager, alert)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=api.url, headers=auth, timeout=patience(60)) as client:

        def incidents() -> list[dict]:
            return client.get("/v1/incidents").json()["data"]

        wait_for(lambda: len(incidents()) == 1, "Alertmanager's notification")
        (opened,) = incidents()
        assert opened["source"] == "alertmanager" and opened["title"] == "HighLatency"
        assert opened["symptoms"] == [ALERT_SERVICE] and len(opened["fingerprint"]) == 16
        assert pd.Timestamp(opened["starts_at"]) == incident.onset

        wait_for(lambda: incidents()[0]["status"] in ("done", "failed"), "the analysis")
        assert incidents()[0]["status"] == "done", incidents()[0]["error"]
        assert incidents()[0]["top_service"] == incident.truth

        push(alertmanager, {**alert, "endsAt": pd.Timestamp.now(tz="UTC").isoformat()})
        wait_for(lambda: incidents()[0]["state"] == "resolved", "the resolved notification")
        assert len(incidents()) == 1
