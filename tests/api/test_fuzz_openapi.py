"""Fuzzing: schemathesis generates requests from ``/openapi.json`` for every operation (valid
and invalid bodies, parameters, headers) and checks that no answer is a 5xx and that every
answer's status code, content type and body are the documented ones. Bounded: a fixed number
of examples per operation, derandomised, so CI time is stable."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import schemathesis.transport.requests
from api_harness import TOKEN, fill_store, synthetic_incident
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from rca.api import create_app
from rca.settings import Settings
from rca.store.window_store import WindowStore

EXAMPLES_PER_OPERATION = 30

# schemathesis needs the app when the module is collected, so the app (and its temporary
# database folder, removed after the module) is made here; the lifespan runs in the fixture.
_folder = Path(tempfile.mkdtemp(prefix="rca-fuzz-"))
_store = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
fill_store(_store, synthetic_incident().frame)
app = create_app(
    Settings(
        database_url=str(_folder / "incidents.db"),
        worker_processes=False,
        workers=1,
        method="baro",
        api_token=TOKEN,
        max_body_bytes=64 * 1024,
    ),
    source=_store,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(autouse=True)
def _urllib3_future_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """grafana-client's HTTP library (niquests) installs urllib3-future in place of urllib3;
    its pool container has no ``keys()``, which schemathesis' connection counting (used only
    to decide whether to resend a request dropped by a keep-alive server; never the case for
    an in-process ASGI app) calls. Count none."""
    monkeypatch.setattr(
        schemathesis.transport.requests, "_count_opened_connections", lambda session: 0
    )


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    """The lifespan (incident store, workers) runs for the whole module."""
    try:
        with TestClient(app):
            yield
    finally:
        shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
