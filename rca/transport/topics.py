"""Create the telemetry topics on any Kafka-compatible broker."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError


def ensure_topics(bootstrap: str, topics: Mapping[str, int], timeout_seconds: float = 10.0) -> None:
    """Create each topic (name -> partitions) that does not exist yet; existing ones are kept
    as they are. Retries until ``timeout_seconds`` because a broker that just started may not
    answer metadata requests yet."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="rca-admin"
            )
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        missing = {
            name: {"num_partitions": partitions, "replication_factor": 1}
            for name, partitions in topics.items()
            if name not in set(admin.list_topics())
        }
        # Another process may create one between our list and create: that is fine.
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


def telemetry_topics(metrics_topic: str, dlq_topic: str, partitions: int) -> dict[str, int]:
    """The topics the telemetry path needs: metrics with ``partitions``, a one-partition DLQ."""
    return {metrics_topic: partitions, dlq_topic: 1}
