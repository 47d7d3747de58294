"""Create the RCA topics on an existing Kafka cluster when they are missing (Helm hook Job).

Reads its settings from the environment that the chart sets: RCA_KAFKA_BOOTSTRAP,
RCA_METRICS_TOPIC, RCA_DLQ_TOPIC, TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR,
TOPIC_RETENTION_MS, DLQ_RETENTION_MS, INGEST_REPLICAS. It never deletes a topic or changes an
existing one; it warns when an existing metrics topic has fewer partitions than ingest workers
(the extra workers would sit idle). Exit status 0 when both topics exist at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError


def _admin(bootstrap: str, deadline: float) -> KafkaAdminClient:
    # The cluster may still be starting (first install next to it): retry until the deadline.
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap.split(","),
                client_id="rca-create-topics",
                request_timeout_ms=10_000,
            )
        except KafkaError as error:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for Kafka at {bootstrap}: {error}", file=sys.stderr)
            time.sleep(2)


def _partitions(admin: KafkaAdminClient, topic: str) -> int | None:
    for description in admin.describe_topics([topic]):
        if description.get("topic") == topic or description.get("name") == topic:
            return len(description.get("partitions") or [])
    return None


def main() -> int:
    env = os.environ
    bootstrap = env["RCA_KAFKA_BOOTSTRAP"]
    topic, dlq = env["RCA_METRICS_TOPIC"], env["RCA_DLQ_TOPIC"]
    partitions = int(env["TOPIC_PARTITIONS"])
    replication = int(env["TOPIC_REPLICATION_FACTOR"])
    workers = int(env.get("INGEST_REPLICAS", "1"))
    wanted = {
        topic: {
            "num_partitions": partitions,
            "replication_factor": replication,
            "configs": {"retention.ms": env["TOPIC_RETENTION_MS"]},
        },
        dlq: {
            "num_partitions": 1,
            "replication_factor": replication,
            "configs": {"retention.ms": env["DLQ_RETENTION_MS"]},
        },
    }
    admin = _admin(bootstrap, time.monotonic() + float(env.get("WAIT_SECONDS", "120")))
    try:
        existing = set(admin.list_topics())
        missing = {name: spec for name, spec in wanted.items() if name not in existing}
        if missing:
            # Another process may create one between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
            print(f"created {sorted(missing)}")
        for name in sorted(set(wanted) - set(missing)):
            print(f"kept existing topic {name}")
        have = _partitions(admin, topic)
        if have is not None and have < workers:
            print(
                f"WARNING: topic {topic} has {have} partitions for {workers} ingest workers; "
                f"{workers - have} will sit idle. Add partitions or lower ingest.replicas.",
                file=sys.stderr,
            )
        final = set(admin.list_topics())
    finally:
        admin.close()
    absent = sorted(set(wanted) - final)
    if absent:
        print(f"topics still missing: {absent}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
