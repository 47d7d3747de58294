"""End to end on the real broker with real clients: OTel SDK meters -> our Kafka exporter ->
tansu -> ingest -> window; and the official OTLP/HTTP exporter -> our receiver -> the same."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from kafka import KafkaConsumer, TopicPartition
from kafka_harness import Topics, ingest_thread
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from patience import patience, wait_for

from collectors.kafka_exporter import KafkaMetricExporter
from collectors.kafka_sink import KafkaSink
from collectors.otlp_http import create_app
from collectors.otlp_records import resource_key
from rca.ingest.kafka_source import KafkaIngest
from rca.transport.broker import free_port

# http.server.request.duration's advisory buckets (semantic conventions).
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
# 50 requests at 30 ms, 40 at 80 ms, 10 at 300 ms: 90 % are at or below the (0.075, 0.1]
# bucket's top, so p90 interpolates to exactly 0.1 s (and p50 to 0.05 s).
LATENCIES = [0.03] * 50 + [0.08] * 40 + [0.3] * 10


def record_traffic(exporter: MetricExporter, service: str, exports: int) -> None:
    """One process's meters: a latency histogram, a request counter and a queue gauge,
    exported ``exports`` times about a second apart."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=10**9)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "shop"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("test")
    latency = meter.create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=BUCKETS
    )
    requests = meter.create_counter("http.server.requests")
    queue = meter.create_gauge("queue.depth")
    for i in range(exports):
        for seconds in LATENCIES:
            latency.record(seconds, {"http.route": "/pay"})
        requests.add(300)
        queue.set(float(i + 1))
        assert provider.force_flush(int(patience(60) * 1000))
        time.sleep(1.0)
    provider.shutdown()


def raw_requests(topics: Topics, expected: int) -> list[tuple[bytes, ExportMetricsServiceRequest]]:
    """The ``expected`` records on the metrics topic, read back with a plain consumer."""
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topics.metrics, p) for p in range(4)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: list[tuple[bytes, ExportMetricsServiceRequest]] = []

    def read() -> bool:
        for records in consumer.poll(timeout_ms=300).values():
            found.extend((r.key, ExportMetricsServiceRequest.FromString(r.value)) for r in records)
        return len(found) >= expected

    wait_for(read, f"{expected} records on the topic")
    consumer.close()
    return found


def counter_points(found: list[tuple[bytes, ExportMetricsServiceRequest]]) -> list[tuple]:
    points = []
    for _, request in found:
        for metric in request.resource_metrics[0].scope_metrics[0].metrics:
            if metric.name == "http.server.requests":
                points += [(p.time_unix_nano, p.as_int) for p in metric.sum.data_points]
    return sorted(points)


def assert_window_holds_the_traffic(ingest: KafkaIngest, topics: Topics, service: str) -> None:
    # Two exports with traffic, then the one MeterProvider.shutdown() makes with none.
    wait_for(lambda: ingest.health.records >= 3, "three exports stored")
    # The whole retention: the topic is this test's alone.
    since = time.time() - 3600
    window = ingest.store.window(since, time.time() + 5, services=[f"shop/{service}"])
    prefix = f"shop/{service}"
    p90 = window[f"{prefix}:http.server.request.duration:p90{{http.route=/pay}}"].dropna()
    p50 = window[f"{prefix}:http.server.request.duration:p50{{http.route=/pay}}"].dropna()
    assert len(p90) == 2 and np.allclose(p90, 0.1) and np.allclose(p50, 0.05)
    mean = window[f"{prefix}:http.server.request.duration:mean{{http.route=/pay}}"].dropna()
    assert np.allclose(mean, np.mean(LATENCIES))
    assert window[f"{prefix}:queue.depth"].dropna().tolist() == [1.0, 2.0, 2.0]
    # The counter's second rate is (600 - 300) / (t2 - t1), with t1, t2 the points' own times
    # as they travelled through Kafka.
    (t1, v1), (t2, v2), (_, v3) = counter_points(raw_requests(topics, 3))
    assert (v1, v2, v3) == (300, 600, 600)
    rate = window[f"{prefix}:http.server.requests:rate"]
    at_t2 = pd.Timestamp(t2 // 10**9 * 10**9, tz="UTC")
    assert rate[at_t2] == pytest.approx((v2 - v1) / ((t2 - t1) / 1e9))
    assert rate.dropna().iloc[-1] == 0.0


@pytest.mark.slow
def test_sdk_meters_through_our_kafka_exporter_reach_the_window(topics: Topics) -> None:
    with ingest_thread(topics) as ingest:
        record_traffic(KafkaMetricExporter(KafkaSink(topics.bootstrap, topics.metrics)), "cart", 2)
        assert_window_holds_the_traffic(ingest, topics, "cart")
        assert ingest.health.dlq == 0 and ingest.health.last_commit_unix is not None
    # Framed like the Collector's kafka exporter: one resource per record, keyed by its hash.
    found = raw_requests(topics, 3)
    assert all(len(request.resource_metrics) == 1 for _, request in found)
    assert {key for key, _ in found} == {resource_key(found[0][1].resource_metrics[0].resource)}


@contextlib.contextmanager
def running_receiver(sink: KafkaSink) -> Iterator[str]:
    """Our OTLP/HTTP receiver under uvicorn on a free loopback port; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(sink), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the receiver to start")
    try:
        yield f"http://127.0.0.1:{port}/v1/metrics"
    finally:
        server.should_exit = True
        thread.join(patience())


@pytest.fixture
def receiver(topics: Topics) -> Iterator[str]:
    with running_receiver(KafkaSink(topics.bootstrap, topics.metrics)) as url:
        yield url


@pytest.mark.slow
def test_official_otlp_http_exporter_through_our_receiver_reaches_the_window(
    topics: Topics, receiver: str
) -> None:
    exporter = OTLPMetricExporter(
        endpoint=receiver, compression=Compression.Gzip, timeout=patience(60)
    )
    with ingest_thread(topics) as ingest:
        record_traffic(exporter, "checkout", 2)
        assert_window_holds_the_traffic(ingest, topics, "checkout")


@pytest.mark.slow
def test_receiver_json_gzip_and_status_codes(topics: Topics, receiver: str) -> None:
    now = time.time_ns()
    body = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "temp",
                                "gauge": {
                                    "dataPoints": [{"timeUnixNano": str(now), "asDouble": 4.5}]
                                },
                                "futureField": 1,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    json_headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with ingest_thread(topics) as ingest:
        reply = httpx.post(
            receiver, content=gzip.compress(json.dumps(body).encode()), headers=json_headers
        )
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
        wait_for(lambda: ingest.health.samples_stored == 1, "the JSON point stored")
        window = ingest.store.window(now / 1e9 - 5, now / 1e9 + 5)
        assert window["j:temp"].dropna().tolist() == [4.5]

    proto = {"Content-Type": "application/x-protobuf"}
    bad = httpx.post(receiver, content=b"\x0a\xff\xff", headers=proto)
    assert bad.status_code == 400 and b"not an ExportMetricsServiceRequest" in bad.content
    assert (
        httpx.post(receiver, content=b"{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert (
        httpx.post(
            receiver, content=b"x", headers={**proto, "Content-Encoding": "gzip"}
        ).status_code
        == 400
    )
    assert (
        httpx.post(receiver, content=b"", headers={"Content-Type": "text/plain"}).status_code == 415
    )


def test_receiver_answers_503_with_retry_after_when_kafka_is_unreachable() -> None:
    payload = ExportMetricsServiceRequest()
    metric = payload.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=1.0)
    nowhere = KafkaSink(f"127.0.0.1:{free_port()}", "otlp_metrics", timeout_seconds=1)
    with running_receiver(nowhere) as url:
        reply = httpx.post(
            url,
            content=payload.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
    assert reply.status_code == 503 and reply.headers["retry-after"] == "5"
