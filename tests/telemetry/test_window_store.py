"""The window store: alignment, overwrite on re-delivery, the ring's bound, slicing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rca.errors import RCAInputError
from rca.store.window_store import WindowStore
from rca.window import check_window

SECOND = 10**9
T0 = 1_800_000_000 * SECOND


def key(service: str, metric: str = "cpu", stat: str | None = None) -> tuple:
    return (service, metric, stat, ())


def test_samples_land_on_the_step_grid_and_slice_into_a_valid_window() -> None:
    store = WindowStore(step_seconds=1.0, retention_seconds=60)
    times = [T0 + i * SECOND + 300_000_000 for i in range(10)]  # 0.3 s after each step
    store.write([key("a")] * 10, times, [float(i) for i in range(10)])
    store.write([key("b", "lat", "p90")] * 2, times[:2], [5.0, 6.0])
    window = store.window(pd.Timestamp(T0, tz="UTC"), pd.Timestamp(T0 + 9 * SECOND, tz="UTC"))
    check_window(window)
    assert list(window.columns) == ["a:cpu", "b:lat:p90"]
    assert window.index[0] == pd.Timestamp(T0, tz="UTC") and len(window) == 10
    assert window["a:cpu"].tolist() == [float(i) for i in range(10)]
    assert window["b:lat:p90"].isna().sum() == 8


def test_redelivered_samples_overwrite_instead_of_adding() -> None:
    store = WindowStore(1.0, 60)
    for _ in range(3):
        store.write([key("a"), key("a")], [T0, T0 + SECOND], [1.0, 2.0])
    window = store.window(T0 / SECOND, (T0 + SECOND) / SECOND)
    assert window["a:cpu"].tolist() == [1.0, 2.0]


def test_the_ring_forgets_what_falls_out_of_retention() -> None:
    store = WindowStore(1.0, retention_seconds=10)
    store.write([key("a")] * 30, [T0 + i * SECOND for i in range(30)], list(range(30)))
    window = store.window(T0 / SECOND, (T0 + 29 * SECOND) / SECOND)
    assert window.index[0] == pd.Timestamp(T0 + 20 * SECOND, tz="UTC")
    assert window["a:cpu"].tolist() == [float(v) for v in range(20, 30)]
    late = store.write([key("a")], [T0 + 5 * SECOND], [99.0])
    assert late.too_old == 1 and late.stored == 0


def test_a_sample_far_in_the_future_is_dropped_not_allowed_to_wipe_the_ring() -> None:
    store = WindowStore(1.0, 10)
    store.write([key("a")] * 2, [T0, T0 + SECOND], [1.0, 2.0])
    result = store.write([key("a")], [T0 + 10**6 * SECOND], [3.0], max_time_ns=T0 + 60 * SECOND)
    assert result.too_new == 1
    assert store.window(T0 / SECOND, (T0 + SECOND) / SECOND)["a:cpu"].tolist() == [1.0, 2.0]


def test_slice_by_service_and_errors_for_an_empty_range() -> None:
    store = WindowStore(1.0, 60)
    keys = [key("a"), key("b"), key("c")] * 3
    times = [T0 + (i // 3) * SECOND for i in range(9)]
    store.write(keys, times, np.arange(9.0))
    window = store.window(T0 / SECOND, (T0 + 2 * SECOND) / SECOND, services=["a", "c"])
    assert list(window.columns) == ["a:cpu", "c:cpu"]
    assert store.services() == ["a", "b", "c"]
    with pytest.raises(RCAInputError):
        store.window((T0 + 100 * SECOND) / SECOND, (T0 + 200 * SECOND) / SECOND)


def test_memory_is_bounded_by_series_times_retention() -> None:
    store = WindowStore(1.0, retention_seconds=3600)
    n = 1000
    keys = [key(f"s{i}") for i in range(n)]
    for step in range(0, 7200, 600):  # two hours of writes into one hour of ring
        store.write(keys, [T0 + step * SECOND] * n, np.ones(n))
    raw = n * 3600 * 8
    assert raw <= store.nbytes <= 1.3 * raw
