"""``run``: RUN (Lin et al., AAAI'24) done right, and its ablations.

The pipeline, stage by stage (each a pure function or a small object, no I/O):

1. **detect** (:mod:`rca.detect.robust`): impute short gaps on each side of the onset, drop
   series that are empty or constant on a side (reported), robust z-scores against the pre-onset
   rows with floors on the spread, the sustained anomaly strength of every series and the first
   row it changed (precedence).
2. **causal graph**: by default a neural Granger graph (:mod:`rca.causal.neural_granger`)
   learned from the fault-free history given to ``fit`` plus the window's pre-onset rows, with
   the call graph (when known) as a prior that makes its edges cheaper. Ablations swap the graph:
   ``none``, ``random`` (same density as the learned one), ``topology`` (call graph + services
   only), ``oracle`` (a known series graph, e.g. the synthetic generator's).
3. **rank** (:mod:`rca.rank.anomaly_walk`): an anomaly-aware walk from symptoms back to causes
   on that graph, discounting causes that changed after their effects; a service's score is the
   walk's share of its series, the statistics of one distribution (p50, p90, p99, mean) counted
   once (:func:`rca.rank.peer_attribution.service_shares`).

What differs from the public RUN code (``../shared/reference/run-method.md`` §9, §11): one
batched model with N x N input gates and an L1 penalty instead of one model per metric; edges
kept by a held-out permutation test; no self-loops; the walk goes effect -> cause, personalized
by anomaly scores, and never into healthy causes; an explicit onset; seeded; any device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal, Self

import networkx as nx
import numpy as np
import pandas as pd

from rca.causal.call_graph import from_service_graph_series
from rca.causal.neural_granger import LearnedGraph, NeuralGranger, NeuralGrangerConfig
from rca.causal.topology import graph_matrix, random_like, to_networkx, topology_matrix
from rca.detect.robust import as_unit_interval, gather_evidence, impute_gaps, robust_spread
from rca.methods.base import RCAMethod
from rca.rank.anomaly_walk import anomaly_walk
from rca.rank.peer_attribution import attributed_services, service_shares
from rca.types import Alert, Evidence, RankedCause, RCAResult
from rca.window import Window

GraphSource = Literal["learned", "none", "random", "topology", "oracle"]


@dataclass(frozen=True)
class RUNConfig:
    graph: GraphSource = "learned"
    # Whether a call graph given to ``fit`` is used (as the learner's prior and in the walk).
    use_call_graph: bool = True
    relative_floor: float = 0.05
    persist: int = 2
    change_threshold: float = 4.0
    lookback_steps: int = 2
    max_gap_steps: int = 3
    # Strength (robust z) below the offset counts as healthy; above it, a = 1 - exp(-excess/scale).
    anomaly_offset: float = 3.0
    anomaly_scale: float = 25.0
    damping: float = 0.85
    precedence_steps: float = 2.0
    # How anomalous a node must be to hold the walk's mass (see rca.rank.anomaly_walk).
    hold_kappa: float = 0.05
    granger: NeuralGrangerConfig = field(default_factory=NeuralGrangerConfig)
    seed: int = 0


FAST_GRANGER = NeuralGrangerConfig(epochs=12, max_samples=1500)


def standardized(frame: pd.DataFrame, relative_floor: float, max_gap_steps: int) -> np.ndarray:
    """A segment scaled by its own robust center and spread (NaN stays NaN)."""
    filled = impute_gaps(frame, max_gap_steps)
    center, spread = robust_spread(filled, relative_floor)
    return ((filled - center) / spread).clip(-50, 50).to_numpy(dtype=np.float32)


class RUN(RCAMethod):
    """The ``run`` method; ``config.graph`` selects the graph (the ablations).

    Examples
    --------
    >>> from rca.datasets.synthetic import Synthetic, SyntheticConfig
    >>> case = Synthetic(SyntheticConfig(n_cases=1, seed=3)).load("0000")
    >>> method = RUN(RUNConfig(graph="topology")).fit(case.history, call_graph=case.call_graph)
    >>> method.rank(case.window, case.onset).services()[0][0] == case.truth.service
    True
    """

    name = "run"

    def __init__(self, config: RUNConfig | None = None, name: str = "run") -> None:
        self.config = config or RUNConfig()
        self.name = name  # type: ignore[misc]
        self.history: Window | None = None
        self.call_graph: nx.DiGraph | None = None
        self.series_graph: nx.DiGraph | None = None

    def fit(
        self,
        history: Window | None,
        call_graph: nx.DiGraph | None = None,
        series_graph: nx.DiGraph | None = None,
    ) -> Self:
        self.history = history
        self.call_graph = call_graph
        self.series_graph = series_graph
        return self

    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult:
        cfg = self.config
        timings: dict[str, float] = {}
        started = time.perf_counter()
        evidence = gather_evidence(
            window,
            onset,
            max_gap_steps=cfg.max_gap_steps,
            relative_floor=cfg.relative_floor,
            persist=cfg.persist,
            threshold=cfg.change_threshold,
            lookback_steps=cfg.lookback_steps,
        )
        names = [str(c) for c in evidence.strength.index]
        timings["detect"] = time.perf_counter() - started

        started = time.perf_counter()
        weights, learned_part, learned = self._graph(window, onset, names, self._calls(window))
        timings["graph"] = time.perf_counter() - started

        started = time.perf_counter()
        strength = evidence.strength.to_numpy(dtype=float)
        anomaly = as_unit_interval(
            pd.Series(np.clip(strength - cfg.anomaly_offset, 0.0, None)), cfg.anomaly_scale
        ).to_numpy()
        step = window.index[1] - window.index[0]
        change = ((evidence.changed_at - onset) / step).astype(float).to_numpy()
        change = np.where(np.isnan(change), np.inf, change)
        share = anomaly_walk(
            weights,
            anomaly,
            change,
            damping=cfg.damping,
            precedence_steps=cfg.precedence_steps,
            kappa=cfg.hold_kappa,
        )
        timings["rank"] = time.perf_counter() - started

        owners = attributed_services(names, anomaly)
        services = service_shares(names, owners, share)
        # Ties in the walk (e.g. nothing anomalous) fall back to the strongest series.
        tiebreak = evidence.strength.groupby(owners).max()
        order = sorted(services.index, key=lambda s: (-services[s], -tiebreak[s], s))
        causes = self._causes(
            names, owners, order, share, evidence.strength, evidence.changed_at, weights
        )
        result = RCAResult(
            self.name,
            causes,
            graph=to_networkx(names, weights, learned_part),
            timings_seconds=timings,
            dropped=evidence.dropped,
            service_scores={s: float(services[s]) for s in order},
        )
        if learned is not None:
            result.timings_seconds["granger_epochs"] = float(learned.epochs)
        return result

    def _calls(self, window: Window) -> nx.DiGraph | None:
        """The call graph given to ``fit`` joined with the edges that service-graph metrics in
        the window name; ``None`` when neither exists or the config ignores call graphs."""
        if not self.config.use_call_graph:
            return None
        found = from_service_graph_series(map(str, window.columns))
        if self.call_graph is None:
            return found if found.number_of_edges() else None
        return nx.compose(self.call_graph, found)

    def _graph(
        self, window: Window, onset: pd.Timestamp, names: list[str], calls: nx.DiGraph | None
    ) -> tuple[np.ndarray, np.ndarray | None, LearnedGraph | None]:
        """The walk's weights, the learned (or random) part of them, and the learner's report."""
        cfg = self.config
        n = len(names)
        if cfg.graph == "none":
            return np.zeros((n, n)), None, None
        if cfg.graph == "topology":
            return topology_matrix(names, calls), None, None
        if cfg.graph == "oracle":
            if self.series_graph is None:
                raise ValueError("run-oracle needs the true series graph (synthetic data only)")
            known = graph_matrix(names, self.series_graph)
            return known + topology_matrix(names, None), None, None
        learned = self._learn(window, onset, names, calls)
        part = learned.weights / np.maximum(learned.weights.max(axis=0, keepdims=True), 1e-12)
        # What is known without learning (same-service edges, the call graph) stays in the
        # graph; learned edges add to it and weigh its edges.
        weights = part + topology_matrix(names, calls)
        if cfg.graph == "random":
            # The ablation replaces the whole graph by a random one with as many edges.
            weights = random_like(weights, np.random.default_rng(cfg.seed))
            return weights, weights, learned
        return weights, part, learned

    def _learn(
        self, window: Window, onset: pd.Timestamp, names: list[str], calls: nx.DiGraph | None
    ) -> LearnedGraph:
        cfg = self.config
        segments = []
        if self.history is not None:
            history = self.history.reindex(columns=names)
            segments.append(standardized(history, cfg.relative_floor, cfg.max_gap_steps))
        before = window.loc[window.index < onset, names]
        segments.append(standardized(before, cfg.relative_floor, cfg.max_gap_steps))
        prior = topology_matrix(names, calls) if calls is not None else None
        granger = replace(cfg.granger, seed=cfg.seed)
        return NeuralGranger(granger).fit(segments, prior)

    @staticmethod
    def _causes(
        names: list[str],
        owners: list[str],
        service_order: list[str],
        share: np.ndarray,
        strength: pd.Series,
        changed_at: pd.Series,
        weights: np.ndarray,
    ) -> list[RankedCause]:
        """Series grouped by the rank of the service they count for (``owners``), the most
        anomalous first within a service; ``score`` is that order (higher first), the walk share
        is in the evidence."""
        position = {service: k for k, service in enumerate(service_order)}
        order = sorted(
            range(len(names)),
            key=lambda i: (position[owners[i]], -strength.iloc[i], names[i]),
        )
        causes = []
        for rank, i in enumerate(order):
            effects = np.argsort(-weights[i])[:3]
            edges = tuple(
                (names[i], names[j], float(weights[i, j])) for j in effects if weights[i, j] > 0
            )
            onset = changed_at.iloc[i]
            causes.append(
                RankedCause(
                    series=names[i],
                    service=owners[i],
                    score=float(len(order) - rank),
                    evidence=Evidence(
                        anomaly=float(strength.iloc[i]),
                        onset=None if pd.isna(onset) else onset,
                        walk_share=float(share[i]),
                        edges=edges,
                    ),
                )
            )
        return causes
