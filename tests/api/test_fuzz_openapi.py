"""Fuzzing: schemathesis generates requests from ``/openapi.json`` for every operation (valid
and invalid bodies, parameters, headers) and checks that no answer is a 5xx and that every
answer's status code, content type and body are the documented ones. Then the webhooks get
what a schema never generates (NUL, lone surrogates, NaN, ids of 2^70, 5,000-digit panel ids,
onsets of 1e30 or far in the future, over-long names), on SQLite and on PostgreSQL: never a
500, and every alert answered as stored can be read back. Bounded: a fixed number of examples,
derandomised, so CI time is stable."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import schemathesis
import schemathesis.transport.requests
from api_harness import TOKEN, fill_store, fixture, synthetic_incident
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
HOSTILE_EXAMPLES = 60

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


# -- hostile webhooks -----------------------------------------------------------------------

_NOW = pd.Timestamp.now(tz="UTC").floor("s")
_ODD_CHARACTERS = ["\x00", "\ud800", "\udfff", "\ufffd", "\u202e", "é", "\U0001f600", "\n"]
_ODD_STRINGS = [
    "",
    "1e30",
    "-1e30",
    "NaN",
    "inf",
    "9" * 5000,
    "panel-" + "9" * 12,
    str(2**31),
    "x" * 600,
    "u" * 200,
    (_NOW + pd.Timedelta(days=3650)).isoformat(),
    (_NOW - pd.Timedelta(minutes=5)).isoformat(),
    "0001-01-01T00:00:00Z",
    "baro",
]
hostile_text = st.one_of(
    st.text(st.one_of(st.characters(), st.sampled_from(_ODD_CHARACTERS)), max_size=24),
    st.sampled_from(_ODD_STRINGS),
)
hostile_number = st.one_of(
    st.integers(-(2**80), 2**80),
    st.sampled_from([2**31 - 1, 2**31, -(2**31) - 1, 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
)
hostile_value = st.one_of(hostile_text, hostile_number, st.none())
_LABELS = ["alertname", "service", "service_name", "namespace", "rca_onset", "rca_services"]
_ANNOTATIONS = ["__dashboardUid__", "__panelId__", "summary", "rca_onset"]


def mostly(valid: object, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` three times in four: one hostile field refuses the whole notification (422),
    and the paths past validation need notifications that get through."""
    return st.integers(0, 3).flatmap(lambda k: hostile if k == 3 else st.just(valid))


def _labels(names: list[str]) -> st.SearchStrategy[dict]:
    return st.dictionaries(
        st.one_of(st.sampled_from(names), hostile_text), hostile_text, max_size=5
    )


@st.composite
def hostile_alert(draw: st.DrawFn, episode: int) -> dict:
    seconds = draw(st.integers(0, 100_000)) * 4 + episode
    onset = _NOW - pd.Timedelta(days=5) + pd.Timedelta(seconds=seconds)
    alert = {
        "status": draw(st.sampled_from(["firing", "firing", "resolved"])),
        "labels": draw(_labels(_LABELS)),
        "annotations": draw(_labels(_ANNOTATIONS)),
        "startsAt": draw(mostly(onset.isoformat(), hostile_value)),
        "endsAt": draw(mostly("0001-01-01T00:00:00Z", hostile_value)),
        "fingerprint": draw(mostly(f"fp{episode}", hostile_text)),
    }
    extra = {
        "orgId": mostly(1, hostile_number),
        "dashboardURL": st.one_of(hostile_text, hostile_text.map(lambda t: f"http://g/d/{t}/x")),
        "panelURL": st.one_of(
            hostile_text.map(lambda t: f"http://{t}/d/x?viewPanel={t}"),
            st.sampled_from(["http://[", "http://[::1/d/x?viewPanel=1", "//[?viewPanel=2"]),
        ),
        "values": st.dictionaries(hostile_text, hostile_number, max_size=3),
    }
    for name in draw(st.sets(st.sampled_from(sorted(extra)))):
        alert[name] = draw(extra[name])
    return alert


@st.composite
def hostile_notification(draw: st.DrawFn) -> tuple[str, dict]:
    sender = draw(st.sampled_from(["grafana", "alertmanager"]))
    payload = fixture(sender)
    payload["alerts"] = [draw(hostile_alert(k)) for k in range(draw(st.integers(1, 3)))]
    payload["orgId"] = draw(mostly(1, hostile_number))
    payload["commonLabels"] = draw(_labels(_LABELS))
    return sender, payload


def test_hostile_webhooks_never_answer_5xx_and_lose_nothing(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(database_url=database_url, source=None, queue_limit=10_000)

    @given(hostile_notification())
    @settings(
        max_examples=HOSTILE_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(notification: tuple[str, dict]) -> None:
        sender, payload = notification
        body = json.dumps(payload).encode()  # NaN as NaN, surrogates as \\ud800 escapes
        reply = client.post(
            f"/v1/alerts/{sender}", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code in (202, 422), (reply.status_code, reply.text[:500])
        if reply.status_code == 422:
            assert reply.json()["detail"]
            return
        for outcome in reply.json()["data"]:
            if outcome["id"] is not None:
                stored = client.get(f"/v1/incidents/{outcome['id']}")
                assert stored.status_code == 200, stored.text[:500]

    check()
