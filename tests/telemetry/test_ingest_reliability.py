"""At-least-once on the real broker, counted: SIGKILL mid-stream, two members failing over,
and a flood of malformed records."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka_harness import IngestProcess, Topics, ingest_thread, wait_for
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_builders import SECOND, gauge, request

from collectors.otlp_records import records_by_resource
from rca.ingest.kafka_source import DLQ_REASON_HEADER

SERVICES = [f"svc{i}" for i in range(8)]
POINTS_PER_RECORD = 5


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
    wait_for(lambda: len(first.health()["assigned"]) == 4, 30, "the first process to join")
    producer = threading.Thread(target=produce, args=(topics, records, 0.05))
    producer.start()
    wait_for(lambda: first.health()["records"] >= 150, 60, "the first process mid-stream")
    handled_before_kill = first.health()["records"]
    first.kill()  # SIGKILL: no commit, no leave-group
    assert handled_before_kill < len(records)
    producer.join()

    second = ingest_processes(topics, group)
    expected = len(SERVICES) * seconds
    wait_for(lambda: count(second, base_ns, seconds) == expected, 60, "every point back")
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

    wait_for(split, 40, "both members to own partitions")
    assert not set(a.health()["assigned"]) & set(b.health()["assigned"])
    produce(topics, gauge_records(0, 20, base_ns))  # 100 s x 8 services
    first_total = len(SERVICES) * 100
    wait_for(lambda: count(a, base_ns, 200) + count(b, base_ns, 200) == first_total, 30, "split")
    assert count(a, base_ns, 200) > 0 and count(b, base_ns, 200) > 0

    a.kill()
    produce(topics, gauge_records(100, 20, base_ns))  # 100 more seconds while b takes over
    wait_for(lambda: len(b.health()["assigned"]) == 4, 40, "the survivor to own every partition")
    wait_for(lambda: count(b, base_ns, 200) == 2 * first_total, 40, "every point on the survivor")
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
        wait_for(lambda: ingest.health.records == len(stream), 60, "every record handled")
        assert ingest.health.dlq == len(bad)
        window = ingest.store.window(now_ns / 1e9 - 200, now_ns / 1e9)
        assert window["v:ok"].dropna().tolist() == [float(i) for i in range(200)]

    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topics.dlq, 0)])
    consumer.seek_to_beginning()
    dead = []
    deadline = time.monotonic() + 20
    while len(dead) < len(bad) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=300).values():
            dead += records
    consumer.close()
    assert len(dead) == len(bad)
    reasons = [dict(record.headers)[DLQ_REASON_HEADER].decode() for record in dead]
    assert all(reasons)
    assert any(r.startswith("not an OTLP ExportMetricsServiceRequest") for r in reasons)
    assert any(r.startswith("empty record") for r in reasons)
    # The original bytes are kept for replay (a tombstone becomes an empty value).
    assert [record.value for record in dead] == [payload or b"" for _, payload in bad]
