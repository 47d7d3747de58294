"""Soak: ``rca ingest`` under a mixed stream with 1 % hostile records, bounded in time.

    .venv/bin/python bench/soak_ingest.py [--minutes 2.5] [--json bench/soak_ingest.json]

A real tansu broker and ``rca ingest`` as its own process. For ``--minutes``, every second,
``--services`` records of ``--points`` data points each (gauges, cumulative counters, explicit
histograms, stamped now) go to the metrics topic; ``--hostile`` of the records (1 %) are
hostile instead: valid but extreme values (times 0 and 2**64-1, NaN and infinite levels,
exponential histograms at scale -10 / offset 2000 and scale 20 / offset -2**31, bounds of inf,
counts of 2**64-1, a 100,000-character attribute, 80 attributes) or malformed bytes (random,
truncated, an empty request). Every ``--sample-seconds`` the process's RSS and ``/health``
counters are read. Reported:

- stops: samples where the process was not running (must be 0);
- accounting: every data point produced is valid, dropped with a reason or in a dead-lettered
  record (``points + invalid_points + dlq_points``), every record is handled, and the DLQ topic
  holds as many records as ``/health`` says were sent;
- memory: RSS over time, and its growth from the end of the first quarter to the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from rca.ingest.otlp_decode import data_points
from rca.transport.broker import running_broker

SECOND = 10**9
U64 = 2**64 - 1
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]
# RSS may move this much between the end of the first quarter and the end and still be flat.
FLAT_TOLERANCE = 0.10


def _request(service: str, metrics: list[Metric], **attributes: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = service
    for key, value in attributes.items():
        rm.resource.attributes.add(key=key).value.string_value = value
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


def _gauge(name: str, time_ns: int, value: float, attributes: int = 1, text: str = "a") -> Metric:
    metric = Metric(name=name)
    point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
    point.attributes.extend(
        KeyValue(key=f"k{i}", value=AnyValue(string_value=text)) for i in range(attributes)
    )
    return metric


def _counter(name: str, start_ns: int, time_ns: int, value: int) -> Metric:
    metric = Metric(name=name)
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = CUMULATIVE
    metric.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=time_ns, as_int=value)
    return metric


def _histogram(name: str, start_ns: int, time_ns: int, counts: list[int], bounds: list[float]):
    metric = Metric(name=name)
    metric.histogram.aggregation_temporality = CUMULATIVE
    metric.histogram.data_points.add(
        start_time_unix_nano=start_ns,
        time_unix_nano=time_ns,
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts) % 2**64,
        sum=0.1 * sum(counts),
    )
    return metric


def _exponential(time_ns: int, scale: int, offset: int) -> Metric:
    metric = Metric(name="latency.exp")
    metric.exponential_histogram.aggregation_temporality = DELTA
    point = metric.exponential_histogram.data_points.add(
        start_time_unix_nano=time_ns - SECOND, time_unix_nano=time_ns, scale=scale, count=3, sum=3.0
    )
    point.positive.offset = offset
    point.positive.bucket_counts.extend([1, 2])
    return metric


def good_record(service: int, points: int, tick: int, start_ns: int, now_ns: int) -> bytes:
    """One export of ``points`` data points: 60 % gauges, 30 % counters, 10 % histograms."""
    gauges, counters = int(points * 0.6), int(points * 0.3)
    metrics = [_gauge(f"gauge.{g}", now_ns, float(tick + g)) for g in range(gauges)]
    metrics += [
        _counter(f"counter.{c}", start_ns, now_ns, (tick + 1) * (c + 1)) for c in range(counters)
    ]
    counts = [(tick + 1) * (i % 3) for i in range(len(BUCKETS) + 1)]
    metrics += [
        _histogram(f"histogram.{h}", start_ns, now_ns, counts, BUCKETS)
        for h in range(points - gauges - counters)
    ]
    return _request(f"svc-{service}", metrics).SerializeToString()


def hostile_records(rng: random.Random, good: bytes, now_ns: int) -> list[Callable[[], bytes]]:
    """Makers of hostile records: extreme but valid values, then malformed bytes."""

    def valid(*metrics: Metric) -> Callable[[], bytes]:
        return lambda: _request("hostile", list(metrics)).SerializeToString()

    return [
        valid(_gauge("t", U64, 1.0)),
        valid(_gauge("t", 0, 1.0)),
        valid(_gauge("nan", now_ns, math.nan)),
        valid(_gauge("inf", now_ns, math.inf), _gauge("ok", now_ns, 1.0)),
        valid(_exponential(now_ns, -10, 2000)),
        valid(_exponential(now_ns, 20, -(2**31))),
        valid(_histogram("h.inf", now_ns - SECOND, now_ns, [U64, 1, 1], [1.0, math.inf])),
        valid(_counter("c.huge", 1, now_ns, 2**63 - 1)),
        valid(_gauge("long", now_ns, 1.0, text="x" * 100_000)),
        valid(_gauge("wide", now_ns, 1.0, attributes=80)),
        lambda: rng.randbytes(rng.randrange(1, 400)),
        lambda: good[: rng.randrange(1, len(good))],
        lambda: ExportMetricsServiceRequest().SerializeToString(),
    ]


class Ingest:
    """``rca ingest`` as its own process, with its status endpoint."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        env = dict(os.environ, RCA_METRICS_TOPIC=topic, RCA_DLQ_TOPIC=f"{topic}.dlq")
        group = f"soak-{uuid.uuid4().hex[:6]}"
        command = ["ingest", "--bootstrap", bootstrap, "--group", group, "--http", "127.0.0.1:0"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rca.cli", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "status on http://" not in line:
            raise RuntimeError(f"rca ingest did not start: {line!r}")
        self.url = line.rsplit("status on ", 1)[1].strip()
        self.psutil = psutil.Process(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def health(self) -> dict:
        with urllib.request.urlopen(self.url, timeout=10) as reply:
            return json.loads(reply.read())

    def rss_mb(self) -> float:
        return self.psutil.memory_info().rss / 2**20

    def stop(self) -> int | None:
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def dlq_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_end(partition)
    end = consumer.position(partition)
    consumer.close()
    return end


def soak(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    topic = "otlp_metrics"
    topics = {topic: 4, f"{topic}.dlq": 1}
    produced = {"records": 0, "points": 0, "hostile": 0}
    rows: list[dict] = []
    stops = 0
    with running_broker(topics=topics) as broker:
        ingest = Ingest(broker.bootstrap, topic)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=20)
        start_ns = time.time_ns() - SECOND
        began = time.monotonic()
        end = began + args.minutes * 60
        next_sample = began
        tick = 0
        try:
            while time.monotonic() < end:
                now_ns = time.time_ns()
                for service in range(args.services):
                    value = good_record(service, args.points, tick, start_ns, now_ns)
                    if rng.random() < args.hostile:
                        value = rng.choice(hostile_records(rng, value, now_ns))()
                        produced["hostile"] += 1
                    producer.send(topic, key=f"svc-{service}".encode(), value=value)
                    produced["records"] += 1
                    produced["points"] += data_points(value)
                producer.flush()
                tick += 1
                if time.monotonic() >= next_sample:
                    stops += not ingest.alive()
                    rows.append(sample(ingest, began))
                    print_row(rows[-1])
                    next_sample += args.sample_seconds
                time.sleep(max(0.0, began + tick - time.monotonic()))
            producer.close()
            deadline = time.monotonic() + 120
            while ingest.alive() and time.monotonic() < deadline:
                if ingest.health()["records"] >= produced["records"]:
                    break
                time.sleep(0.5)
            stops += not ingest.alive()
            final = ingest.health() if ingest.alive() else {}
            rows.append(sample(ingest, began))
            print_row(rows[-1])
            dead_on_topic = dlq_count(broker.bootstrap, f"{topic}.dlq")
        finally:
            exit_code = ingest.stop()
    return summary(args, produced, rows, final, stops, dead_on_topic, exit_code)


def sample(ingest: Ingest, began: float) -> dict:
    health = ingest.health() if ingest.alive() else {}
    return {
        "t_s": round(time.monotonic() - began),
        "rss_mb": round(ingest.rss_mb(), 1) if ingest.alive() else None,
        "records": health.get("records"),
        "points": health.get("points"),
        "dlq": health.get("dlq"),
        "series": health.get("series"),
    }


def print_row(row: dict) -> None:
    print("  ".join(f"{key} {value!s:>8}" for key, value in row.items()), flush=True)


def summary(
    args: argparse.Namespace,
    produced: dict,
    rows: list[dict],
    health: dict,
    stops: int,
    dead_on_topic: int,
    exit_code: int | None,
) -> dict:
    accounted = sum(health.get(k, 0) for k in ("points", "invalid_points", "dlq_points"))
    rss = [row["rss_mb"] for row in rows if row["rss_mb"] is not None]
    settled = rss[len(rss) // 4] if rss else math.nan
    growth = (rss[-1] - settled) / settled if rss else math.nan
    samples = sum(
        health.get(k, 0)
        for k in ("samples_stored", "too_old", "too_new", "non_finite", "series_refused")
    )
    return {
        "minutes": args.minutes,
        "services": args.services,
        "points_per_record": args.points,
        "hostile_share": args.hostile,
        "produced": produced,
        "stops": stops,
        "exit_code_on_sigterm": exit_code,
        "records_handled": health.get("records"),
        "points_accounted": accounted,
        "every_point_accounted": accounted == produced["points"],
        "valid_points": health.get("points"),
        "invalid_points": health.get("invalid_points"),
        "dlq_records": health.get("dlq"),
        "dlq_on_topic": dead_on_topic,
        "dlq_points": health.get("dlq_points"),
        "handler_errors": health.get("handler_errors"),
        "samples_accounted": samples,
        "non_finite_samples": health.get("non_finite"),
        "series_refused_samples": health.get("series_refused"),
        "series": health.get("series"),
        "rss_mb_after_first_quarter": settled,
        "rss_mb_end": rss[-1] if rss else None,
        "rss_growth": round(growth, 4),
        "rss_flat": abs(growth) <= FLAT_TOLERANCE,
        "table": rows,
        "ok": stops == 0
        and accounted == produced["points"]
        and health.get("records") == produced["records"]
        and health.get("dlq") == dead_on_topic
        and abs(growth) <= FLAT_TOLERANCE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.5)
    parser.add_argument("--services", type=int, default=20, help="records per second")
    parser.add_argument("--points", type=int, default=50, help="data points per record")
    parser.add_argument("--hostile", type=float, default=0.01, help="share of hostile records")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = parser.parse_args(argv)
    result = soak(args)
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
