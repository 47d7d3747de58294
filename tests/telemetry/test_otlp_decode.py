"""OTLP decoding on hand-built payloads: series keys, rates, resets, quantiles, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from otlp_builders import SECOND, counter, gauge, histogram, kv, request

from rca.ingest.counters import counter_rate
from rca.ingest.histograms import explicit_intervals, exponential_intervals, quantiles
from rca.ingest.otlp_decode import (
    DecodeState,
    MalformedRecord,
    Samples,
    decode_record,
    service_name,
)
from rca.types import series_name

T0 = 1_800_000_000 * SECOND


def decode(payload: bytes, state: DecodeState | None = None) -> dict[tuple, float]:
    out = Samples()
    decode_record(payload, state or DecodeState(), out)
    return {
        (series_name(s, m, st, dict(a)), t): v
        for (s, m, st, a), t, v in zip(out.keys, out.times_ns, out.values, strict=True)
    }


def test_gauge_points_keep_their_attributes_and_int_values() -> None:
    metric = gauge("queue", [(T0, 3.5)], route="/pay")
    metric.gauge.data_points.add(time_unix_nano=T0 + SECOND, as_int=7)
    got = decode(request([metric], service_name="carts").SerializeToString())
    assert got == {
        ("carts:queue{route=/pay}", T0): 3.5,
        ("carts:queue", T0 + SECOND): 7.0,
    }


@pytest.mark.parametrize(
    ("resource", "service"),
    [
        ({"service.name": "cart", "service.namespace": "shop"}, "shop/cart"),
        ({"service.name": "unknown_service:python", "k8s.deployment.name": "cart"}, "cart"),
        ({"k8s.pod.name": "cart-7d9", "job": "x"}, "cart-7d9"),
        ({"k8s.pod.name": "cart-579b9bff58-t2dbm"}, "cart"),  # a Deployment's pod
        ({"job": "vllm"}, "vllm"),
        ({}, "unknown_service"),
    ],
)
def test_service_name_falls_back_through_k8s_and_job(resource: dict, service: str) -> None:
    assert service_name([kv(k, v) for k, v in resource.items()]) == service


def test_cumulative_counter_rate_handles_resets_and_redelivery() -> None:
    state = DecodeState()
    points = [(T0, T0 + 10 * SECOND, 100.0), (T0, T0 + 20 * SECOND, 300.0)]
    first = decode(request([counter("req", points)], service_name="a").SerializeToString(), state)
    assert first == {("a:req:rate", T0 + 10 * SECOND): 10.0, ("a:req:rate", T0 + 20 * SECOND): 20.0}
    # Process restarted at +25 s: a new start time and a smaller value.
    reset = [(T0 + 25 * SECOND, T0 + 30 * SECOND, 50.0)]
    got = decode(request([counter("req", reset)], service_name="a").SerializeToString(), state)
    assert got == {("a:req:rate", T0 + 30 * SECOND): 10.0}
    # The same record again is valid and adds no sample (its rate is stored already).
    assert (
        decode(request([counter("req", reset)], service_name="a").SerializeToString(), state) == {}
    )


def test_counter_rate_rules() -> None:
    assert counter_rate(0, 20 * SECOND, 30.0, (0, 10 * SECOND, 10.0)) == 2.0
    # value went down, no start time: Prometheus' rule, counted from zero since the last point
    assert counter_rate(0, 20 * SECOND, 5.0, (0, 10 * SECOND, 10.0)) == 0.5
    assert np.isnan(counter_rate(0, 10 * SECOND, 10.0, (0, 10 * SECOND, 10.0)))
    assert np.isnan(counter_rate(0, 10 * SECOND, 10.0, None))


def test_delta_counter_divides_by_its_own_span() -> None:
    delta = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    metric = counter("req", [(T0, T0 + 4 * SECOND, 8.0)], temporality=delta)
    assert decode(request([metric], service_name="a").SerializeToString()) == {
        ("a:req:rate", T0 + 4 * SECOND): 2.0
    }


def test_cumulative_histogram_quantiles_come_from_the_interval_not_the_lifetime() -> None:
    bounds = [0.025, 0.05, 0.075, 0.1, 0.25]
    state = DecodeState()
    first = histogram("lat", T0, T0 + 10 * SECOND, bounds, [0, 50, 0, 40, 10, 0], 6.5)
    got = decode(request([first], service_name="a").SerializeToString(), state)
    assert got[("a:lat:p90", T0 + 10 * SECOND)] == pytest.approx(0.1)
    assert got[("a:lat:mean", T0 + 10 * SECOND)] == pytest.approx(0.065)
    assert got[("a:lat:rate", T0 + 10 * SECOND)] == pytest.approx(10.0)
    # Next interval: 100 more values, all in (0.1, 0.25].
    second = histogram("lat", T0, T0 + 20 * SECOND, bounds, [0, 50, 0, 40, 110, 0], 26.5)
    got = decode(request([second], service_name="a").SerializeToString(), state)
    assert got[("a:lat:p50", T0 + 20 * SECOND)] == pytest.approx(0.175)
    assert got[("a:lat:mean", T0 + 20 * SECOND)] == pytest.approx(0.2)
    assert got[("a:lat:rate", T0 + 20 * SECOND)] == pytest.approx(10.0)


def test_quantiles_interpolate_like_prometheus() -> None:
    lower, upper, counts = explicit_intervals([1.0, 2.0, 4.0], [0, 10, 10, 0], None, None)
    assert quantiles(lower, upper, counts, (0.25, 0.5, 0.75, 1.0)) == [
        1.5,
        2.0,
        3.0,
        4.0,
    ]
    # The +Inf bucket collapses onto the highest bound unless a max is known.
    lower, upper, counts = explicit_intervals([1.0], [0, 4], None, None)
    assert quantiles(lower, upper, counts, (0.5,)) == [1.0]
    lower, upper, counts = explicit_intervals([1.0], [0, 4], None, 3.0)
    assert quantiles(lower, upper, counts, (0.5,)) == [2.0]
    assert np.isnan(quantiles(lower, upper, [0.0, 0.0])).all()


def test_exponential_histogram_quantiles() -> None:
    # scale 1: base sqrt(2); buckets (1, 1.41], (1.41, 2], (2, 2.83], (2.83, 4]
    lower, upper, counts = exponential_intervals(1, 0, 0.0, (0, [0, 0, 10, 10]), (0, []))
    q = quantiles(lower, upper, counts, (0.5, 1.0))
    assert q == pytest.approx([2**1.5, 4.0])
    metric = Metric(name="lat")
    metric.exponential_histogram.aggregation_temporality = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    point = metric.exponential_histogram.data_points.add(
        start_time_unix_nano=T0, time_unix_nano=T0 + 2 * SECOND, scale=1, count=20, sum=60.0
    )
    point.positive.offset = 0
    point.positive.bucket_counts.extend([0, 0, 10, 10])
    got = decode(request([metric], service_name="a").SerializeToString())
    assert got[("a:lat:p50", T0 + 2 * SECOND)] == pytest.approx(2**1.5)
    assert got[("a:lat:rate", T0 + 2 * SECOND)] == pytest.approx(10.0)
    assert got[("a:lat:mean", T0 + 2 * SECOND)] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\x0a\x05abc", "not an OTLP"),
        (b'{"resourceMetrics": []}', "not an OTLP"),
        (request([]).SerializeToString(), "no valid data point"),
        (request([Metric(name="x")]).SerializeToString(), "has no data"),
        (request([gauge("g", [(0, 1.0)])]).SerializeToString(), "without time"),
    ],
)
def test_malformed_records_say_why(payload: bytes | None, reason: str) -> None:
    with pytest.raises(MalformedRecord, match=reason):
        decode_record(payload, DecodeState(), Samples())


def test_a_bad_point_beside_good_ones_is_counted_not_fatal() -> None:
    out = Samples()
    metric = gauge("g", [(T0, 1.0), (0, 2.0)])
    assert decode_record(request([metric]).SerializeToString(), DecodeState(), out) == 1
    assert out.invalid_points == 1 and out.values == [1.0]
