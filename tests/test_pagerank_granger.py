import networkx as nx
import numpy as np
import pytest
from toys import lagged_driver

from rca.causal.granger import granger_pvalues, lagged
from rca.rank.pagerank import pagerank


def test_pagerank_matches_networkx_with_and_without_personalization(rng):
    adjacency = (rng.random((12, 12)) < 0.25) * rng.random((12, 12))
    np.fill_diagonal(adjacency, 0)
    adjacency[3] = 0  # a dangling node
    graph = nx.from_numpy_array(adjacency, create_using=nx.DiGraph)
    personalization = rng.random(12)
    for v in (None, personalization):
        ours = pagerank(adjacency, v, damping=0.85)
        pers = None if v is None else dict(enumerate(v / v.sum()))
        theirs = nx.pagerank(graph, alpha=0.85, personalization=pers, dangling=pers, tol=1e-12)
        assert ours == pytest.approx([theirs[i] for i in range(12)], abs=1e-8)
        assert ours.sum() == pytest.approx(1.0)


def test_pagerank_rejects_bad_personalization():
    with pytest.raises(ValueError):
        pagerank(np.zeros((2, 2)), np.array([-1.0, 2.0]))


def test_lagged_lines_up_the_past():
    x = np.arange(6.0)
    assert lagged(x, 2).tolist() == [[1, 0], [2, 1], [3, 2], [4, 3]]


def test_granger_finds_the_planted_direction(rng):
    steps = 400
    x, y = lagged_driver(rng, steps, lag=2, own=0.3, gain=0.8, noise=0.3)
    z = rng.normal(size=steps)
    p = granger_pvalues(np.column_stack([x, y, z]), lags=3)
    assert p[0, 1] < 1e-6  # x -> y
    assert p[1, 0] > 0.01  # not y -> x
    assert p[2, 1] > 0.001 and p[0, 2] > 0.001
    assert np.all(np.diag(p) == 1.0)


def test_granger_refuses_too_few_rows():
    with pytest.raises(ValueError, match="too few"):
        granger_pvalues(np.zeros((5, 2)), lags=3)
