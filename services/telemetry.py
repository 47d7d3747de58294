"""One service's OpenTelemetry metrics: the SDK's ``MeterProvider`` with a periodic reader that
exports through our Kafka exporter (or any reader, e.g. the SDK's in-memory one in tests).

Only the metrics the stack description lists for the service are created; recording any other
name is a no-op, so the request path records unconditionally. Durations use explicit buckets
spaced by a factor of 1.25 from 0.5 ms to 60 s (the semantic conventions' advisory buckets
are too coarse to see a 20 % change in a percentile; explicit buckets keep one layout, so
ingest takes exact per-interval differences of the cumulative points).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import psutil
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from services.stack import METRICS

DURATION_BUCKETS: tuple[float, ...] = tuple(round(0.0005 * 1.25**i, 7) for i in range(54))

# metric name -> a function giving (value, attributes) observations at each collection.
GaugeReader = Callable[[], Sequence[tuple[float, dict[str, str]]]]


def kafka_reader(bootstrap: str, topic: str, interval_seconds: float) -> MetricReader:
    """A periodic reader that exports to Kafka in the Collector's wire format."""
    from collectors.kafka_exporter import KafkaMetricExporter
    from collectors.kafka_sink import KafkaSink

    exporter = KafkaMetricExporter(KafkaSink(bootstrap, topic, timeout_seconds=5.0))
    return PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=interval_seconds * 1000,
        export_timeout_millis=min(5000.0, interval_seconds * 4000),
    )


class ProcessReadings:
    """``process.cpu.utilization`` (CPU time of all the process's threads since the previous
    reading / (elapsed time x CPUs), as the semantic conventions define it) and
    ``process.memory.usage`` (resident bytes) of this process.

    CPU time comes from ``time.process_time`` (nanosecond clock), not from the kernel's
    10 ms ticks that psutil reads: a lightly loaded service uses well under one tick a second,
    and tick counts would make its utilization jump between 0 and 0.5 %.
    """

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._cpus = psutil.cpu_count() or 1
        self._lock = threading.Lock()
        self._mark = (time.monotonic(), time.process_time())

    def cpu(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            now, used = time.monotonic(), time.process_time()
            then, used_then = self._mark
            self._mark = (now, used)
        share = (used - used_then) / max(now - then, 1e-6) / self._cpus
        return [(max(0.0, share), {})]

    def memory(self) -> list[tuple[float, dict[str, str]]]:
        return [(float(self._process.memory_info().rss), {})]


class Telemetry:
    """Instruments for ``metrics`` of one service; ``gauges`` read observable values."""

    def __init__(
        self,
        service: str,
        stack: str,
        metrics: Iterable[str],
        reader: MetricReader,
        gauges: dict[str, GaugeReader],
    ) -> None:
        self.metrics = list(metrics)
        self.provider = MeterProvider(
            resource=Resource.create(
                {
                    "service.name": service,
                    "service.instance.id": f"{service}-{os.getpid()}",
                    "deployment.environment.name": f"rca-demo-{stack}",
                }
            ),
            metric_readers=[reader],
        )
        meter = self.provider.get_meter("services.app")
        self._histograms = {}
        self._counters = {}
        self._lock = threading.Lock()
        for name in self.metrics:
            spec = METRICS[name]
            if spec.instrument == "histogram":
                self._histograms[name] = meter.create_histogram(
                    name,
                    unit=spec.unit,
                    description=spec.description,
                    explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
                )
            elif spec.instrument == "counter":
                counter = meter.create_counter(name, unit=spec.unit, description=spec.description)
                counter.add(0)  # exported from the start, so a rate exists before any event
                self._counters[name] = counter
            else:
                read = gauges.get(name)
                if read is None:
                    raise ValueError(f"no reading for gauge {name!r}")
                meter.create_observable_gauge(
                    name, [_callback(read)], unit=spec.unit, description=spec.description
                )

    def record(self, name: str, value: float, attributes: dict[str, str] | None = None) -> None:
        histogram = self._histograms.get(name)
        if histogram is not None:
            histogram.record(value, attributes or {})

    def add(self, name: str, amount: float = 1.0, attributes: dict[str, str] | None = None) -> None:
        counter = self._counters.get(name)
        if counter is not None:
            counter.add(amount, attributes or {})

    def shutdown(self, timeout_seconds: float = 5.0) -> None:
        """Export what is left, then stop (the Kafka producer closes)."""
        self.provider.shutdown(timeout_millis=timeout_seconds * 1000)


def _callback(read: GaugeReader) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attrs) for value, attrs in read()]

    return observe
