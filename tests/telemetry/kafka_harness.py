"""Helpers for the telemetry tests on the real broker: per-test topics, ingest
consumers (in-process threads or ``rca ingest`` subprocesses). A module of its own, not the
conftest, so that test modules can import it by a name no other conftest shares."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from patience import patience

from rca.ingest.kafka_source import IngestConfig, KafkaIngest
from rca.store.window_store import WindowStore

# Short group timeouts: a tansu join takes ~3 s, a dead member is noticed after the session.
SESSION_TIMEOUT_MS = 3000
MAX_POLL_INTERVAL_MS = 5000


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    metrics: str
    dlq: str


def ingest_config(topics: Topics, group: str | None = None) -> IngestConfig:
    return IngestConfig(
        bootstrap=topics.bootstrap,
        topic=topics.metrics,
        dlq_topic=topics.dlq,
        group=group or f"g-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
    )


@contextlib.contextmanager
def ingest_thread(
    topics: Topics, retention_seconds: float = 3600, step_seconds: float = 1.0
) -> Iterator[KafkaIngest]:
    """An in-process consumer on a thread; stopped (and the group left) on exit."""
    store = WindowStore(step_seconds, retention_seconds)
    ingest = KafkaIngest(ingest_config(topics), store)
    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield ingest
    finally:
        stop.set()
        thread.join(timeout=patience())
        assert not thread.is_alive(), "the ingest thread did not stop"


class IngestProcess:
    """``rca ingest`` as a real subprocess, with its status endpoint."""

    def __init__(self, topics: Topics, group: str, *args: str, **env_vars: str) -> None:
        env = dict(
            os.environ,
            RCA_METRICS_TOPIC=topics.metrics,
            RCA_DLQ_TOPIC=topics.dlq,
            RCA_KAFKA_SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_MS),
            RCA_KAFKA_MAX_POLL_INTERVAL_MS=str(MAX_POLL_INTERVAL_MS),
            **env_vars,
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rca.cli",
                "ingest",
                "--bootstrap",
                topics.bootstrap,
                "--group",
                group,
                "--retention",
                "1h",
                "--step",
                "1s",
                "--http",
                "127.0.0.1:0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "status on http://" in line, f"unexpected first line {line!r}"
        self.url = line.rsplit("status on ", 1)[1].strip().removesuffix("/health")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=patience(60)) as reply:
            return json.loads(reply.read())

    def window(self, start_s: float, end_s: float, token: str | None = None) -> pd.DataFrame:
        query = f"{self.url}/window?start={start_s}&end={end_s}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(query, headers=headers), timeout=patience(60)
            ) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError:  # 400: nothing in the range yet
            return pd.DataFrame()
        index = pd.to_datetime(body["index"], unit="ns", utc=True)
        return pd.DataFrame(body["data"], index=index, columns=body["columns"], dtype=float)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(patience())

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(patience())
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
