"""A graph learned once from history and used by later analyses (no learning per incident)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toys import lagged_driver

from rca.causal.neural_granger import NeuralGrangerConfig
from rca.causal.sources import LearnedGraph
from rca.methods.run import RUNConfig, compose_run
from rca.types import CausalGraph


def _planted(rng: np.random.Generator, steps: int = 900) -> pd.DataFrame:
    """``a``'s CPU drives ``b``'s latency two steps later; ``c`` is noise."""
    x, y = lagged_driver(rng, steps, lag=2, own=0.5, gain=0.9, noise=0.2, link=np.tanh)
    index = pd.date_range("2026-02-01", periods=steps, freq="60s", tz="UTC")
    return pd.DataFrame(
        {
            "a:container.cpu.utilization": 50 + 5 * x,
            "b:http.server.request.duration:p90": 0.2 + 0.02 * y,
            "c:container.cpu.utilization": 30 + rng.normal(size=steps),
        },
        index=index,
    )


def test_on_reorders_and_leaves_unknown_nodes_without_edges():
    weights = np.array([[0.0, 0.7], [0.2, 0.0]])
    graph = CausalGraph(("x", "y"), weights, learned=weights.copy(), stats={"v": 1.0})
    moved = graph.on(["y", "new", "x"])
    assert moved.nodes == ("y", "new", "x")
    assert moved.weights[2, 0] == 0.7 and moved.weights[0, 2] == 0.2
    assert not moved.weights[1].any() and not moved.weights[:, 1].any()
    assert moved.learned is not None and np.array_equal(moved.learned, moved.weights)
    assert moved.stats == {"v": 1.0}


def test_json_keeps_the_edges_that_matter():
    weights = np.array([[0.0, 0.5, 1e-5], [0.25, 0.0, 0.0], [0.0, 0.0, 0.0]])
    graph = CausalGraph(("x", "y", "z"), weights, stats={"granger_epochs": 40.0})
    data = graph.to_json()
    assert data["edges"] == [[0, 1, 0.5], [1, 0, 0.25]]  # 1e-5 is below the floor
    again = CausalGraph.from_json(data)
    assert again.nodes == graph.nodes and again.stats == graph.stats
    assert again.weights[0, 1] == 0.5 and again.weights[1, 0] == 0.25 and again.weights[0, 2] == 0
    assert again.learned is not None and np.array_equal(again.learned, again.weights)


def test_json_carries_the_estimated_lags_and_refuses_a_mixed_edge_list():
    weights = np.array([[0.0, 0.5], [0.25, 0.0]])
    lags = np.array([[0, 3], [1, 0]])
    data = CausalGraph(("x", "y"), weights, lag_steps=lags).to_json()
    assert data["edges"] == [[0, 1, 0.5, 3], [1, 0, 0.25, 1]]
    again = CausalGraph.from_json(data)
    assert again.lag_steps is not None and np.array_equal(again.lag_steps, lags)
    assert [e.lag_steps for e in again.edges()] == [3, 1]
    with pytest.raises(ValueError, match="lag_steps"):
        CausalGraph.from_json({"nodes": ["x", "y"], "edges": [[0, 1, 0.5, 3], [1, 0, 0.2]]})
    with pytest.raises(ValueError, match="lag_steps"):
        CausalGraph.from_json({"nodes": ["x", "y"], "edges": [[0, 1, 0.5, -1]]})


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, CausalGraph]:
    history = _planted(np.random.default_rng(3))
    source = LearnedGraph(NeuralGrangerConfig(epochs=30, device="cpu"), seed=1)
    return history, source.fit(history)


def test_fit_learns_the_planted_edge_from_history_alone(fitted):
    history, graph = fitted
    assert graph.nodes == tuple(history.columns)
    a, b, c = range(3)
    assert graph.weights[a, b] > 0.5  # scaled to at most 1 per effect
    assert graph.weights[b, a] == 0.0 and not graph.weights[c].any()
    assert graph.stats["history_rows"] == len(history.index) and graph.stats["granger_epochs"] > 0


def test_an_analysis_with_a_fitted_graph_uses_it_and_learns_nothing(fitted):
    history, graph = fitted
    window = _planted(np.random.default_rng(4), steps=120)
    window.iloc[90:, 0] += 60  # a's CPU steps up
    onset = window.index[90]
    config = RUNConfig(granger=NeuralGrangerConfig(epochs=30, device="cpu"))
    method = compose_run(config=config).fit(None, learned_graph=graph)
    result = method.rank(window, onset)
    assert result.graph is not None and result.graph.learned is not None
    expected = graph.on(list(result.graph.nodes)).weights
    assert np.array_equal(result.graph.learned, expected)
    assert result.graph.stats["history_rows"] == len(history.index)  # the fit's, not its own
    assert result.services()[0][0] == "a"
    # Without a fitted graph the analysis learns its own, from the window's pre-onset rows.
    again = compose_run(config=config).fit(None).rank(window, onset)
    assert again.graph is not None and "history_rows" not in again.graph.stats
