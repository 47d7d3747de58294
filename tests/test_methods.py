"""Conformance of every registered method, and the behaviour each baseline promises."""

import pickle

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from toys import toy_window

from rca.errors import RCAInputError
from rca.methods import BENCH_METHODS, METHODS, RCAMethod, make_method
from rca.types import RCAResult

ALL = METHODS.names() + BENCH_METHODS.names()  # every method, live and bench-only


def fitted(name: str, seed: int = 0) -> RCAMethod:
    """A method fitted as the benchmark fits it when there is no history; ``run-oracle`` gets an
    empty known graph (it refuses to run without one, see its own test)."""
    return make_method(name, seed=seed).fit(None, series_graph=nx.DiGraph())


def test_registry_has_the_baselines():
    assert {"random", "nsigma", "baro", "granger-pagerank"} <= set(ALL)
    with pytest.raises(KeyError, match="unknown method"):
        make_method("nope")


@pytest.mark.parametrize("name", ALL)
def test_returns_a_sorted_result_and_leaves_the_input_alone(name, rng):
    window, onset = toy_window(rng)
    copy = window.copy()
    result = fitted(name, seed=1).rank(window, onset)
    pd.testing.assert_frame_equal(window, copy)
    assert isinstance(result, RCAResult) and result.method == name
    scores = [c.score for c in result.causes]
    assert scores == sorted(scores, reverse=True)
    assert {c.series for c in result.causes} | set(result.dropped) == set(window.columns)
    assert result.timings_seconds["total"] >= 0


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_ranking(name, rng):
    window, onset = toy_window(rng)
    first = fitted(name, seed=3).rank(window, onset)
    second = fitted(name, seed=3).rank(window, onset)
    assert [c.series for c in first.causes] == [c.series for c in second.causes]


@pytest.mark.parametrize("name", ALL)
def test_survives_a_pickle_round_trip(name, rng):
    window, onset = toy_window(rng)
    method = pickle.loads(pickle.dumps(fitted(name, seed=3)))
    assert isinstance(method, RCAMethod)
    original = fitted(name, seed=3).rank(window, onset)
    assert [c.series for c in method.rank(window, onset).causes] == [
        c.series for c in original.causes
    ]


@pytest.mark.parametrize("name", ALL)
def test_nan_gaps_constant_and_empty_series_never_crash(name, rng):
    window, onset = toy_window(rng)
    window.iloc[10:20, 0] = np.nan  # a gap
    window.iloc[90:95, 1] = np.nan  # a gap after the onset
    window["idle:container.cpu.utilization"] = 5.0  # constant
    window["gone:container.cpu.utilization"] = np.nan  # empty
    window["late:container.cpu.utilization"] = np.where(window.index >= onset, 1.0, np.nan)
    result = fitted(name, seed=0).rank(window, onset)
    dropped = set(result.dropped)
    assert {"idle:container.cpu.utilization", "gone:container.cpu.utilization"} <= dropped
    assert all(np.isfinite(c.score) or c.score == float("-inf") for c in result.causes)


@pytest.mark.parametrize("name", ALL)
def test_two_series_and_added_or_missing_series(name, rng):
    window, onset = toy_window(rng, services=("a",), shifted="a")
    assert len(fitted(name).rank(window, onset).causes) == 2
    wider, onset = toy_window(rng, services=("a", "b", "c", "d"), shifted="b")
    narrower = wider.drop(columns=["d:container.cpu.utilization"])
    for frame in (wider, narrower):
        assert fitted(name).rank(frame, onset).causes


@pytest.mark.parametrize("name", ALL)
def test_bad_onsets_are_clear_errors(name, rng):
    window, _ = toy_window(rng)
    with pytest.raises(RCAInputError, match="outside the window"):
        fitted(name).rank(window, window.index[0])
    with pytest.raises(RCAInputError):
        fitted(name).rank(window, "not a time")


@pytest.mark.parametrize("name", ["nsigma", "baro"])
def test_scorers_rank_the_shifted_service_first(name, rng):
    window, onset = toy_window(rng, shifted="db", shift=6.0)
    result = fitted(name).rank(window, onset)
    assert result.causes[0].series == "db:container.cpu.utilization"


def test_scores_are_signed_like_rcaeval(rng):
    # A drop is not an anomaly for these scorers: RCAEval takes the signed max.
    window, onset = toy_window(rng, shifted="db", shift=-20.0)
    for name in ("nsigma", "baro"):
        result = fitted(name).rank(window, onset)
        assert result.causes[-1].series == "db:container.cpu.utilization"


def test_baro_scores_memory_in_megabytes_where_the_iqr_is_zero():
    # Memory flat at one value with a rare blip (IQR 0), then +4 MB; CPU jumps 20 IQRs.
    index = pd.date_range("2026-01-01", periods=100, freq="1s", tz="UTC")
    memory = np.full(100, 300e6)
    memory[10] += 4096
    memory[60:] += 4e6
    cpu = 10 + np.tile([0.0, 1.0], 50)
    cpu[60:] += 20
    window = pd.DataFrame(
        {"a:container.memory.usage": memory, "b:container.cpu.utilization": cpu}, index=index
    )
    assert make_method("baro").rank(window, index[60]).causes[0].service == "b"


def test_granger_pagerank_without_edges_ties_everything(rng):
    window, onset = toy_window(rng, rows=8, onset_row=5)
    result = make_method("granger-pagerank").rank(window, onset)
    assert len({c.score for c in result.causes}) == 1


def test_granger_pagerank_puts_mass_on_a_driver(rng):
    steps = 300
    driver = rng.normal(size=steps)
    follower = np.zeros(steps)
    for t in range(1, steps):
        follower[t] = 0.9 * driver[t - 1] + 0.2 * rng.normal()
    index = pd.date_range("2026-01-01", periods=steps, freq="1s", tz="UTC")
    window = pd.DataFrame({"up:m": driver, "down:m": follower}, index=index)
    result = make_method("granger-pagerank").rank(window, index[200])
    assert result.graph is not None
    assert ("up:m", "down:m") in {(e.cause, e.effect) for e in result.graph.edges()}
    assert result.causes[0].series == "up:m"
