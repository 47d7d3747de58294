"""Valid but extreme OTLP records (issue 13): dropped with a reason or dead-lettered, never
raised out of the batch; the window store's bounds; the status endpoint's bounds."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from otlp_builders import SECOND, counter, gauge, request
from patience import patience

from rca.ingest.batch import store_records
from rca.ingest.otlp_decode import DecodeState, MalformedRecord, Samples, decode_record
from rca.ingest.status_http import StatusServer, serve_status
from rca.store.window_store import MAX_NAME_CHARS, WindowStore

T0 = 1_800_000_000 * SECOND
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def exponential(scale: int, offset: int, time_ns: int = T0 + SECOND) -> Metric:
    metric = Metric(name="lat")
    metric.exponential_histogram.aggregation_temporality = DELTA
    point = metric.exponential_histogram.data_points.add(
        start_time_unix_nano=T0, time_unix_nano=time_ns, scale=scale, count=3, sum=3.0
    )
    point.positive.offset = offset
    point.positive.bucket_counts.extend([1, 2])
    point.negative.offset = offset
    point.negative.bucket_counts.extend([1])
    return metric


@pytest.mark.parametrize("compiled", [True, False])
def test_a_time_past_int64_nanoseconds_is_dropped_with_a_reason_beside_good_points(
    compiled: bool,
) -> None:
    # Was: the sample reached the store and OverflowError stopped `rca ingest` for good.
    value = request([gauge("g", [(2**64 - 1, 1.0), (T0, 2.0)])]).SerializeToString()
    out = Samples()
    assert decode_record(value, DecodeState(), out, compiled=compiled) == 1
    assert out.invalid_points == 1 and "past 2**63" in (out.first_problem or "")
    result = WindowStore().write(out.keys, out.times_ns, out.values)
    assert result.stored == 1


@pytest.mark.parametrize(("scale", "offset"), [(-10, 0), (0, 2000), (-9, 3), (20, -(2**31))])
def test_exponential_histograms_at_extreme_scales_and_offsets_decode(
    scale: int, offset: int
) -> None:
    # Was: OverflowError from 2.0 ** (2.0 ** -scale) ** index.
    out = Samples()
    value = request([exponential(scale, offset)]).SerializeToString()
    assert decode_record(value, DecodeState(), out) == 1
    result = WindowStore().write(out.keys, out.times_ns, out.values)
    assert result.stored + result.non_finite == len(out.keys) > 0


def test_nan_and_infinite_levels_are_dropped_with_a_reason_not_counted_valid() -> None:
    metrics = [
        gauge("g", [(T0, math.nan), (T0 + SECOND, math.inf), (T0 + 2 * SECOND, 1.0)]),
        counter("c", [(T0, T0 + SECOND, math.nan)]),
    ]
    out = Samples()
    assert decode_record(request(metrics).SerializeToString(), DecodeState(), out) == 1
    assert out.invalid_points == 3 and "non-finite value (nan)" in (out.first_problem or "")
    assert out.values == [1.0]
    with pytest.raises(MalformedRecord, match="non-finite"):
        value = request([gauge("g", [(T0, math.nan)])]).SerializeToString()
        decode_record(value, DecodeState(), Samples())


def test_the_store_counts_what_it_cannot_hold_instead_of_raising() -> None:
    store = WindowStore(1.0, 60, max_series=2)
    keys = [("a", "m", None, ()), ("b", "m", None, ()), ("c", "m", None, ())]
    long_key = ("d", "m", None, (("k", "x" * MAX_NAME_CHARS),))
    result = store.write(
        [keys[0], keys[0], keys[1], keys[2], keys[0], long_key],
        [T0, 2**64 - 1, T0, T0, T0, T0],
        [1.0, 1.0, math.inf, 2.0, math.nan, 3.0],
        max_time_ns=T0 + 60 * SECOND,
    )
    assert (result.stored, result.too_new, result.non_finite) == (2, 1, 2)
    # b had only an infinite sample, so the cap of 2 takes a and c; the long name is refused
    assert result.refused == 1 and store.series() == ["a:m", "c:m"]
    again = store.write([("e", "m", None, ())], [T0], [1.0])
    assert again.refused == 1 and store.series_count == 2
    assert store.nbytes == (2 + 1) * 60 * 8  # two rows and the slot index: none past the cap


def test_any_exception_while_handling_one_record_dead_letters_only_that_record() -> None:
    good = [
        request([gauge("g", [(T0 + i * SECOND, float(i))])]).SerializeToString() for i in (0, 1)
    ]
    poison = request([gauge("poison", [(T0, 1.0)])]).SerializeToString()
    bad_key = request([gauge("bad-key", [(T0, 1.0)])]).SerializeToString()

    def decode(value: bytes | None, state: DecodeState, out: Samples) -> int:
        """The real decoder, with a bug for one record and a key the store cannot use."""
        if value == poison:
            raise RuntimeError("a decoder bug")
        if value == bad_key:
            out.add(("svc",), T0, 1.0)  # type: ignore[arg-type]
            out.points += 1
            return 1
        return decode_record(value, state, out)

    store = WindowStore(1.0, 3600)
    outcome = store_records(
        [good[0], poison, b"\xff", bad_key, good[1]], DecodeState(), store, None, decode
    )
    assert [index for index, _ in outcome.dead] == [1, 2, 3]
    reasons = dict(outcome.dead)
    assert reasons[1] == "RuntimeError while decoding: a decoder bug"
    assert reasons[2].startswith("not an OTLP")
    assert reasons[3].startswith("ValueError while storing")
    assert outcome.errors == 2 and outcome.points == 2 and outcome.dead_points == 2
    assert store.window(T0 / SECOND, T0 / SECOND + 1)["unknown_service:g"].tolist() == [0.0, 1.0]


@pytest.fixture
def store() -> WindowStore:
    store = WindowStore(1.0, 3600)
    keys = [(f"s{i}", "m", None, ()) for i in range(10)]
    for step in range(5):
        store.write(keys, [T0 + step * SECOND] * 10, [float(step)] * 10)
    store.write([keys[0]], [T0 + 5 * SECOND], [math.inf])  # dropped: never Infinity in JSON
    return store


@pytest.fixture
def server(store: WindowStore) -> Iterator[StatusServer]:
    running = serve_status(
        "127.0.0.1", 0, store, lambda: {"ok": True}, token="s3cret", max_cells=30, max_concurrent=1
    )
    yield running
    running.shutdown()
    running.server_close()


def get(server: StatusServer, query: str, token: str | None = "s3cret") -> tuple[int, dict]:
    host, port = server.server_address[:2]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://{host}:{port}{query}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=patience(60)) as reply:
            status, body, retry = reply.status, reply.read(), None
    except urllib.error.HTTPError as exc:
        status, body, retry = exc.code, exc.read(), exc.headers.get("Retry-After")
    parsed = json.loads(body, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    return status, {**parsed, "retry_after": retry}


def test_window_needs_the_token_and_health_does_not(server: StatusServer) -> None:
    start, end = T0 / SECOND, T0 / SECOND + 2
    assert get(server, f"/window?start={start}&end={end}", token=None)[0] == 401
    assert get(server, f"/window?start={start}&end={end}", token="wrong")[0] == 401
    assert get(server, f"/window?start={start}&end={end}", token="s3crét")[0] == 401
    assert get(server, "/health", token=None)[0] == 200
    status, body = get(server, f"/window?start={start}&end={end}&services=s1,s2")
    assert status == 200 and body["columns"] == ["s1:m", "s2:m"]


def test_window_caps_cells_and_concurrency_and_answers_bad_times(server: StatusServer) -> None:
    start = T0 / SECOND
    status, body = get(server, f"/window?start={start}&end={start + 5}")  # 10 series x 6 steps
    assert status == 413 and "over the cap of 30 cells" in body["error"]
    status, body = get(server, f"/window?start={start}&end={start + 5}&services=s0,s1")
    # the inf at step 5 was never stored (strict JSON parsing above would fail on Infinity)
    assert status == 200 and len(body["index"]) == 5 and body["data"][-1] == [4.0, 4.0]
    for bad in ("1e30", "-1e30", "nan", "2**64"):
        status, body = get(server, f"/window?start={bad}&end={start}")
        assert status == 400 and body["error"], bad
    assert get(server, f"/window?end={start}")[0] == 400
    with server.window_slots:  # the one slot is busy
        status, body = get(server, f"/window?start={start}&end={start + 1}&services=s0")
    assert status == 503 and body["retry_after"] == "1"


def test_a_client_asking_again_at_once_is_never_refused_for_its_own_request(server) -> None:
    """The slot is given back before the answer is sent: a sequential client (the API asking
    a worker for window after window) never finds its previous request still counted."""
    start = T0 / SECOND
    for _ in range(100):
        status, _ = get(server, f"/window?start={start}&end={start + 1}&services=s0")
        assert status == 200
        assert server.window_slots.acquire(blocking=False), "the answer came before the slot"
        server.window_slots.release()


def test_window_without_a_token_configured_is_open() -> None:
    running = serve_status("127.0.0.1", 0, WindowStore(), lambda: {})
    try:
        status, body = get(running, "/window?start=0&end=1", token=None)
        assert status == 400 and "no series" in body["error"]
    finally:
        running.shutdown()
        running.server_close()


def test_the_decoders_cumulative_state_is_bounded_by_the_series_cap():
    """Counters' last points are kept per series to compute rates; beyond the store's series
    cap they are forgotten (a new series' first point has no rate anyway), not kept for ever."""
    from rca.ingest.otlp_decode import DecodeState

    state = DecodeState()
    for i in range(30):
        state.counters[(f"s{i}", "m", "rate", ())] = (0, 1, 1.0)
    state.bound(50)
    assert len(state.counters) == 30  # under the cap: kept
    state.bound(20)
    assert not state.counters
