"""Property: valid OTLP records with extreme values (times 0 to 2**64-1, every exponential scale
and offset, huge counts, NaN and infinities, huge and many attributes) never raise out of
decode + store, and every data point and sample is accounted for, alike in both decoders.

Seeded (``derandomize``) and bounded: the same examples on every run, in a few seconds."""

from __future__ import annotations

import functools
import time
from dataclasses import astuple

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from rca.ingest.batch import store_records
from rca.ingest.otlp_decode import DecodeState, decode_record
from rca.store.window_store import WindowStore

SECOND = 10**9
NOW_NS = time.time_ns() // SECOND * SECOND
U64 = 2**64 - 1

times = st.one_of(
    st.sampled_from([0, 1, 2**63 - 1, 2**63, U64]),
    st.integers(NOW_NS - 3600 * SECOND, NOW_NS + 600 * SECOND),
    st.integers(0, U64),
)
doubles = st.floats(allow_nan=True, allow_infinity=True)
counts = st.one_of(st.integers(0, 10), st.sampled_from([2**53, 2**63, U64]))
texts = st.one_of(st.text(max_size=8), st.sampled_from(["x" * 5000, "é" * 3000]))
any_values = st.one_of(
    texts.map(lambda v: AnyValue(string_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
    doubles.map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=8).map(lambda v: AnyValue(bytes_value=v)),
)
attribute_lists = st.one_of(
    st.lists(st.tuples(texts, any_values), max_size=3),
    st.integers(60, 90).map(lambda n: [(f"k{i}", AnyValue(int_value=i)) for i in range(n)]),
)


def _attributes(pairs: list[tuple[str, AnyValue]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=value) for key, value in pairs]


@st.composite
def metrics(draw: st.DrawFn) -> tuple[Metric, int]:
    """One metric of any kind and its number of data points."""
    kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram", "summary"]))
    metric = Metric(name=draw(st.sampled_from(["m", "n", "", "y" * 3000])))
    data = getattr(metric, kind)
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = draw(st.sampled_from([0, 1, 2]))
    if kind == "sum":
        data.is_monotonic = draw(st.booleans())
    points = draw(st.integers(0, 3))
    for _ in range(points):
        point = data.data_points.add(
            start_time_unix_nano=draw(times),
            time_unix_nano=draw(times),
            flags=draw(st.sampled_from([0, 0, 1])),
        )
        point.attributes.extend(_attributes(draw(attribute_lists)))
        if kind in ("gauge", "sum"):
            if draw(st.booleans()):
                point.as_double = draw(doubles)
            else:
                point.as_int = draw(st.integers(-(2**63), 2**63 - 1))
        elif kind == "histogram":
            bounds = draw(st.lists(doubles, max_size=4))
            point.explicit_bounds.extend(bounds)
            size = len(bounds) + 1 if draw(st.booleans()) else draw(st.integers(0, 6))
            point.bucket_counts.extend(draw(st.lists(counts, min_size=size, max_size=size)))
            point.sum = draw(doubles)
        elif kind == "exponential_histogram":
            point.scale = draw(st.one_of(st.integers(-10, 20), st.integers(-(2**31), 2**31 - 1)))
            point.zero_count = draw(counts)
            point.zero_threshold = draw(doubles)
            point.sum = draw(doubles)
            for side in (point.positive, point.negative):
                side.offset = draw(st.one_of(st.integers(-5, 5), st.integers(-(2**31), 2**31 - 1)))
                side.bucket_counts.extend(draw(st.lists(counts, max_size=5)))
        else:
            point.count = draw(counts)
            point.sum = draw(doubles)
            for quantile in draw(st.lists(st.sampled_from([0.5, 0.9, 0.99, 1.5]), max_size=3)):
                point.quantile_values.add(quantile=quantile, value=draw(doubles))
    return metric, points


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, int]:
    """A serialized ExportMetricsServiceRequest and its number of data points."""
    request = ExportMetricsServiceRequest()
    total = 0
    for _ in range(draw(st.integers(1, 2))):
        resource_metrics = request.resource_metrics.add()
        service = draw(st.sampled_from(["a", "b", "", "s" * 5000]))
        resource_metrics.resource.attributes.add(key="service.name").value.string_value = service
        scope = resource_metrics.scope_metrics.add()
        for metric, points in draw(st.lists(metrics(), min_size=1, max_size=3)):
            scope.metrics.append(metric)
            total += points
    return request.SerializeToString(), total


def ingest(values: list[bytes], compiled: bool) -> tuple[tuple, WindowStore]:
    store = WindowStore(1.0, 3600, max_series=40)
    decode = functools.partial(decode_record, compiled=compiled)
    max_time_ns = NOW_NS + 300 * SECOND
    outcome = store_records(values, DecodeState(), store, max_time_ns, decode)
    return outcome, store


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(records(), min_size=1, max_size=4))
def test_extreme_records_never_raise_and_every_point_is_accounted_for(
    batch: list[tuple[bytes, int]],
) -> None:
    values = [value for value, _ in batch]
    compiled, store = ingest(values, compiled=True)
    assert compiled.errors == 0, compiled.dead  # nothing raised but MalformedRecord
    assert compiled.points + compiled.invalid_points + compiled.dead_points == sum(
        points for _, points in batch
    )
    assert sum(astuple(compiled.written)) == compiled.samples
    assert store.series_count <= 40
    python, _ = ingest(values, compiled=False)
    assert astuple(python) == astuple(compiled)
