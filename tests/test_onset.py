"""The onset detector on seeded windows: where a change starts, bounds, fallbacks, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rca.detect.onset import OnsetEstimate, detect_onset, row_evidence, signals
from rca.errors import RCAInputError
from services.sim import StackSim, StackSimConfig

STEP = pd.Timedelta(seconds=10)


def _window(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = len(next(iter(columns.values())))
    index = pd.date_range("2026-01-01", periods=rows, freq=STEP, tz="UTC", name="time")
    return pd.DataFrame(columns, index=index)


def _noise(rows: int, seed: int, level: float = 10.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, 0.5, rows)


def _incident(rows: int = 80, at: int = 50, seed: int = 0) -> pd.DataFrame:
    """Three series of one service step up at row ``at``; two others stay normal."""
    shift = np.r_[np.zeros(at), np.ones(rows - at)]
    return _window(
        {
            "api:process.cpu.utilization": _noise(rows, seed) + 8 * shift,
            "api:http.server.request.duration:p90": _noise(rows, seed + 1) + 5 * shift,
            "web:http.server.request.duration:p90": _noise(rows, seed + 2) + 3 * shift,
            "db:process.cpu.utilization": _noise(rows, seed + 3),
            "db:process.memory.usage": _noise(rows, seed + 4, 500.0),
        }
    )


def _large_sim_alerted_2_steps_late(case_id: str, fault: str) -> OnsetEstimate:
    """The onset of a seeded sim:large case told of an alert 2 steps late, checked to lie
    within one step of the injection."""
    case = StackSim(StackSimConfig("large", seed=0)).load(case_id)
    assert case.truth.fault == fault
    step = case.window.index[1] - case.window.index[0]
    found = detect_onset(case.window, not_after=case.onset + 2 * step, history=case.history)
    assert abs(found.onset - case.onset) <= step, found
    return found


def test_a_step_in_several_series_is_found_at_its_first_row():
    window = _incident()
    before = window.copy()
    found = detect_onset(window)
    assert isinstance(found, OnsetEstimate)
    assert found.onset == window.index[50]
    assert found.method == "change-point" and found.confidence > 0.5
    assert found.series[0] == "api:process.cpu.utilization"
    assert not any(s.startswith("db:") for s in found.series)
    pd.testing.assert_frame_equal(window, before)  # input untouched
    assert detect_onset(window) == found  # deterministic


def test_a_ramp_is_found_where_it_starts_not_where_it_became_large():
    rows, at = 90, 50
    ramp = np.r_[np.zeros(at), 0.6 * np.arange(1, rows - at + 1)]
    window = _window(
        {
            "api:process.memory.usage": _noise(rows, 1) + ramp,
            "api:process.cpu.utilization": _noise(rows, 2) + ramp / 2,
            "db:process.cpu.utilization": _noise(rows, 3),
        }
    )
    found = detect_onset(window)
    assert window.index[at] <= found.onset <= window.index[at + 2]


def test_the_alert_time_is_an_upper_bound_searched_back_from():
    rows = 120
    first = np.r_[np.zeros(40), np.full(rows - 40, 6.0)]
    second = np.r_[np.zeros(90), np.full(rows - 90, 6.0)]
    window = _window(
        {
            "a:process.cpu.utilization": _noise(rows, 5) + first,
            "a:http.server.request.duration:p90": _noise(rows, 6) + first,
            "b:process.cpu.utilization": _noise(rows, 7) + second,
            "b:http.server.request.duration:p90": _noise(rows, 8) + second,
        }
    )
    assert detect_onset(window).onset == window.index[90]  # no alert: the latest change
    alert = window.index[60]
    assert detect_onset(window, not_after=alert).onset == window.index[40]
    late = detect_onset(window, not_after=window.index[95])
    assert late.onset == window.index[90]
    assert detect_onset(window, not_before=window.index[95]).method.startswith("fallback")


def test_an_earlier_one_series_glitch_does_not_win_over_the_incident():
    window = _incident(rows=100, at=70)
    window.iloc[20:24, 3] += 40.0  # a 4-row spike in one unrelated series
    assert detect_onset(window).onset == window.index[70]
    assert detect_onset(window, not_after=window.index[75]).onset == window.index[70]


def test_a_leak_lasting_most_of_the_window_is_not_hidden_by_its_own_plateau():
    # A simulated 45-service window: transients in several latency series early on, then one
    # memory series leaks from the onset to the end. Judged against all rows, the leak's long
    # plateau of evidence would set the bar it has to clear, and a transient would win.
    found = _large_sim_alerted_2_steps_late("0100", "mem")
    assert found.series[0].endswith("process.memory.usage")


def test_a_histograms_statistics_are_one_signal():
    columns = pd.Index(
        [
            "api:http.server.request.duration:p50{http.route=/a}",
            "api:http.server.request.duration:p99{http.route=/a}",
            "api:http.server.request.duration:mean{http.route=/a}",
            "api:http.server.request.duration:rate{http.route=/a}",
            "api:http.server.request.duration:p50{http.route=/b}",
            "web:http.server.request.duration:p50{http.route=/a}",
            "not a series name",
        ]
    )
    ids = signals(columns)
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids)) == 5
    step = np.zeros((3, len(columns)))
    step[1, :3] = 50.0  # the three statistics of one histogram
    step[1, 5] = 50.0
    evidence = row_evidence(step, ids)
    assert evidence[0] == evidence[2] == 0.0
    alone = row_evidence(step, np.arange(len(columns)))  # every series its own signal
    assert evidence[1] == pytest.approx(alone[1] / 2)


def test_an_earlier_latency_wave_does_not_hide_a_new_error_rate_at_the_alert():
    # A simulated 45-service window whose earlier latency transient moves p50, p90, p99 and
    # mean of several services; the incident is a new status_code=500 rate in one service.
    found = _large_sim_alerted_2_steps_late("0325", "errors")
    assert "status_code=500" in found.series[0]


def test_an_error_rate_that_appears_is_a_change():
    rows, at = 60, 35
    failed = np.r_[np.full(at, np.nan), 2.0 + np.random.default_rng(0).poisson(3, rows - at)]
    window = _window(
        {
            "api:http.server.request.duration:rate{http.response.status_code=200}": _noise(
                rows, 0, 50.0
            ),
            "api:http.server.request.duration:rate{http.response.status_code=500}": failed,
            "api:http.server.request.duration:p90": _noise(rows, 1),
        }
    )
    found = detect_onset(window)
    assert found.onset == window.index[at]
    assert "status_code=500" in found.series[0]


def test_history_sets_the_scale_of_normal():
    rows, at = 80, 50
    small = np.r_[np.zeros(at), np.full(rows - at, 1.0)]
    quiet = np.random.default_rng(3).normal(0.0, 0.05, (rows, 2))
    window = _window({"a:cpu": 5 + quiet[:, 0] + small, "a:mem": 9 + quiet[:, 1] + small})
    assert detect_onset(window).onset == window.index[at]
    # Normal history that swings by +-2 makes a step of 1 ordinary.
    swings = np.random.default_rng(4).normal(0.0, 2.0, (200, 2))
    history = pd.DataFrame({"a:cpu": 5 + swings[:, 0], "a:mem": 9 + swings[:, 1]})
    found = detect_onset(window, history=history)
    assert found.method == "fallback:last-quarter" and found.confidence == 0.0


def test_nothing_changed_is_a_fallback_with_no_confidence():
    rows = 40
    window = _window(
        {
            "a:flat": np.full(rows, 3.0),
            "a:empty": np.full(rows, np.nan),
            "a:words": np.array(["x"] * rows, dtype=object),
            "a:gappy": np.where(np.arange(rows) % 5 == 0, np.nan, _noise(rows, 9)),
        }
    )
    found = detect_onset(window)
    assert found == OnsetEstimate(window.index[30], 0.0, "fallback:last-quarter")
    alerted = detect_onset(window, not_after=window.index[20] + STEP / 2)
    assert alerted == OnsetEstimate(window.index[21], 0.0, "fallback:alert-time")


def test_short_windows_and_impossible_bounds_are_clear_errors():
    window = _incident()
    with pytest.raises(RCAInputError, match="too short"):
        detect_onset(window.iloc[:3])
    assert detect_onset(window.iloc[:4]).onset == window.index[2]  # the only possible row
    with pytest.raises(RCAInputError, match="can be the onset"):
        detect_onset(window, not_after=window.index[0] - STEP)
    with pytest.raises(RCAInputError, match="can be the onset"):
        detect_onset(window, not_before=window.index[60], not_after=window.index[40])


@pytest.mark.parametrize(("stack", "fault"), [("sockshop", "cpu"), ("llm-serving", "latency")])
def test_simulated_incidents_within_one_step_with_and_without_an_alert(stack, fault):
    dataset = StackSim(StackSimConfig(stack, n_cases=20, seed=3))
    case = next(c for c in (dataset.load(i) for i in dataset.case_ids()) if c.truth.fault == fault)
    index = case.window.index
    true = index[int(index.searchsorted(case.onset))]
    step = index[1] - index[0]
    for alert in (None, case.onset + 2 * step):
        found = detect_onset(case.window, not_after=alert, history=case.history)
        assert abs(found.onset - true) <= step, (alert, found)
