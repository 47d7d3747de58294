"""At-least-once on the real broker, counted: SIGKILL mid-stream, two members failing over,
a flood of malformed records, and valid records with extreme values that once stopped ingest."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka_harness import IngestProcess, Topics, ingest_thread
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from otlp_builders import SECOND, gauge, request
from patience import wait_for

from collectors.otlp_records import records_by_resource
from rca.ingest.kafka_source import DLQ_REASON_HEADER

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
SERVICES = [f"svc{i}" for i in range(8)]
POINTS_PER_RECORD = 5


pytestmark = pytest.mark.slow  # the real broker and `rca ingest` processes


def gauge_records(start_s: int, count: int, base_ns: int) -> list[tuple[bytes, bytes]]:
    """``count`` records per service, each with the gauge ``seq`` at 5 fresh whole seconds;
    the value is the second's number, so every (service, second) cell is one known point."""
    out = []
    for i in range(start_s, start_s + count * POINTS_PER_RECORD, POINTS_PER_RECORD):
        for service in SERVICES:
            points = [(base_ns + s * SECOND, float(s)) for s in range(i, i + POINTS_PER_RECORD)]
            out += records_by_resource(request([gauge("seq", points)], service_name=service))
    return out


def produce(
    topics: Topics, records: list[tuple[bytes | None, bytes | None]], pause: float = 0
) -> None:
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap, acks="all", linger_ms=2)
    for n, (key, value) in enumerate(records):
        producer.send(topics.metrics, key=key, value=value)
        if pause and n % 40 == 39:
            producer.flush()
            time.sleep(pause)
    producer.flush()
    producer.close()


def cells(process: IngestProcess, base_ns: int, seconds: int) -> dict[str, np.ndarray]:
    """The non-NaN values of each service's ``seq`` series in the process's window."""
    window = process.window(base_ns / 1e9, base_ns / 1e9 + seconds)
    return {
        column.split(":")[0]: window[column].dropna().to_numpy()
        for column in window.columns
        if column.endswith(":seq")
    }


def count(process: IngestProcess, base_ns: int, seconds: int) -> int:
    return sum(len(v) for v in cells(process, base_ns, seconds).values())


def test_sigkill_mid_stream_then_restart_stores_every_point_exactly_once(
    topics: Topics, ingest_processes: Callable[[Topics, str], IngestProcess]
) -> None:
    base_ns = (int(time.time()) - 1800) * SECOND  # inside the 1 h retention
    seconds = 100 * POINTS_PER_RECORD
    records = gauge_records(0, 100, base_ns)  # 800 records, 4,000 points
    group = f"crash-{uuid.uuid4().hex[:6]}"
    first = ingest_processes(topics, group)
    wait_for(lambda: len(first.health()["assigned"]) == 4, "the first process to join")
    # The first half streams while the process is killed; the second half comes after, so
    # the kill is mid-stream however slowly this test's own thread runs.
    producer = threading.Thread(target=produce, args=(topics, records[:400], 0.05))
    producer.start()
    wait_for(lambda: first.health()["records"] >= 150, "the first process mid-stream")
    first.kill()  # SIGKILL: no commit, no leave-group
    producer.join()
    produce(topics, records[400:])

    second = ingest_processes(topics, group)
    expected = len(SERVICES) * seconds
    wait_for(lambda: count(second, base_ns, seconds) == expected, "every point back")
    for service, values in cells(second, base_ns, seconds).items():
        assert values.tolist() == [float(s) for s in range(seconds)], service
    assert second.health()["dlq"] == 0


def test_two_members_split_partitions_and_the_survivor_takes_over_without_loss(
    topics: Topics, ingest_processes: Callable[[Topics, str], IngestProcess]
) -> None:
    base_ns = (int(time.time()) - 1800) * SECOND
    group = f"scale-{uuid.uuid4().hex[:6]}"
    a = ingest_processes(topics, group)
    b = ingest_processes(topics, group)

    def split() -> bool:
        parts_a, parts_b = set(a.health()["assigned"]), set(b.health()["assigned"])
        return bool(parts_a) and bool(parts_b) and len(parts_a | parts_b) == 4

    wait_for(split, "both members to own partitions")
    assert not set(a.health()["assigned"]) & set(b.health()["assigned"])
    produce(topics, gauge_records(0, 20, base_ns))  # 100 s x 8 services
    first_total = len(SERVICES) * 100
    wait_for(lambda: count(a, base_ns, 200) + count(b, base_ns, 200) == first_total, "split")
    assert count(a, base_ns, 200) > 0 and count(b, base_ns, 200) > 0

    a.kill()
    produce(topics, gauge_records(100, 20, base_ns))  # 100 more seconds while b takes over
    wait_for(lambda: len(b.health()["assigned"]) == 4, "the survivor to own every partition")
    wait_for(lambda: count(b, base_ns, 200) == 2 * first_total, "every point on the survivor")
    for service, values in cells(b, base_ns, 200).items():
        assert values.tolist() == [float(s) for s in range(200)], service


def malformed_payloads(rng: np.random.Generator, valid: bytes) -> list[tuple[str, bytes | None]]:
    """1,000 random or truncated payloads, then records of the wrong type."""
    bad: list[tuple[str, bytes | None]] = []
    for i in range(1000):
        if i % 2:
            bad.append(("random", rng.bytes(int(rng.integers(1, 300)))))
        else:
            bad.append(("truncated", valid[: int(rng.integers(0, len(valid)))]))
    traces = ExportTraceServiceRequest()
    traces.resource_spans.add().scope_spans.add().spans.add(name="GET /", trace_id=bytes(16))
    bad += [
        ("tombstone", None),
        ("json", b'{"resourceMetrics": [{"resource": {}}]}'),
        ("text", b"cpu_usage 0.5\n"),
        ("traces", traces.SerializeToString()),
        ("empty request", ExportMetricsServiceRequest().SerializeToString()),
    ]
    return bad


def dlq_records(topics: Topics, expected: int, settle_s: float = 0.0) -> list[ConsumerRecord]:
    """The DLQ's records: until ``expected`` are read, then ``settle_s`` more (a record
    beyond ``expected`` that arrives later is missed; one that never comes fails the wait)."""
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topics.dlq, 0)])
    consumer.seek_to_beginning()
    dead: list[ConsumerRecord] = []

    def read() -> bool:
        for records in consumer.poll(timeout_ms=300).values():
            dead.extend(records)
        return len(dead) >= expected

    wait_for(read, f"{expected} records on the DLQ")
    settled = time.monotonic() + settle_s
    while time.monotonic() < settled:
        for records in consumer.poll(timeout_ms=300).values():
            dead += records
    consumer.close()
    return dead


def test_malformed_records_go_to_the_dlq_with_reasons_and_valid_ones_are_all_stored(
    topics: Topics,
) -> None:
    rng = np.random.default_rng(7)
    now_ns = time.time_ns() // SECOND * SECOND
    valid = [
        request(
            [gauge("ok", [(now_ns - (200 - i) * SECOND, float(i))])], service_name="v"
        ).SerializeToString()
        for i in range(200)
    ]
    bad = malformed_payloads(rng, valid[0])
    stream: list[tuple[bytes | None, bytes | None]] = []
    for i, (_, payload) in enumerate(bad):
        stream.append((b"k", payload))
        if i % 5 == 0 and valid:
            stream.append((b"k", valid.pop()))
    stream += [(b"k", payload) for payload in valid]

    with ingest_thread(topics) as ingest:
        produce(topics, stream)
        wait_for(lambda: ingest.health.records == len(stream), "every record handled")
        assert ingest.health.dlq == len(bad)
        window = ingest.store.window(now_ns / 1e9 - 200, now_ns / 1e9)
        assert window["v:ok"].dropna().tolist() == [float(i) for i in range(200)]

    dead = dlq_records(topics, len(bad))
    assert len(dead) == len(bad)
    reasons = [dict(record.headers)[DLQ_REASON_HEADER].decode() for record in dead]
    assert all(reasons)
    assert any(r.startswith("not an OTLP ExportMetricsServiceRequest") for r in reasons)
    assert any(r.startswith("empty record") for r in reasons)
    # The original bytes are kept for replay (a tombstone becomes an empty value).
    assert [record.value for record in dead] == [payload or b"" for _, payload in bad]


def committed(topics: Topics, group: str) -> int:
    """The offsets ``group`` committed on the metrics topic, summed over its partitions."""
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=group)
    partitions = consumer.partitions_for_topic(topics.metrics) or set()
    offsets = [consumer.committed(TopicPartition(topics.metrics, p)) for p in partitions]
    consumer.close(autocommit=False)
    return sum(offset or 0 for offset in offsets)


def extreme_exponential_histogram(time_ns: int) -> Metric:
    """Scale -10 and offset 2000: once ``OverflowError`` out of the batch handler."""
    metric = Metric(name="lat")
    metric.exponential_histogram.aggregation_temporality = DELTA
    point = metric.exponential_histogram.data_points.add(
        start_time_unix_nano=time_ns - SECOND, time_unix_nano=time_ns, scale=-10, count=3
    )
    point.positive.offset = 2000
    point.positive.bucket_counts.extend([1, 2])
    return metric


def test_poison_records_are_dead_lettered_once_and_ingest_keeps_storing_and_committing(
    topics: Topics, ingest_processes: Callable[..., IngestProcess]
) -> None:
    base_ns = (int(time.time()) - 600) * SECOND
    seconds = 10 * POINTS_PER_RECORD
    good = gauge_records(0, 10, base_ns)  # 80 records, 400 points
    now_ns = base_ns + seconds * SECOND
    dead_values = [
        # once an OverflowError in the window store: `rca ingest` exited, and again on restart
        request([gauge("seq", [(2**64 - 1, 1.0)])], service_name="svc0"),
        request([gauge("seq", [(now_ns, math.nan)])], service_name="svc1"),
    ]
    kept_values = [
        request([extreme_exponential_histogram(now_ns)], service_name="svc2"),
        request([gauge("mixed", [(now_ns, 1.0), (2**64 - 1, 2.0)])], service_name="svc3"),
    ]
    poison: list[tuple[bytes | None, bytes | None]] = [
        (b"p", value.SerializeToString()) for value in dead_values + kept_values
    ]
    poison.append((b"p", b"\xff\x00 not protobuf"))
    stream = good[:40] + poison + good[40:]
    group = f"poison-{uuid.uuid4().hex[:6]}"
    first = ingest_processes(topics, group)
    produce(topics, stream)
    expected = len(SERVICES) * seconds
    wait_for(lambda: first.health()["records"] == len(stream), "every record handled")
    health = first.health()
    assert first.alive() and count(first, base_ns, seconds) == expected
    assert health["dlq"] == 3 and health["dlq_points"] == 2 and health["handler_errors"] == 0
    assert health["invalid_points"] == 1 and "past 2**63" in health["last_invalid_reason"]
    assert health["points"] == expected + 2 and health["max_series"] == 50_000
    assert committed(topics, group) == len(stream)
    reasons = sorted(dict(r.headers)[DLQ_REASON_HEADER].decode() for r in dlq_records(topics, 3))
    assert len(reasons) == 3 and "non-finite value (nan)" in reasons[0]
    assert "past 2**63" in reasons[1] and reasons[2].startswith("not an OTLP")

    # A restart rebuilds the hour from the topic: the good points again, no DLQ record twice.
    assert first.stop() == 0
    second = ingest_processes(topics, group)
    wait_for(lambda: count(second, base_ns, seconds) == expected, "every point back")
    wait_for(lambda: second.health()["dlq_already_sent"] == 3, "the dead records re-read")
    assert second.alive() and second.health()["dlq"] == 0
    assert len(dlq_records(topics, 3, settle_s=2.0)) == 3
