"""An RCA method composed of stages: detect -> causal graph -> rank (no I/O).

Each stage is a small protocol (:class:`rca.detect.base.Detector`,
:class:`rca.causal.base.GraphSource`, :class:`rca.rank.base.Ranker`); ``run`` and its ablations
are compositions of them, registered by name in :mod:`rca.methods`.
"""

from __future__ import annotations

import time
from typing import Self

import networkx as nx
import pandas as pd

from rca.causal.base import GraphInputs, GraphSource
from rca.causal.call_graph import from_service_graph_series
from rca.detect.base import Detector
from rca.methods.base import RCAMethod
from rca.rank.base import Ranker
from rca.types import Alert, CausalGraph, RCAResult
from rca.window import Window


class Pipeline(RCAMethod):
    """``detector`` -> ``graph_source`` -> ``ranker``. ``use_call_graph``: whether the call
    graph (given to ``fit``, or named by service-graph series in the window) reaches the graph
    source; without it the source sees services but no calls."""

    def __init__(
        self,
        name: str,
        detector: Detector,
        graph_source: GraphSource,
        ranker: Ranker,
        *,
        use_call_graph: bool = True,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.detector = detector
        self.graph_source = graph_source
        self.ranker = ranker
        self.use_call_graph = use_call_graph
        self.history: Window | None = None
        self.call_graph: nx.DiGraph | None = None
        self.series_graph: nx.DiGraph | None = None
        self.learned_graph: CausalGraph | None = None

    def fit(
        self,
        history: Window | None,
        call_graph: nx.DiGraph | None = None,
        series_graph: nx.DiGraph | None = None,
        learned_graph: CausalGraph | None = None,
    ) -> Self:
        self.history = history
        self.call_graph = call_graph
        self.series_graph = series_graph
        self.learned_graph = learned_graph
        return self

    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        scores = self.detector.score(window, onset)
        timings["detect"] = time.perf_counter() - started

        started = time.perf_counter()
        inputs = GraphInputs(
            self.history, self._calls(window), self.series_graph, self.learned_graph
        )
        graph = self.graph_source.graph(window, onset, scores.names, inputs)
        timings["graph"] = time.perf_counter() - started

        started = time.perf_counter()
        symptoms = frozenset(alert.services) if alert is not None else frozenset()
        step = window.index[1] - window.index[0]
        ranking = self.ranker.rank(graph, scores, onset, step, symptoms)
        timings["rank"] = time.perf_counter() - started

        return RCAResult(
            self.name,
            ranking.causes,
            graph=graph,
            timings_seconds=timings,
            dropped=tuple(scores.dropped),
            service_scores=ranking.service_scores,
            confidence=ranking.confidence,
        )

    def _calls(self, window: Window) -> nx.DiGraph | None:
        """The call graph given to ``fit`` joined with the edges that service-graph metrics in
        the window name; ``None`` when neither exists or the composition ignores call graphs."""
        if not self.use_call_graph:
            return None
        found = from_service_graph_series(map(str, window.columns))
        if self.call_graph is None:
            return found if found.number_of_edges() else None
        return nx.compose(self.call_graph, found)
