"""Series-level graphs from what is known without learning: the call graph and the services.

A call ``caller -> callee`` means the callee's trouble reaches the caller (its latency, errors,
queueing), so every series of the callee is a possible cause of every series of the caller.
Series of one service may cause each other (CPU -> latency, memory -> latency). The result is a
0/1 cause -> effect matrix over ``names``, used as the walk's graph (``run-topology``) or as the
neural Granger prior.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import networkx as nx
import numpy as np

from rca.types import service_of


def series_by_service(names: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        groups[service_of(name)].append(i)
    return groups


def topology_matrix(names: Sequence[str], call_graph: nx.DiGraph | None) -> np.ndarray:
    """``m[i, j] = 1`` if series ``i`` may cause series ``j`` (same service, or ``j``'s service
    calls ``i``'s)."""
    groups = series_by_service(names)
    n = len(names)
    m = np.zeros((n, n))
    for members in groups.values():
        m[np.ix_(members, members)] = 1.0
    if call_graph is not None:
        for caller, callee in call_graph.edges:
            if caller in groups and callee in groups and caller != callee:
                m[np.ix_(groups[callee], groups[caller])] = 1.0
    np.fill_diagonal(m, 0.0)
    return m


def graph_matrix(names: Sequence[str], graph: nx.DiGraph) -> np.ndarray:
    """A cause -> effect ``networkx`` graph over series names as a weight matrix."""
    position = {name: i for i, name in enumerate(names)}
    m = np.zeros((len(names), len(names)))
    for cause, effect, data in graph.edges(data=True):
        if cause in position and effect in position and cause != effect:
            m[position[cause], position[effect]] = float(data.get("weight", 1.0))
    return m


def random_like(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random graph with as many edges as ``weights`` (no self-loops), weights shuffled."""
    n = weights.shape[0]
    values = weights[weights > 0]
    off = np.flatnonzero(~np.eye(n, dtype=bool))
    picked = rng.choice(off, size=min(len(values), len(off)), replace=False)
    out = np.zeros(n * n)
    out[picked] = rng.permutation(values)[: len(picked)]
    return out.reshape(n, n)
