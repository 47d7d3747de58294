"""Small OTLP payload builders shared by the telemetry tests (protobuf messages, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
SECOND = 10**9


def kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request(metrics: Sequence[Metric], **resource: str) -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    rm = out.resource_metrics.add()
    rm.resource.attributes.extend(kv(k.replace("_", "."), v) for k, v in resource.items())
    rm.scope_metrics.add().metrics.extend(metrics)
    return out


def gauge(name: str, points: Sequence[tuple[int, float]], **attrs: str) -> Metric:
    metric = Metric(name=name)
    for time_ns, value in points:
        point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
        point.attributes.extend(kv(k, v) for k, v in attrs.items())
    return metric


def counter(
    name: str, points: Sequence[tuple[int, int, float]], temporality: int = CUMULATIVE
) -> Metric:
    metric = Metric(name=name)
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = temporality
    for start_ns, time_ns, value in points:
        metric.sum.data_points.add(
            start_time_unix_nano=start_ns, time_unix_nano=time_ns, as_double=value
        )
    return metric


def histogram(
    name: str,
    start_ns: int,
    time_ns: int,
    bounds: Sequence[float],
    counts: Sequence[int],
    total: float,
) -> Metric:
    metric = Metric(name=name)
    metric.histogram.aggregation_temporality = CUMULATIVE
    metric.histogram.data_points.add(
        start_time_unix_nano=start_ns,
        time_unix_nano=time_ns,
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts),
        sum=total,
    )
    return metric
