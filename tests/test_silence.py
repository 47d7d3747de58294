"""A service that crashes stops reporting: its silence is evidence, not a dropped series."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from rca.detect.onset import detect_onset
from rca.detect.silence import silent_rows
from rca.methods import make_method
from rca.report.verdict import verdict

ROWS, AT = 120, 80
INDEX = pd.date_range("2026-01-01", periods=ROWS, freq="10s", tz="UTC", name="time")
SERVICES = ("frontend", "orders", "payment", "carts", "catalogue")
CALLS = nx.DiGraph([("frontend", "orders"), ("orders", "payment")])
CALLS.add_edges_from([("frontend", "carts"), ("frontend", "catalogue")])


def _crash(seed: int = 0) -> pd.DataFrame:
    """Payment dies at row ``AT`` (its series stop); its callers wait a little longer."""
    rng = np.random.default_rng(seed)
    columns = {}
    for service in SERVICES:
        columns[f"{service}:http.server.request.duration:p90"] = 0.05 + rng.normal(0, 0.003, ROWS)
        columns[f"{service}:process.cpu.utilization"] = 0.2 + rng.normal(0, 0.02, ROWS)
    window = pd.DataFrame(columns, index=INDEX)
    window.loc[INDEX[AT] :, [c for c in window if c.startswith("payment:")]] = np.nan
    for caller in ("orders", "frontend"):
        window.loc[INDEX[AT] :, f"{caller}:http.server.request.duration:p90"] += 0.02
    return window


def test_a_series_that_stops_is_silent_from_its_last_report_on():
    window = _crash()
    silent = silent_rows(window, max_gap_steps=3)
    assert silent.loc[INDEX[AT] :, "payment:process.cpu.utilization"].all()
    assert not silent.loc[: INDEX[AT - 1]].to_numpy().any()
    assert not silent[[c for c in window if not c.startswith("payment:")]].to_numpy().any()
    # A silence that began before ``since`` is older than the incident.
    assert not silent_rows(window, 3, since=INDEX[AT + 1]).to_numpy().any()
    # Series that never report, or appear later, do not make the window's rows look dead.
    padded = window.assign(**{f"ghost{k}:errors:rate": np.nan for k in range(6)})
    padded.loc[INDEX[AT + 2] :, "new:errors:rate"] = 1.0
    assert silent_rows(padded, 3)["payment:process.cpu.utilization"].sum() == ROWS - AT


def test_short_gaps_sparse_series_and_a_late_scrape_are_not_silence():
    window = _crash()
    window.iloc[:AT] = window.iloc[:AT].ffill()
    window.loc[INDEX[AT] :, [c for c in window if c.startswith("payment:")]] = 1.0
    window.iloc[40:43, 0] = np.nan  # three missing rows: a gap, imputed later
    window.iloc[::2, 1] = np.nan  # reports every other row: sparse, not crashed
    window.iloc[-6:] = np.nan  # the newest scrapes have not arrived for anyone
    assert not silent_rows(window, max_gap_steps=3).to_numpy().any()
    window.iloc[-6:] = 1.0
    window.iloc[-6:, :4] = np.nan  # an ingest partition lags: 4 of 10 series, 6 steps behind
    assert not silent_rows(window, max_gap_steps=3).to_numpy().any()


@pytest.mark.parametrize("late", [0, 2])
@pytest.mark.parametrize("calls", [CALLS, None])
def test_the_crashed_service_ranks_first_not_last(calls, late):
    # ``late``: an onset given up to the detector's guard band (2 steps) after the crash.
    window = _crash()
    for method in ("run-topology", "run-nograph"):
        result = make_method(method).fit(None, call_graph=calls).rank(window, INDEX[AT + late])
        assert result.services()[0][0] == "payment", (method, result.services())
        assert not any(name.startswith("payment:") for name in result.dropped)


def test_the_onset_detector_sees_a_crash():
    window = _crash()
    found = detect_onset(window, not_after=INDEX[AT + 3])
    assert abs(found.onset - INDEX[AT]) <= INDEX[1] - INDEX[0], found
    assert any(name.startswith("payment:") for name in found.series)


def test_the_report_says_the_service_stopped_reporting():
    window = _crash()
    result = make_method("run-topology").fit(None, call_graph=CALLS).rank(window, INDEX[AT])
    answer = verdict(result, window, INDEX[AT])
    assert answer.title.startswith("Likely root cause: payment")
    assert "stopped reporting" in answer.headline and "→ no data" in answer.headline
