"""``rca broker`` as a user runs it, and seeking by time on a broker whose ListOffsets is wrong."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka_harness import Topics, ingest_thread
from otlp_builders import SECOND, gauge, request
from patience import patience, wait_for

pytestmark = pytest.mark.slow  # the real broker


def test_rca_broker_starts_tansu_with_the_topics_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rca.cli", "broker", "--partitions", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        bootstrap = line.split("Kafka API on ")[1].split(";")[0]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
        admin.close()
        assert described == {"otlp_metrics": 3, "otlp_metrics.dlq": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(patience()) == 0
    host, port = bootstrap.split(":")
    with socket.socket() as sock:
        assert sock.connect_ex((host, int(port))) != 0, "tansu still listens after rca broker"


def test_rebuild_skips_records_older_than_the_retention_when_list_offsets_is_wrong(
    topics: Topics,
) -> None:
    now_ms = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap)
    for i in range(20):
        # Records 0-9 were written two hours ago, 10-19 now; every point is recent.
        written_ms = now_ms - 7_200_000 if i < 10 else now_ms
        point = request(
            [gauge("g", [(now_ms * 10**6 - (30 - i) * SECOND, float(i))])], service_name="s"
        )
        producer.send(
            topics.metrics, key=b"s", value=point.SerializeToString(), timestamp_ms=written_ms
        )
    producer.flush()
    producer.close()
    with ingest_thread(topics, retention_seconds=3600) as ingest:
        wait_for(lambda: ingest.health.records == 20, "all records read")
        # tansu 0.6.0 answers offsets_for_times wrongly: detected, and read from the start.
        assert ingest.health.list_offsets_trusted is False
        assert ingest.health.skipped_before_retention == 10
        window = ingest.store.window(now_ms / 1000 - 40, now_ms / 1000)
        assert window["s:g"].dropna().tolist() == [float(i) for i in range(10, 20)]
