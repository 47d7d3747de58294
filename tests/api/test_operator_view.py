"""What an operator sees of ``rca serve``: /docs and /redoc without the Internet (in headless
Chromium when it is installed), one log line per analysis accepted, done or failed, access
lines without the health probes, one actionable line while Kafka cannot be reached, and a 422
that says to send JSON."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_harness import TOKEN, ServeProcess
from patience import patience, wait_for
from test_api import finished, rca_body

from rca.api.embedded_ingest import EmbeddedIngest, bootstrap_addresses
from rca.api.oplog import after_analysis
from rca.api.server import AccessLog
from rca.incidents.store import IncidentStore, NewIncident
from rca.ingest.kafka_source import IngestConfig
from rca.transport.broker import free_port

_CHROMIUM = shutil.which("chromium")


def _local_urls(page: str) -> list[str]:
    """Every address a docs page loads: src/href attributes and the spec's url."""
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', page) + re.findall(
        r"url: '([^']+)'", page
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_their_assets_from_this_server(client, page):
    reply = client.get(page)
    assert reply.status_code == 200
    assert "http://" not in reply.text and "https://" not in reply.text, reply.text
    urls = _local_urls(reply.text)
    assert len(urls) >= 2, reply.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url


def test_operator_log_has_one_line_per_accepted_and_done_analysis(client, incident, caplog):
    caplog.set_level(logging.INFO, logger="rca.analyses")
    body = client.post("/v1/rca", json=rca_body(incident)).json()
    assert finished(client, body["id"])["status"] == "done"
    lines = [r.getMessage() for r in caplog.records if r.name == "rca.analyses"]
    accepted = f"incident {body['id']} accepted (api): method baro, window "
    assert [line for line in lines if line.startswith(accepted)] != [], lines
    done = [line for line in lines if line.startswith(f"incident {body['id']} done:")]
    assert len(done) == 1, lines
    assert re.fullmatch(
        rf"incident \w+ done: method baro, \d+\.\d s, top cause {incident.truth} "
        rf"\({incident.truth}:[^)]+\)",
        done[0],
    ), done[0]


def test_a_failed_analysis_logs_its_reason(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="rca.analyses")
    store = IncidentStore(str(tmp_path / "incidents.db"))
    try:
        incident_id = store.insert(
            NewIncident(source="api", method="run", not_before=store.clock(), title="REST query")
        )
        assert store.claim("w", 60)["id"] == incident_id
        assert store.fail(incident_id, "w", "no samples between A and B")
        after_analysis(store)(incident_id)
    finally:
        store.close()
    [line] = [r.getMessage() for r in caplog.records if r.name == "rca.analyses"]
    assert re.fullmatch(
        rf"incident {incident_id} failed: method run, \d+\.\d s: no samples between A and B", line
    )


def test_access_lines_leave_out_healthy_probes_and_mask_report_keys():
    def shown(path: str, status: int) -> str | None:
        args = ("127.0.0.1:5000", "GET", path, "1.1", status)
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, "", 0, "%s %s %s %s %d", args, None
        )
        return record.getMessage() if AccessLog().filter(record) else None

    assert shown("/healthz", 200) is None and shown("/readyz", 200) is None
    assert shown("/readyz", 503) == "127.0.0.1:5000 GET /readyz 1.1 503"
    assert shown("/v1/incidents/a/report?key=secret&x=1", 200) == (
        "127.0.0.1:5000 GET /v1/incidents/a/report?key=***&x=1 1.1 200"
    )


def test_a_body_not_sent_as_json_gets_422_saying_how_to_send_it(client, incident):
    body = json.dumps(rca_body(incident))
    for headers, sent in [
        ({"Content-Type": "application/x-www-form-urlencoded"}, "as application/x-www-form-"),
        ({}, "without a Content-Type"),
    ]:
        reply = client.post("/v1/rca", content=body, headers=headers)
        assert reply.status_code == 422
        [error] = reply.json()["detail"]
        assert error["loc"] == ["body"] and error["type"] == "content_type"
        assert "'Content-Type: application/json'" in error["msg"] and sent in error["msg"]
    assert client.post("/v1/rca", json={"start": "x"}).json()["detail"][0]["type"] != (
        "content_type"
    )


def test_bootstrap_lists_parse_hosts_and_ports():
    assert bootstrap_addresses("a:1,[::1]:2") == [("a", 1), ("::1", 2)]


def _ingest_notices(notice_seconds: float, caplog, enough: int) -> list[str]:
    """Notices of an embedded ingest pointed at a closed port, once ``enough`` were logged or
    after 40 attempts (retrying every 50 ms)."""
    caplog.set_level(logging.INFO)
    config = IngestConfig(bootstrap=f"127.0.0.1:{free_port()}", topic="t", dlq_topic="t.dlq")
    ingest = EmbeddedIngest(config, 1.0, 60.0, 100, 0.05, notice_seconds)

    def notices() -> list[str]:
        return [r.getMessage() for r in caplog.records if "cannot reach Kafka" in r.getMessage()]

    ingest.start()
    try:
        deadline = time.monotonic() + 40 * ingest.retry_seconds
        wait_for(lambda: len(notices()) >= enough or time.monotonic() > deadline, "notices")
    finally:
        ingest.stop()
    assert not any(r.name.startswith("kafka") for r in caplog.records)
    return notices()


def test_kafka_away_gives_one_actionable_line_per_notice_period(caplog):
    [line] = _ingest_notices(300.0, caplog, enough=2)
    assert "start one with `rca broker`" in line and "--bootstrap HOST:PORT" in line
    assert "`rca serve --no-ingest`" in line and "Connection refused" in line
    caplog.clear()
    assert len(_ingest_notices(0.0, caplog, enough=3)) >= 3


@pytest.mark.slow
def test_serve_without_kafka_logs_the_advice_and_no_kafka_errors(tmp_path: Path):
    env = {"RCA_DATABASE_URL": str(tmp_path / "incidents.db"), "RCA_WORKERS": "1"}
    process = ServeProcess(free_port(), env, ["--bootstrap", f"127.0.0.1:{free_port()}"])
    try:
        wait_for(lambda: "cannot reach Kafka" in process.log.read_text(), "the Kafka notice")

        def warm() -> bool:  # /readyz answers 503 without a consumer; the workers warm anyway
            reply = httpx.get(f"{process.url}/readyz", timeout=patience(30))
            return bool(reply.json()["checks"]["model"])

        wait_for(warm, "the analysis workers")  # seconds: several retries of the ingest
    finally:
        assert process.stop(), process.log.read_text()[-3000:]
    log = process.log.read_text()
    assert log.count("cannot reach Kafka") == 1, log
    assert " ERROR " not in log and " kafka." not in log, log


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("docs")
    env = {
        "RCA_DATABASE_URL": str(folder / "incidents.db"),
        "RCA_API_TOKEN": TOKEN,
        "RCA_WORKERS": "1",
        "RCA_WORKER_PROCESSES": "false",
    }
    process = ServeProcess(free_port(), env, ["--no-ingest"])
    process.wait_ready()
    yield process
    assert process.stop(), process.log.read_text()[-3000:]


@pytest.mark.slow
def test_serve_logs_requests_at_info_but_not_healthy_probes(api_only):
    with httpx.Client(base_url=api_only.url, timeout=patience(60)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/incidents").status_code == 401
    wait_for(lambda: '"GET /v1/incidents HTTP/1.1" 401' in api_only.log.read_text(), "access")
    log = api_only.log.read_text()
    assert " INFO uvicorn.access: 127.0.0.1:" in log
    assert "GET /healthz" not in log and '"GET /readyz HTTP/1.1" 200' not in log


@pytest.mark.slow
@pytest.mark.skipif(_CHROMIUM is None, reason="headless Chromium not installed (Debian: chromium)")
@pytest.mark.parametrize(
    ("page", "shown"),
    [
        ("/docs", r'class="opblock-summary-path"[^>]*>.*?/v1/rca'),
        ("/redoc", r"/v1/rca"),
    ],
    ids=["swagger-ui", "redoc"],
)
def test_chromium_renders_the_docs_with_no_way_out(api_only, tmp_path: Path, page, shown):
    # Every host name but loopback resolves to nothing: a page that needs a CDN stays blank.
    dom = subprocess.run(
        [
            str(_CHROMIUM),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{api_only.url}{page}",
        ],
        capture_output=True,
        text=True,
        timeout=patience(120),
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(shown, dom.stdout, re.S), dom.stdout[:3000]
