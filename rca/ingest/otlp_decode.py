"""OTLP metrics -> samples keyed by series: pure, bytes in, arrays out.

Each data point becomes one or more samples ``(key, time_unix_nano, value)`` where ``key`` is
the tuple ``(service, metric, stat, attrs)`` that :class:`rca.types.SeriesKey` holds (a plain
:data:`rca.types.SeriesTuple` here because this loop runs per point):

- gauge and non-monotonic sum: the value (``stat`` None);
- monotonic sum: ``rate`` per second (:mod:`rca.ingest.counters`; deltas divide by their span);
- histogram, exponential histogram: ``p50``, ``p90``, ``p99`` (:mod:`rca.ingest.histograms`)
  and ``mean`` of the values in the interval, ``rate`` of values per second;
- summary: its ``p50``/``p90``/``p99`` quantiles when present, and ``mean``.

Cumulative points are differenced against the previous point of the same series, kept in a
:class:`DecodeState`; a point that repeats or precedes the last one seen adds nothing, so a
re-delivered record changes nothing.

Every data point of a record is either valid (``Samples.points``) or dropped with a reason
(``Samples.invalid_points``): no time, "no recorded value", a time at or past 2**63 ns (the
store's int64 nanoseconds end in 2262), a gauge or sum value that is NaN or infinite (NaN is
OTLP's "no value", not a level; an infinite rate or level cannot be ranked). Statistics of
valid points may still come out non-finite (a histogram whose buckets reach past the largest
double); the window store drops and counts those samples.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Histogram,
    HistogramDataPoint,
    Metric,
    Sum,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from rca.ingest.counters import NANOS, counter_rate
from rca.ingest.histograms import (
    QUANTILE_STATS,
    Intervals,
    explicit_intervals,
    exponential_intervals,
    quantiles,
)
from rca.types import SeriesTuple, workload_of

try:  # the compiled fast path (setup.py builds it; without a compiler, Python decodes all)
    from rca.ingest import _otlp_wire as _wire
except ImportError:
    _wire = None
if os.environ.get("RCA_OTLP_DECODER") == "python":
    _wire = None
DECODER = "python" if _wire is None else "compiled"

Attrs = tuple[tuple[str, str], ...]

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
# DataPointFlags.FLAG_NO_RECORDED_VALUE: the point marks a gap (e.g. a vanished target).
NO_RECORDED_VALUE = 1
UNKNOWN_SERVICE = "unknown_service"
# Times from here on do not fit the window store's int64 nanoseconds.
TIME_LIMIT_NS = 2**63
_INF = math.inf  # a module global: cheaper per point than math.inf
# Valid exponential histogram scales (metrics data model); beyond them base**index overflows.
MIN_SCALE, MAX_SCALE = -10, 20
# Resource attributes that name the service when service.name does not (DESIGN.md, series key).
SERVICE_FALLBACKS = ("k8s.deployment.name", "k8s.pod.name", "job")
# Resources whose service is remembered; a fleet larger than this only costs re-parsing.
_MAX_RESOURCES = 4096


class MalformedRecord(ValueError):
    """A Kafka record that holds no usable OTLP metrics; the message is the reason."""


# A cumulative histogram point as the next point of its series is differenced against:
# ``(start_ns, time_ns, layout, counts, sum)``, the layout being the explicit bounds or an
# exponential histogram's interval edges. A plain tuple: the compiled decoder reads and writes
# the same state.
Distribution = tuple[int, int, object, list, float]


@dataclass
class DecodeState:
    """The last cumulative point per series (counters and histograms), and the service of
    each resource seen (by its serialized bytes)."""

    counters: dict[SeriesTuple, tuple[int, int, float]] = field(default_factory=dict)
    distributions: dict[SeriesTuple, Distribution] = field(default_factory=dict)
    services: dict[bytes, str] = field(default_factory=dict)

    def bound(self, max_series: int) -> None:
        """Forget the cumulative points once more series are tracked than ``max_series``: their
        next points start afresh (one interval without a rate), and memory stays bounded
        whatever series arrive."""
        for table in (self.counters, self.distributions):
            if len(table) > max_series:
                table.clear()

    def service_of(self, resource: bytes) -> str:
        """:func:`service_name` of a serialized ``Resource``, cached."""
        service = self.services.get(resource)
        if service is None:
            if len(self.services) >= _MAX_RESOURCES:
                self.services.clear()
            service = service_name(Resource.FromString(resource).attributes)
            self.services[resource] = service
        return service


@dataclass
class Samples:
    """Columns of samples decoded from one or more records."""

    keys: list[SeriesTuple] = field(default_factory=list)
    times_ns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    points: int = 0
    invalid_points: int = 0
    first_problem: str | None = None

    def add(self, key: SeriesTuple, time_ns: int, value: float) -> None:
        self.keys.append(key)
        self.times_ns.append(time_ns)
        self.values.append(value)

    def problem(self, reason: str, points: int = 1) -> None:
        """Note ``points`` data points dropped for ``reason``."""
        self.invalid_points += points
        if self.first_problem is None:
            self.first_problem = reason


def any_value_text(value: AnyValue) -> str:
    """An attribute value as text (arrays and maps as compact JSON)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind in ("int_value", "double_value"):
        return str(getattr(value, kind))
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind is None:
        return ""
    return json.dumps(json_format.MessageToDict(value)[_json_name(kind)], separators=(",", ":"))


def _json_name(field_name: str) -> str:
    head, *rest = field_name.split("_")
    return head + "".join(part.title() for part in rest)


def attributes(kvs: Sequence[KeyValue]) -> Attrs:
    """Point attributes as a sorted tuple of ``(key, text)`` pairs."""
    # string_value reads "" for any other type (and for an empty string), so the slower
    # WhichOneof runs only then.
    return tuple(sorted((kv.key, kv.value.string_value or any_value_text(kv.value)) for kv in kvs))


def service_name(resource_attributes: list[KeyValue]) -> str:
    """The service of a resource: ``service.namespace/service.name``; when the name is
    missing or the SDK's ``unknown_service`` default, the first of ``k8s.deployment.name``,
    ``k8s.pod.name`` (a Deployment's pod counts as its Deployment), ``job`` (Prometheus);
    else ``unknown_service``.

    The ``namespace/name`` form is the one the OpenTelemetry-Prometheus compatibility spec uses
    for ``job``.
    """
    found = {kv.key: any_value_text(kv.value) for kv in resource_attributes}
    name = found.get("service.name", "")
    if not name or name.startswith(UNKNOWN_SERVICE):
        key = next((k for k in SERVICE_FALLBACKS if found.get(k)), None)
        fallback = None if key is None else found[key]
        if key == "k8s.pod.name":  # a restarted pod has a new name, not a new service
            fallback = workload_of(fallback)
        name = fallback or name or UNKNOWN_SERVICE
    namespace = found.get("service.namespace")
    return f"{namespace}/{name}" if namespace else name


def parse_record(value: bytes | None) -> ExportMetricsServiceRequest:
    """The OTLP request in a record value; ``MalformedRecord`` when it is none."""
    if not value:
        raise MalformedRecord("empty record value")
    try:
        request = ExportMetricsServiceRequest.FromString(value)
    except DecodeError as exc:
        raise MalformedRecord(f"not an OTLP ExportMetricsServiceRequest: {exc}") from exc
    if not request.resource_metrics:
        raise MalformedRecord("no resource_metrics in the request")
    return request


def decode_record(
    value: bytes | None, state: DecodeState, out: Samples, *, compiled: bool = True
) -> int:
    """Append the samples of one record to ``out``; return its number of valid data points.

    Raises ``MalformedRecord`` for a record that does not parse, or that holds no valid data
    point (random bytes can parse as a request full of empty messages). Whatever it raises,
    ``out`` is left as it was (the caller dead-letters the record whole); ``state`` may keep
    what the record's first metrics set.

    The protobuf runtime parses every record (it is the judge of what is malformed); the
    samples of gauges, sums and explicit histograms then come from the compiled decoder when it
    is built (``compiled=False`` or ``RCA_OTLP_DECODER=python`` asks for the Python one: both
    give the same samples, the tests compare them).
    """
    request = parse_record(value)
    mark = (len(out.keys), out.points, out.invalid_points, out.first_problem)
    try:
        _decode_request(value, request, state, out, compiled)
    except BaseException:
        _roll_back(out, mark)
        raise
    if out.points == mark[1]:
        reason = out.first_problem if out.first_problem != mark[3] else None
        _roll_back(out, mark)
        raise MalformedRecord(f"no valid data point ({reason or 'no data points'})")
    return out.points - mark[1]


def _decode_request(
    value: bytes | None,
    request: ExportMetricsServiceRequest,
    state: DecodeState,
    out: Samples,
    compiled: bool,
) -> None:
    appended = None
    if compiled and _wire is not None:
        appended = _wire.decode(
            value,
            state.counters,
            state.distributions,
            out.keys,
            out.times_ns,
            out.values,
            state.service_of,
            lambda service, raw: _decode_metric(service, Metric.FromString(raw), state, out),
            lambda service, name, cumulative, raw: _explicit_histogram_point(
                service, name, HistogramDataPoint.FromString(raw), cumulative, state, out
            ),
            counter_rate,
        )
    if appended is None:
        for resource_metrics in request.resource_metrics:
            service = service_name(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    _decode_metric(service, metric, state, out)
    else:
        out.points += appended


def _roll_back(out: Samples, mark: tuple[int, int, int, str | None]) -> None:
    """Forget what was appended to ``out`` since ``mark``."""
    size, out.points, out.invalid_points, out.first_problem = mark
    del out.keys[size:], out.times_ns[size:], out.values[size:]


def data_points(value: bytes | None) -> int:
    """The number of data points in a record; 0 when it does not parse."""
    try:
        request = parse_record(value)
    except MalformedRecord:
        return 0
    count = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    count += len(getattr(metric, kind).data_points)
    return count


def _decode_metric(service: str, metric: Metric, state: DecodeState, out: Samples) -> None:
    """Append the samples of one metric. Gauges and non-monotonic sums, most points in
    practice, are decoded inline: a function call per point costs as much as the point."""
    name = metric.name
    kind = metric.WhichOneof("data")
    if not name:
        out.problem(
            "a metric without a name", len(getattr(metric, kind).data_points) if kind else 0
        )
        return
    if kind == "gauge":
        points = metric.gauge.data_points
    elif kind == "sum":
        data = metric.sum
        if data.is_monotonic:
            _counter(service, name, data, state, out)
            return
        points = data.data_points
    else:
        _decode_aggregate(service, name, kind, metric, state, out)
        return
    add_key, add_time, add_value = out.keys.append, out.times_ns.append, out.values.append
    levels = 0
    for point in points:
        time_ns = point.time_unix_nano
        # as_double and as_int are a oneof: the unset one reads 0, so `or` picks the set one
        # (0 when the value is 0 either way) without a WhichOneof.
        value = point.as_double or point.as_int
        if (
            not 0 < time_ns < TIME_LIMIT_NS
            or not -_INF < value < _INF
            or point.flags & NO_RECORDED_VALUE
        ):
            out.problem(_unusable(name, time_ns, point.flags, value))
            continue
        kvs = point.attributes
        add_key((service, name, None, _point_attributes(kvs) if kvs else ()))
        add_time(time_ns)
        add_value(value)
        levels += 1
    out.points += levels


def _unusable(name: str, time_ns: int, flags: int, value: float = 0.0) -> str:
    """Why a point is dropped (see the module docstring)."""
    if time_ns >= TIME_LIMIT_NS:
        return f"{name}: time_unix_nano {time_ns} past 2**63 (the year 2262)"
    if not time_ns or flags & NO_RECORDED_VALUE:
        return f"{name}: a point without time or value"
    return f"{name}: a non-finite value ({value})"


def _decode_aggregate(
    service: str, name: str, kind: str | None, metric: Metric, state: DecodeState, out: Samples
) -> None:
    """Histograms and summaries: the metrics whose points become statistics."""
    if kind == "histogram":
        _explicit_histograms(service, name, metric.histogram, state, out)
    elif kind == "exponential_histogram":
        _exponential_histograms(service, name, metric.exponential_histogram, state, out)
    elif kind == "summary":
        _summaries(service, name, metric.summary.data_points, out)
    else:
        out.problem(f"metric {name!r} has no data", 0)


def _point_attributes(kvs: Sequence[KeyValue]) -> Attrs:
    """:func:`attributes` of a non-empty list, fast for the common single attribute.

    Callers test ``if kvs`` first: most points have none, and a call costs as much as the rest.
    """
    if len(kvs) == 1:
        kv = kvs[0]
        return ((kv.key, kv.value.string_value or any_value_text(kv.value)),)
    return attributes(kvs)


def _counter(service: str, name: str, data: Sum, state: DecodeState, out: Samples) -> None:
    cumulative = data.aggregation_temporality == CUMULATIVE
    counters = state.counters
    add_key, add_time, add_value = out.keys.append, out.times_ns.append, out.values.append
    for point in data.data_points:
        time_ns = point.time_unix_nano
        value = point.as_double or point.as_int
        if (
            not 0 < time_ns < TIME_LIMIT_NS
            or not -_INF < value < _INF
            or point.flags & NO_RECORDED_VALUE
        ):
            out.problem(_unusable(name, time_ns, point.flags, value))
            continue
        kvs = point.attributes
        key = (service, name, "rate", _point_attributes(kvs) if kvs else ())
        start_ns = point.start_time_unix_nano
        out.points += 1
        if cumulative:
            previous = counters.get(key)
            rate = counter_rate(start_ns, time_ns, value, previous)
            if previous is None or time_ns > previous[1]:
                counters[key] = (start_ns, time_ns, value)
        else:
            rate = value * NANOS / (time_ns - start_ns) if 0 < start_ns < time_ns else math.nan
        if rate == rate:  # not NaN
            add_key(key)
            add_time(time_ns)
            add_value(rate)


def _explicit_histograms(
    service: str, name: str, data: Histogram, state: DecodeState, out: Samples
) -> None:
    cumulative = data.aggregation_temporality == CUMULATIVE
    for point in data.data_points:
        _explicit_histogram_point(service, name, point, cumulative, state, out)


def _explicit_histogram_point(
    service: str,
    name: str,
    point: HistogramDataPoint,
    cumulative: bool,
    state: DecodeState,
    out: Samples,
) -> None:
    time_ns = point.time_unix_nano
    bounds, counts = list(point.explicit_bounds), list(point.bucket_counts)
    if not 0 < time_ns < TIME_LIMIT_NS or point.flags & NO_RECORDED_VALUE:
        out.problem(_unusable(name, time_ns, point.flags))
        return
    if counts and len(counts) != len(bounds) + 1:
        out.problem(f"{name}: bucket_counts needs one more entry than explicit_bounds")
        return
    attrs = _point_attributes(point.attributes) if point.attributes else ()
    out.points += 1
    interval = _interval((service, name, None, attrs), point, bounds, counts, cumulative, state)
    if interval is not None:
        counts, total, span_start = interval
        low = point.min if point.HasField("min") else None
        high = point.max if point.HasField("max") else None
        distribution = explicit_intervals(bounds, counts, low, high)
        _distribution_stats(service, name, attrs, time_ns, span_start, distribution, total, out)


def _exponential_histograms(
    service: str, name: str, data: ExponentialHistogram, state: DecodeState, out: Samples
) -> None:
    cumulative = data.aggregation_temporality == CUMULATIVE
    for point in data.data_points:
        time_ns = point.time_unix_nano
        if not 0 < time_ns < TIME_LIMIT_NS or point.flags & NO_RECORDED_VALUE:
            out.problem(_unusable(name, time_ns, point.flags))
            continue
        if not MIN_SCALE <= point.scale <= MAX_SCALE:
            out.problem(
                f"{name}: exponential scale {point.scale} outside [{MIN_SCALE}, {MAX_SCALE}]"
            )
            continue
        lower, upper, counts = exponential_intervals(
            point.scale,
            point.zero_count,
            point.zero_threshold,
            (point.positive.offset, point.positive.bucket_counts),
            (point.negative.offset, point.negative.bucket_counts),
        )
        attrs = _point_attributes(point.attributes) if point.attributes else ()
        out.points += 1
        key = (service, name, None, attrs)
        interval = _interval(key, point, (lower, upper), counts, cumulative, state)
        if interval is not None:
            counts, total, span_start = interval
            distribution = (lower, upper, counts)
            _distribution_stats(service, name, attrs, time_ns, span_start, distribution, total, out)


def _interval(
    key: SeriesTuple,
    point: HistogramDataPoint | ExponentialHistogramDataPoint,
    layout: object,
    counts: list[float],
    cumulative: bool,
    state: DecodeState,
) -> tuple[list[float], float, int] | None:
    """``(counts, sum, start)`` of the interval a histogram point covers: a cumulative point
    minus the series' previous one when the bucket layout is the same and nothing went down
    (else counting restarted and the point covers its own start); ``None`` for a point that
    repeats or precedes the previous one."""
    start_ns, time_ns, total = point.start_time_unix_nano, point.time_unix_nano, point.sum
    if not cumulative:
        return counts, total, start_ns
    previous = state.distributions.get(key)
    if previous is not None and time_ns <= previous[1]:
        return None
    state.distributions[key] = (start_ns, time_ns, layout, counts, total)
    if previous is not None:
        previous_start, previous_time, previous_layout, previous_counts, previous_total = previous
        if (start_ns == 0 or start_ns == previous_start) and layout == previous_layout:
            delta = list(map(operator.sub, counts, previous_counts))
            if not delta or min(delta) >= 0:
                return delta, total - previous_total, previous_time
    return counts, total, start_ns


def _distribution_stats(
    service: str,
    name: str,
    attrs: Attrs,
    time_ns: int,
    span_start_ns: int,
    distribution: Intervals,
    total: float,
    out: Samples,
) -> None:
    """p50/p90/p99, mean and rate (values per second) of the values in one interval."""
    count = sum(distribution[2])
    add_key, add_time, add_value = out.keys.append, out.times_ns.append, out.values.append
    for stat, value in zip(QUANTILE_STATS, quantiles(*distribution), strict=True):
        if value == value:  # not NaN
            add_key((service, name, stat, attrs))
            add_time(time_ns)
            add_value(value)
    if count > 0:
        out.add((service, name, "mean", attrs), time_ns, total / count)
    if 0 < span_start_ns < time_ns:
        out.add((service, name, "rate", attrs), time_ns, count * NANOS / (time_ns - span_start_ns))


def _summaries(service: str, name: str, points: Iterable[SummaryDataPoint], out: Samples) -> None:
    wanted = dict(zip((0.5, 0.9, 0.99), QUANTILE_STATS, strict=True))
    for point in points:
        time_ns = point.time_unix_nano
        if not 0 < time_ns < TIME_LIMIT_NS or point.flags & NO_RECORDED_VALUE:
            out.problem(_unusable(name, time_ns, point.flags))
            continue
        attrs = _point_attributes(point.attributes) if point.attributes else ()
        out.points += 1
        for quantile in point.quantile_values:
            stat = wanted.get(round(quantile.quantile, 6))
            if stat:
                out.add((service, name, stat, attrs), time_ns, quantile.value)
        if point.count:
            out.add((service, name, "mean", attrs), time_ns, point.sum / point.count)
