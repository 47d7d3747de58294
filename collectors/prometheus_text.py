"""Prometheus exposition text -> one OTLP ``ExportMetricsServiceRequest`` (pure).

Types map as the Collector's prometheus receiver maps them: counters become monotonic
cumulative sums that keep their ``_total`` name, histograms become cumulative explicit-bucket
histograms (Prometheus' cumulative ``le`` buckets differenced into per-bucket counts),
summaries become summaries, everything else a gauge. The resource is ``service.name`` = job and
``service.instance.id`` = instance (OpenTelemetry-Prometheus compatibility specification).

Names are mapped per the team's reference (``ecosystem.md`` §2.4, §2.6, §2.7): the vLLM and
SGLang latency histograms become the GenAI semantic-convention names, deprecated vLLM names
become their current ones, and DCGM's GPU fields become ``hw.gpu.*`` in base units (the same
names :mod:`collectors.gpu` writes), keyed by ``hw.id`` = the GPU's UUID.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.parser import text_string_to_metric_families

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
MIB = 1048576.0

# Prometheus name -> OTel name, for names that have a convention or a newer name.
RENAMES = {
    "vllm:time_to_first_token_seconds": "gen_ai.server.time_to_first_token",
    "sglang:time_to_first_token_seconds": "gen_ai.server.time_to_first_token",
    "vllm:inter_token_latency_seconds": "gen_ai.server.time_per_output_token",
    "vllm:time_per_output_token_seconds": "gen_ai.server.time_per_output_token",
    "sglang:inter_token_latency_seconds": "gen_ai.server.time_per_output_token",
    "vllm:e2e_request_latency_seconds": "gen_ai.server.request.duration",
    "sglang:e2e_request_latency_seconds": "gen_ai.server.request.duration",
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",  # deprecated in vLLM 0.9
    "vllm:gpu_prefix_cache_queries_total": "vllm:prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total": "vllm:prefix_cache_hits_total",
}


@dataclass(frozen=True)
class GpuField:
    name: str
    scale: float
    attributes: tuple[tuple[str, str], ...] = ()


# DCGM field -> hw.* metric and the factor to base units (DCGM: %, MiB, MHz, W, °C).
DCGM = {
    "DCGM_FI_DEV_GPU_UTIL": GpuField("hw.gpu.utilization", 0.01),
    "DCGM_FI_DEV_FB_USED": GpuField("hw.gpu.memory.usage", MIB),
    "DCGM_FI_DEV_SM_CLOCK": GpuField("hw.gpu.clock.sm", 1e6),
    "DCGM_FI_DEV_POWER_USAGE": GpuField("hw.power", 1.0, (("hw.type", "gpu"),)),
    "DCGM_FI_DEV_GPU_TEMP": GpuField("hw.temperature", 1.0, (("hw.type", "gpu"),)),
}
# hw.gpu.memory.limit = used + free + reserved framebuffer.
DCGM_FRAMEBUFFER = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED")


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _labels(name: str, labels: dict[str, str]) -> dict[str, str]:
    """Point attributes: DCGM's many per-GPU labels shrink to ``hw.id`` (its UUID)."""
    if name.startswith("DCGM_"):
        return {"hw.id": labels["UUID"]} if "UUID" in labels else {}
    return labels


def _gauge(metric: Metric, time_ns: int, value: float, attributes: dict[str, str]) -> None:
    point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
    point.attributes.extend(_kv(k, v) for k, v in sorted(attributes.items()))


@dataclass
class _Series:
    """The samples of one label set of a histogram or summary family."""

    parts: list[tuple[float, float]] = field(default_factory=list)  # (le or quantile, value)
    total: float = 0.0
    count: float = 0.0


def _group(family: Family, part_label: str) -> dict[tuple[tuple[str, str], ...], _Series]:
    series: dict[tuple[tuple[str, str], ...], _Series] = defaultdict(_Series)
    for sample in family.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != part_label))
        entry = series[labels]
        if part_label in sample.labels:
            entry.parts.append((float(sample.labels[part_label]), sample.value))
        elif sample.name.endswith("_sum"):
            entry.total = sample.value
        elif sample.name.endswith("_count"):
            entry.count = sample.value
    return series


def _histogram(metric: Metric, family: Family, time_ns: int) -> None:
    metric.histogram.aggregation_temporality = CUMULATIVE
    for labels, entry in _group(family, "le").items():
        buckets = sorted(entry.parts)
        if not buckets or not math.isinf(buckets[-1][0]):
            continue  # a histogram without its +Inf bucket has no count: not usable
        cumulative = [count for _, count in buckets]
        point = metric.histogram.data_points.add(
            time_unix_nano=time_ns,
            count=int(cumulative[-1]),
            sum=entry.total,
            explicit_bounds=[le for le, _ in buckets[:-1]],
            bucket_counts=[
                int(b - a) for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=True)
            ],
        )
        point.attributes.extend(_kv(k, v) for k, v in labels)


def _summary(metric: Metric, family: Family, time_ns: int) -> None:
    for labels, entry in _group(family, "quantile").items():
        point = metric.summary.data_points.add(
            time_unix_nano=time_ns, count=int(entry.count), sum=entry.total
        )
        for quantile, value in entry.parts:
            point.quantile_values.add(quantile=quantile, value=value)
        point.attributes.extend(_kv(k, v) for k, v in labels)


def _dcgm_memory_limit(families: list[Family], time_ns: int) -> Metric | None:
    totals: dict[str, float] = defaultdict(float)
    for family in families:
        if family.name in DCGM_FRAMEBUFFER:
            for sample in family.samples:
                if "UUID" in sample.labels:
                    totals[sample.labels["UUID"]] += sample.value * MIB
    if not totals:
        return None
    metric = Metric(name="hw.gpu.memory.limit", unit="By")
    for uuid, total in sorted(totals.items()):
        _gauge(metric, time_ns, total, {"hw.id": uuid})
    return metric


def exposition_to_request(
    text: str, job: str, instance: str, time_ns: int
) -> ExportMetricsServiceRequest:
    """The scrape of one target as an OTLP request with one resource."""
    families = list(text_string_to_metric_families(text))
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(
        [_kv("service.name", job), _kv("service.instance.id", instance)]
    )
    scope = resource_metrics.scope_metrics.add()
    scope.scope.name = "collectors.prometheus_text"
    for family in families:
        if family.type == "histogram":
            metric = scope.metrics.add(name=RENAMES.get(family.name, family.name))
            _histogram(metric, family, time_ns)
        elif family.type == "summary":
            _summary(scope.metrics.add(name=RENAMES.get(family.name, family.name)), family, time_ns)
        elif family.type == "counter":
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue  # _created samples
                metric = scope.metrics.add(name=RENAMES.get(sample.name, sample.name))
                metric.sum.is_monotonic = True
                metric.sum.aggregation_temporality = CUMULATIVE
                point = metric.sum.data_points.add(time_unix_nano=time_ns, as_double=sample.value)
                point.attributes.extend(
                    _kv(k, v) for k, v in sorted(_labels(sample.name, sample.labels).items())
                )
        elif family.type in ("gauge", "unknown", "untyped"):
            gpu = DCGM.get(family.name)
            name = gpu.name if gpu else RENAMES.get(family.name, family.name)
            metric = scope.metrics.add(name=name)
            for sample in family.samples:
                attributes = _labels(family.name, sample.labels)
                if gpu:
                    attributes.update(gpu.attributes)
                value = sample.value * (gpu.scale if gpu else 1.0)
                _gauge(metric, time_ns, value, attributes)
    limit = _dcgm_memory_limit(families, time_ns)
    if limit is not None:
        scope.metrics.append(limit)
    return request
