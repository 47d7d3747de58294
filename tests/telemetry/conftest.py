"""Fixtures for the telemetry path: the real tansu broker, fresh topics per test, and
``rca ingest`` subprocesses. Everything started here is stopped here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka_harness import IngestProcess, Topics
from patience import patience

from rca.transport.broker import TansuBroker, start_broker
from rca.transport.topics import ensure_topics


@pytest.fixture(scope="session")
def broker() -> Iterator[TansuBroker]:
    running = start_broker(timeout_seconds=patience(60))
    yield running
    assert running.stop(patience(60)) == 0


@pytest.fixture
def topics(broker: TansuBroker) -> Topics:
    """A fresh metrics topic (4 partitions) and DLQ per test, so tests cannot see each
    other's records on the shared broker."""
    name = f"otlp_metrics_{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, {name: 4, f"{name}.dlq": 1}, patience(60))
    return Topics(broker.bootstrap, name, f"{name}.dlq")


@pytest.fixture
def ingest_processes() -> Iterator[Callable[..., IngestProcess]]:
    """Start ``rca ingest`` processes (``start(topics, group, *flags, **env)``); whatever is
    still running at the end is stopped."""
    started: list[IngestProcess] = []

    def start(topics: Topics, group: str, *args: str, **env: str) -> IngestProcess:
        started.append(IngestProcess(topics, group, *args, **env))
        return started[-1]

    yield start
    for process in started:
        process.stop()
