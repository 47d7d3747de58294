"""Graph sources for ``run`` and its ablations (:class:`rca.causal.base.GraphSource`).

* :class:`NoGraph`: no edges (anomaly and precedence alone).
* :class:`CallGraph`: what is known without learning, series of one service and the call graph.
* :class:`LearnedGraph`: a neural Granger graph learned from fault-free history and the
  window's pre-onset rows, with the known graph as a prior; known edges stay, learned ones add.
* :class:`RandomGraph`: another source's graph replaced by a random one with as many edges.
* :class:`RandomLearnedEdges`: the known graph kept, the learned edges put in random places.
* :class:`OracleGraph`: the true series graph (synthetic data only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np
import pandas as pd

from rca.causal.base import GraphInputs, GraphSource
from rca.causal.neural_granger import NeuralGranger, NeuralGrangerConfig
from rca.causal.topology import graph_matrix, random_like, topology_matrix
from rca.detect.robust import impute_gaps, robust_spread
from rca.errors import RCAInputError
from rca.types import CausalGraph
from rca.window import Window


def standardized(frame: pd.DataFrame, relative_floor: float, max_gap_steps: int) -> np.ndarray:
    """A segment scaled by its own robust center and spread (NaN stays NaN)."""
    filled = impute_gaps(frame, max_gap_steps)
    center, spread = robust_spread(filled, relative_floor)
    return ((filled - center) / spread).clip(-50, 50).to_numpy(dtype=np.float32)


@dataclass(frozen=True)
class NoGraph:
    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        return CausalGraph.empty(nodes)


@dataclass(frozen=True)
class CallGraph:
    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        return CausalGraph(tuple(nodes), topology_matrix(nodes, inputs.call_graph))


@dataclass(frozen=True)
class LearnedGraph:
    """Learned edges are scaled to at most 1 per effect and added to the known graph, so what
    is known without learning (same-service edges, the call graph) stays and is re-weighted.
    ``use_prior``: whether the call graph makes the learner's edges cheaper.

    With a graph already learned from history (``inputs.learned``: :meth:`fit`, run by the
    server in the background) an analysis uses it and learns nothing; without one it learns
    from the history and the window's pre-onset rows."""

    granger: NeuralGrangerConfig = field(default_factory=NeuralGrangerConfig)
    relative_floor: float = 0.05
    max_gap_steps: int = 3
    seed: int = 0

    def fit(self, history: Window, call_graph: nx.DiGraph | None = None) -> CausalGraph:
        """The learned edges alone (``learned`` = ``weights``) over every series of
        ``history``, with how they were made in ``stats``."""
        nodes = [str(c) for c in history.columns]
        segment = standardized(history, self.relative_floor, self.max_gap_steps)
        prior = topology_matrix(nodes, call_graph) if call_graph is not None else None
        part, lags, stats = self._learn([segment], prior)
        stats["history_rows"] = float(len(history.index))
        return CausalGraph(tuple(nodes), part, learned=part.copy(), lag_steps=lags, stats=stats)

    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        known = topology_matrix(nodes, inputs.call_graph)
        if inputs.learned is not None:
            fitted = inputs.learned.on(nodes)
            return CausalGraph(
                tuple(nodes),
                fitted.weights + known,
                learned=fitted.weights,
                lag_steps=fitted.lag_steps,
                stats=fitted.stats,
            )
        segments = []
        if inputs.history is not None:
            history = inputs.history.reindex(columns=nodes)
            segments.append(standardized(history, self.relative_floor, self.max_gap_steps))
        before = window.loc[window.index < onset, nodes]
        segments.append(standardized(before, self.relative_floor, self.max_gap_steps))
        prior = known if inputs.call_graph is not None else None
        part, lags, stats = self._learn(segments, prior)
        return CausalGraph(tuple(nodes), part + known, learned=part, lag_steps=lags, stats=stats)

    def _learn(
        self, segments: list[np.ndarray], prior: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """The learned part (at most 1 per effect), its lags and how it was made; ``prior``:
        the edges a call graph allows."""
        learned = NeuralGranger(replace(self.granger, seed=self.seed)).fit(segments, prior)
        part = learned.weights / np.maximum(learned.weights.max(axis=0, keepdims=True), 1e-12)
        stats = {"granger_epochs": float(learned.epochs), "fdr": self.granger.fdr}
        return part, learned.lag_steps, stats


@dataclass(frozen=True)
class RandomGraph:
    """The ablation that replaces the whole of ``base``'s graph by a random one."""

    base: GraphSource
    seed: int = 0

    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        made = self.base.graph(window, onset, nodes, inputs)
        weights = random_like(made.weights, np.random.default_rng(self.seed))
        return CausalGraph(made.nodes, weights, learned=weights, stats=made.stats)


@dataclass(frozen=True)
class RandomLearnedEdges:
    """The fair control of a learned graph: what was known stays, and the learned edges move
    to random places (as many, same weights). ``RandomGraph`` also loses the call graph, so
    it measures losing the call graph rather than learned against random edges."""

    base: LearnedGraph
    seed: int = 0

    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        made = self.base.graph(window, onset, nodes, inputs)
        assert made.learned is not None  # a LearnedGraph always says what it learned
        moved = random_like(made.learned, np.random.default_rng(self.seed))
        known = made.weights - made.learned
        return CausalGraph(made.nodes, known + moved, learned=moved, stats=made.stats)


@dataclass(frozen=True)
class OracleGraph:
    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph:
        if inputs.series_graph is None:
            raise RCAInputError("run-oracle needs the true series graph (synthetic data only)")
        known = graph_matrix(nodes, inputs.series_graph)
        return CausalGraph(tuple(nodes), known + topology_matrix(nodes, None))
