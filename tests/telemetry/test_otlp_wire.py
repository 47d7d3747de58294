"""The compiled OTLP decoder gives exactly the samples, counts, problems and state of the Python
one: on seeded random records (every metric type, resets, repeats, odd attribute values,
protobuf merges, unpacked fields, groups) and on corrupted copies of them."""

from __future__ import annotations

import math
import random
import shutil
import struct
import sysconfig

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from rca.ingest import otlp_decode
from rca.ingest.otlp_decode import DecodeState, MalformedRecord, Samples, decode_record

SECOND = 10**9
T0 = 1_800_000_000 * SECOND
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
LAYOUTS = ([0.005, 0.01, 0.1, 1.0], [0.1, 1.0, 10.0], [-1.0, 0.0, 1.0], [5.0])

needs_compiled = pytest.mark.skipif(
    otlp_decode.DECODER != "compiled", reason="the compiled decoder is not built"
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, as protobuf writes it."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


class Generator:
    """Random OTLP records whose series repeat, so decoding state (rates, differences) is
    exercised across records."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counters: dict[tuple, tuple[int, float]] = {}
        self.histograms: dict[tuple, tuple[int, list[int], float]] = {}
        self.layout: dict[tuple, list[float]] = {}

    def any_value(self) -> AnyValue:
        r = self.rng
        kind = r.choices(
            ["string", "int", "double", "bool", "bytes", "empty", "array"],
            [50, 15, 8, 8, 5, 4, 2],
        )[0]
        if kind == "string":
            return AnyValue(string_value=r.choice(["/pay", "", "é", "GET", "200"]))
        if kind == "int":
            return AnyValue(int_value=r.choice([0, 200, -5, 2**62]))
        if kind == "double":
            return AnyValue(double_value=r.choice([0.5, 1e300, math.nan, -0.0]))
        if kind == "bool":
            return AnyValue(bool_value=r.random() < 0.5)
        if kind == "bytes":
            return AnyValue(bytes_value=bytes([1, 171]))
        if kind == "array":
            return AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))
        return AnyValue()

    def attributes(self) -> list[KeyValue]:
        keys = self.rng.sample(["route", "code", "peer", "zone"], self.rng.choice([0, 0, 1, 1, 2]))
        return [KeyValue(key=k, value=self.any_value()) for k in keys]

    def time(self, record: int) -> int:
        r = self.rng
        if r.random() < 0.03:
            return 0
        if r.random() < 0.02:  # past int64 nanoseconds, or just inside them
            return r.choice([2**63 - 1, 2**63, 2**64 - 1])
        return T0 + (record + r.choice([0, 0, 0, -1, -3])) * SECOND + r.randrange(2) * 1000

    def value(self, point) -> None:  # NumberDataPoint
        r = self.rng
        choice = r.random()
        if choice < 0.45:
            point.as_double = r.choice([0.0, -0.0, 1.5, math.nan, math.inf, r.uniform(-9, 9)])
        elif choice < 0.9:
            point.as_int = r.choice([0, 3, -7, 2**60, r.randrange(1000)])

    def number_metric(self, metric: Metric, service: str, kind: str, record: int) -> None:
        r = self.rng
        data = metric.gauge if kind == "gauge" else metric.sum
        if kind != "gauge":
            data.is_monotonic = kind != "updown"
            data.aggregation_temporality = r.choice([CUMULATIVE] * 4 + [DELTA])
        for _ in range(r.choice([1, 1, 2, 3])):
            point = data.data_points.add(time_unix_nano=self.time(record))
            point.attributes.extend(self.attributes()[:1])
            if r.random() < 0.03:
                point.flags = 1
            if kind == "counter":
                series = (service, metric.name, point.attributes[0].key if point.attributes else "")
                start, value = self.counters.get(series, (T0 - SECOND, 0))
                if r.random() < 0.1:  # a restart
                    start, value = r.choice([0, T0 + record * SECOND - 500]), 0
                value += r.choice([0, 1, 5, 2**54])
                self.counters[series] = (start, value)
                point.start_time_unix_nano = start
                if r.random() < 0.8:
                    point.as_int = value
                else:
                    point.as_double = float(value)
            else:
                self.value(point)

    def histogram_point(self, series: tuple, record: int) -> HistogramDataPoint:
        r = self.rng
        start, counts, total = self.histograms.get(series, (T0 - SECOND, [], 0.0))
        bounds = r.choice(LAYOUTS) if r.random() < 0.2 or not counts else None
        if bounds is None:
            bounds = self.layout.get(series, LAYOUTS[0])
        self.layout[series] = bounds
        if len(counts) != len(bounds) + 1 or r.random() < 0.08:
            counts = [0] * (len(bounds) + 1)
            start = r.choice([start, 0, T0 + record * SECOND - 700])
        counts = [c + r.choice([0, 0, 1, 4]) for c in counts]
        total += r.uniform(0, 3)
        self.histograms[series] = (start, counts, total)
        point = HistogramDataPoint(
            start_time_unix_nano=start,
            time_unix_nano=self.time(record),
            explicit_bounds=bounds,
            bucket_counts=counts,
            count=sum(counts),
            sum=total,
        )
        odd = r.random()
        if odd < 0.04:
            del point.bucket_counts[-1]  # one count short of the bounds
        elif odd < 0.06:
            point.explicit_bounds[0] = math.nan
        elif odd < 0.08:
            point.bucket_counts[0] = 2**60
        elif odd < 0.1:
            point.ClearField("explicit_bounds")
            del point.bucket_counts[1:]
        elif odd < 0.12:
            point.ClearField("bucket_counts")
        if r.random() < 0.3:
            point.min = r.choice([0.001, -2.0, 0.0])
        if r.random() < 0.3:
            point.max = r.choice([0.5, 20.0])
        if r.random() < 0.03:
            point.flags = 1
        return point

    def histogram_metric(self, metric: Metric, service: str, record: int) -> None:
        r = self.rng
        metric.histogram.aggregation_temporality = r.choice([CUMULATIVE] * 5 + [DELTA])
        for _ in range(r.choice([1, 1, 2])):
            attrs = self.attributes()[:1]
            series = (service, metric.name, attrs[0].key if attrs else "")
            point = metric.histogram.data_points.add()
            point.CopyFrom(self.histogram_point(series, record))
            point.attributes.extend(attrs)

    def other_metric(self, metric: Metric, record: int) -> None:
        if self.rng.random() < 0.5:
            metric.exponential_histogram.aggregation_temporality = CUMULATIVE
            point = metric.exponential_histogram.data_points.add(
                start_time_unix_nano=T0 - SECOND,
                time_unix_nano=self.time(record),
                scale=self.rng.choice([0, 2, 30, -10, 20]),
                zero_count=1,
            )
            point.positive.offset = self.rng.choice([-1, -1, 2000, -(2**31)])
            point.positive.bucket_counts.extend([record + 1, 2])
        else:
            point = metric.summary.data_points.add(
                time_unix_nano=self.time(record), count=4, sum=2.0
            )
            point.quantile_values.add(quantile=0.9, value=0.7)

    def metric(self, service: str, record: int) -> bytes:
        r = self.rng
        kind = r.choices(
            ["gauge", "updown", "counter", "histogram", "other", "nodata", "noname"],
            [30, 8, 25, 25, 6, 2, 2],
        )[0]
        metric = Metric(name=f"{kind}.{r.randrange(3)}" if kind != "noname" else "")
        if kind in ("gauge", "updown", "counter"):
            self.number_metric(metric, service, kind, record)
        elif kind == "histogram":
            self.histogram_metric(metric, service, record)
        elif kind == "other":
            self.other_metric(metric, record)
        raw = metric.SerializeToString()
        odd = r.random()
        if odd < 0.03 and kind in ("gauge", "histogram"):  # the data field twice: merged
            raw += Metric(gauge=metric.gauge).SerializeToString()
        elif odd < 0.05:  # another data kind after this one: the last wins
            raw += Metric(sum=metric.sum).SerializeToString()
        elif odd < 0.07:  # an unknown group field: skipped by protobuf
            raw += b"\x7b\x08\x01\x7c"
        elif odd < 0.09 and kind == "histogram":  # counts written unpacked
            point = HistogramDataPoint(
                time_unix_nano=self.time(record), explicit_bounds=[1.0], sum=1.0
            ).SerializeToString()
            point += b"\x31" + struct.pack("<Q", 2) + b"\x31" + struct.pack("<Q", 3)
            data = _field(1, point) + b"\x10" + _varint(CUMULATIVE)
            raw = _field(1, metric.name.encode()) + _field(9, data)
        return raw

    def resource(self) -> bytes:
        r = self.rng
        service = f"svc-{r.randrange(3)}"
        attrs = r.choice(
            [
                {"service.name": service},
                {"service.name": service, "service.namespace": "shop"},
                {"service.name": "unknown_service:python", "k8s.deployment.name": service},
                {"job": service},
                {},
            ]
        )
        raw = Resource(
            attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()]
        ).SerializeToString()
        return raw

    def record(self, index: int) -> bytes:
        r = self.rng
        out = b""
        for _ in range(r.choice([1, 1, 2])):
            resource = self.resource()
            service = otlp_decode.DecodeState().service_of(resource)
            scopes = b"".join(
                _field(
                    2,
                    b"".join(
                        _field(2, self.metric(service, index)) for _ in range(r.randrange(1, 6))
                    ),
                )
                for _ in range(r.choice([1, 1, 2]))
            )
            rm = _field(1, resource) + scopes
            if r.random() < 0.05:  # a second resource field: merged into the first
                rm += _field(1, self.resource())
            if r.random() < 0.05:  # unknown fields: a 32-bit one, a varint in a scope
                rm += b"\x7d\x01\x02\x03\x04" + _field(2, b"\x78\x01")
            out += _field(1, rm)
        if r.random() < 0.03:  # an unknown group in the request itself
            out += b"\x7b\x08\x01\x7c"
        return out

    def records(self, count: int) -> list[bytes]:
        return [self.record(i) for i in range(count)]


def corrupt(rng: random.Random, value: bytes) -> bytes:
    data = bytearray(value)
    for _ in range(rng.randrange(1, 4)):
        action, at = rng.random(), rng.randrange(len(data))
        if action < 0.5:
            data[at] = rng.randrange(256)
        elif action < 0.8:
            del data[at:]
            if not data:
                return bytes(value[:1])
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
    return bytes(data)


def _canonical(value: object) -> object:
    """Values compared with their type and NaNs equal to each other."""
    if isinstance(value, list | tuple):
        return type(value).__name__, [_canonical(v) for v in value]
    return type(value).__name__, repr(value)


def decode_all(records: list[bytes], compiled: bool) -> tuple[list, dict, dict]:
    state, results = DecodeState(), []
    for value in records:
        out = Samples()
        try:
            returned, error = decode_record(value, state, out, compiled=compiled), None
        except MalformedRecord as exc:
            returned, error = None, str(exc)
        samples = [
            (key, time_ns, _canonical(v))
            for key, time_ns, v in zip(out.keys, out.times_ns, out.values, strict=True)
        ]
        results.append((returned, error, out.points, out.invalid_points, out.first_problem))
        results.append(samples)
    counters = {k: _canonical(v) for k, v in state.counters.items()}
    distributions = {k: _canonical(v) for k, v in state.distributions.items()}
    return results, counters, distributions


@needs_compiled
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_and_python_decoders_agree_on_random_records(seed: int) -> None:
    records = Generator(seed).records(150)
    compiled = decode_all(records, compiled=True)
    python = decode_all(records, compiled=False)
    assert compiled[0] == python[0]
    assert compiled[1] == python[1] and compiled[2] == python[2]
    samples = sum(len(r) for r in compiled[0][1::2])
    assert samples > 1000  # the records exercise the decoders, not only their errors


@needs_compiled
def test_compiled_and_python_decoders_agree_on_corrupted_records() -> None:
    rng = random.Random(7)
    records = Generator(8).records(300)
    corrupted = [corrupt(rng, v) if rng.random() < 0.6 else v for v in records]
    compiled, python = decode_all(corrupted, True), decode_all(corrupted, False)
    assert compiled == python
    errors = sum(1 for r in compiled[0][::2] if r[1] is not None)
    assert 30 < errors < len(corrupted)  # some corrupted records parse, some do not


def test_the_compiled_decoder_is_built_where_a_c_compiler_is() -> None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the package decodes in Python")
    assert otlp_decode.DECODER == "compiled", "setup.py did not build rca.ingest._otlp_wire"


def _counter_record(start_ns: int, time_ns: int, value: int) -> bytes:
    metric = Metric(name="c")
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = CUMULATIVE
    metric.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=time_ns, as_int=value)
    return _field(1, _field(2, _field(2, metric.SerializeToString())))


def _histogram_record(time_ns: int, bounds: list[float]) -> bytes:
    metric = Metric(name="h")
    metric.histogram.aggregation_temporality = CUMULATIVE
    metric.histogram.data_points.add(
        start_time_unix_nano=T0 - SECOND,
        time_unix_nano=time_ns,
        explicit_bounds=bounds,
        bucket_counts=[1] * (len(bounds) + 1),
        sum=1.0,
    )
    return _field(1, _field(2, _field(2, metric.SerializeToString())))


@needs_compiled
def test_edge_cases_found_in_review_agree() -> None:
    # A counter restart stamped at (or after) its own point: a rate since the previous point,
    # not a division by zero; bounds that differ only in the sign of zero.
    records = [
        _counter_record(SECOND, 10 * SECOND, 5),
        _counter_record(20 * SECOND, 20 * SECOND, 3),
        _counter_record(40 * SECOND, 30 * SECOND, 1),
        _histogram_record(T0, [0.0, 1.0]),
        _histogram_record(T0 + SECOND, [-0.0, 1.0]),
    ]
    compiled, python = decode_all(records, True), decode_all(records, False)
    assert compiled == python
    rates = [sample[2] for sample in compiled[0][3]]
    assert rates == [("float", repr(3 * 1e9 / (10 * SECOND)))]


def _gauge_record(time_ns: int, value: float) -> bytes:
    metric = Metric(name="g")
    metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
    return _field(1, _field(2, _field(2, metric.SerializeToString())))


@needs_compiled
def test_extreme_times_and_values_are_judged_alike() -> None:
    # Points at or past 2**63 ns and NaN or infinite levels are dropped with a reason by both
    # decoders (the compiled one hands them to Python); a time just inside int64 is kept.
    records = [
        _gauge_record(2**64 - 1, 1.0),
        _gauge_record(2**63, 1.0),
        _gauge_record(2**63 - 1, 1.0),
        _gauge_record(T0, math.nan),
        _gauge_record(T0, -math.inf),
        _counter_record(SECOND, 2**64 - 1, 5),
        _histogram_record(2**64 - 1, [1.0]),
        _histogram_record(T0, [1.0, math.inf]),
    ]
    compiled, python = decode_all(records, True), decode_all(records, False)
    assert compiled == python
    outcomes = compiled[0][::2]
    errors = [error for _, error, *_ in outcomes]
    assert "past 2**63" in errors[0] and "past 2**63" in errors[1]
    assert errors[2] is None
    assert "non-finite value (nan)" in errors[3] and "non-finite value (-inf)" in errors[4]
    assert "past 2**63" in errors[5] and "past 2**63" in errors[6]
