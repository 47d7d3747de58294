"""Helpers for the serve tests: a synthetic incident with a known root cause (timed to end
now), the webhook fixtures, HMAC signing, OTLP records for Kafka, and ``rca serve`` as a real
subprocess. A module of its own (not the conftest) so tests import it by a unique name."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from patience import patience, wait_for

from collectors.otlp_records import records_by_resource
from rca.datasets.synthetic import Synthetic, SyntheticConfig
from rca.store.window_store import WindowStore
from rca.types import parse_series_name, series_name

FIXTURES = Path(__file__).parent / "fixtures"
STEP_SECONDS = 5.0
# The fixture's alert fires on this service: the synthetic call graph's entry point is renamed
# to it, so the symptom is where the alert says and the root cause is somewhere below.
ALERT_SERVICE = "vllm-decode"
# Seeded synthetic case whose root cause baro, run-nograph and run all name (checked offline
# by test_synthetic_case_is_solvable_offline, so a failure downstream is the platform's).
CASE_SEED, CASE_ID = 0, "0001"
TOKEN = "test-token-0123456789"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}_webhook_payload.json").read_text())


def gauge_name(column: str) -> str:
    """A synthetic column as ingest names the gauge we send for it (the statistic becomes part
    of the metric name: gauges carry no statistic)."""
    key = parse_series_name(column)
    service = ALERT_SERVICE if key.service == "frontend" else key.service
    return series_name(service, f"{key.metric}.{key.stat}" if key.stat else key.metric)


@dataclass(frozen=True)
class Incident:
    """History + incident window ending at ``end``, the onset, and the root cause."""

    frame: pd.DataFrame
    onset: pd.Timestamp
    window_start: pd.Timestamp
    truth: str

    @property
    def end(self) -> pd.Timestamp:
        return self.frame.index[-1]

    @property
    def window(self) -> pd.DataFrame:
        return self.frame.loc[self.frame.index >= self.window_start]

    @property
    def history(self) -> pd.DataFrame:
        return self.frame.loc[self.frame.index < self.window_start]


def synthetic_incident(end: pd.Timestamp | None = None) -> Incident:
    config = SyntheticConfig(n_cases=int(CASE_ID) + 1, seed=CASE_SEED)
    case = Synthetic(config).load(CASE_ID)
    frame = pd.concat([case.history, case.window]).rename(columns=gauge_name)
    end = end if end is not None else pd.Timestamp.now(tz="UTC").floor(f"{STEP_SECONDS:.0f}s")
    shift = end - frame.index[-1]
    frame.index = (frame.index + shift).as_unit("ns")
    truth = ALERT_SERVICE if case.truth.service == "frontend" else case.truth.service
    return Incident(frame, case.onset + shift, case.window.index[0] + shift, truth)


def fill_store(store: WindowStore, frame: pd.DataFrame) -> None:
    times = frame.index.as_unit("ns").asi8
    for column in frame.columns:
        key = parse_series_name(column)
        keys = [(key.service, key.metric, key.stat, key.attrs)] * len(times)
        store.write(keys, list(times), frame[column].to_list())


def otlp_records(frame: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """One ExportMetricsServiceRequest per service (gauges, every point), keyed by resource as
    the Collector's kafka exporter does."""
    request = ExportMetricsServiceRequest()
    by_service: dict[str, list[str]] = {}
    for column in frame.columns:
        by_service.setdefault(parse_series_name(column).service, []).append(column)
    times = frame.index.as_unit("ns").asi8
    for service, columns in by_service.items():
        resource_metrics = request.resource_metrics.add()
        resource_metrics.resource.attributes.append(
            KeyValue(key="service.name", value=AnyValue(string_value=service))
        )
        scope = resource_metrics.scope_metrics.add()
        for column in columns:
            metric = scope.metrics.add(name=parse_series_name(column).metric)
            for t, v in zip(times, frame[column].to_numpy(), strict=True):
                metric.gauge.data_points.add(time_unix_nano=int(t), as_double=float(v))
    return records_by_resource(request)


def grafana_alert(onset: pd.Timestamp, **alert_fields: object) -> dict:
    """The Grafana fixture with its alert starting at ``onset``."""
    payload = copy.deepcopy(fixture("grafana"))
    payload["alerts"][0]["startsAt"] = onset.isoformat()
    payload["alerts"][0].update(alert_fields)
    return payload


def sign(body: bytes, secret: str, timestamp: str | None = None) -> str:
    message = body if timestamp is None else timestamp.encode() + b":" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class ServeProcess:
    """``rca serve`` as a real process (uvicorn) on a loopback port."""

    def __init__(self, port: int, env: dict[str, str], args: list[str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(env["RCA_DATABASE_URL"]).with_suffix(".log")
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rca.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )

    def wait_ready(self, ready: Callable[[dict], bool] | None = None) -> dict:
        """``/readyz`` once it answers 200 (and ``ready`` holds for its body)."""
        state: dict = {}

        def check() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"rca serve exited: {self.log.read_text()[-3000:]}")
            try:
                reply = httpx.get(f"{self.url}/readyz", timeout=patience(30))
            except httpx.HTTPError:
                return False
            state.update(reply.json())
            return reply.status_code == 200 and (ready is None or ready(state))

        wait_for(check, f"rca serve to be ready ({self.log})")
        return state

    def stop(self) -> bool:
        """SIGTERM (what Kubernetes sends), then SIGKILL if it does not go; whether it shut
        down cleanly (uvicorn re-raises the signal after a graceful shutdown, so the exit status
        is -SIGTERM, and the log has no traceback)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(patience())
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        clean = self.process.returncode in (0, -signal.SIGTERM)
        return clean and "Traceback" not in self.log.read_text()
