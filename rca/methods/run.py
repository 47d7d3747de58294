"""``run``: RUN (Lin et al., AAAI'24) done right, and its ablations.

A :class:`rca.methods.pipeline.Pipeline` of three stages (each a small object, no I/O):

1. **detect** (:class:`rca.detect.robust.RobustDetector`): impute short gaps on each side of
   the onset, drop series that are empty or constant on a side (reported), robust z-scores
   against the pre-onset rows with floors on the spread, the sustained anomaly strength of
   every series and the first row it changed (precedence).
2. **causal graph** (:mod:`rca.causal.sources`): by default a neural Granger graph learned
   from the fault-free history given to ``fit`` plus the window's pre-onset rows, with the call
   graph (when known) as a prior that makes its edges cheaper. Ablations swap the graph source:
   none, random (as many edges as the learned one), the call graph and services only, the true
   series graph (synthetic data).
3. **rank** (:class:`rca.rank.walk_ranker.AnomalyWalkRanker`): an anomaly-aware walk from
   symptoms back to causes on that graph, discounting causes that changed after their
   effects; a service's score is the walk's share of its series, the statistics of one
   distribution (p50, p90, p99, mean) counted once.

What differs from the public RUN code (``../shared/reference/run-method.md`` §9, §11): one
batched model with N x N input gates and an L1 penalty instead of one model per metric; edges
kept by a held-out permutation test; no self-loops; the walk goes effect -> cause, personalized
by anomaly scores, and never into healthy causes; an explicit onset; seeded; any device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rca.causal.base import GraphSource
from rca.causal.neural_granger import NeuralGrangerConfig
from rca.causal.sources import LearnedGraph
from rca.detect.robust import RobustDetector
from rca.methods.pipeline import Pipeline
from rca.rank.walk_ranker import AnomalyWalkRanker


@dataclass(frozen=True)
class RUNConfig:
    """The constants of every stage (chosen on synthetic data and tuning splits only)."""

    detector: RobustDetector = field(default_factory=RobustDetector)
    ranker: AnomalyWalkRanker = field(default_factory=AnomalyWalkRanker)
    granger: NeuralGrangerConfig = field(default_factory=NeuralGrangerConfig)
    seed: int = 0

    def learned_graph(self) -> LearnedGraph:
        return LearnedGraph(
            self.granger,
            relative_floor=self.detector.relative_floor,
            max_gap_steps=self.detector.max_gap_steps,
            seed=self.seed,
        )


FAST_GRANGER = NeuralGrangerConfig(epochs=12, max_samples=1500)


def compose_run(
    name: str = "run",
    config: RUNConfig | None = None,
    graph: GraphSource | None = None,
    *,
    use_call_graph: bool = True,
) -> Pipeline:
    """``run`` with the given graph source (default: the learned graph).

    Examples
    --------
    >>> from rca.causal.sources import CallGraph
    >>> from rca.datasets.synthetic import Synthetic, SyntheticConfig
    >>> case = Synthetic(SyntheticConfig(n_cases=1, seed=3)).load("0000")
    >>> method = compose_run("run-topology", graph=CallGraph())
    >>> method = method.fit(case.history, call_graph=case.call_graph)
    >>> method.rank(case.window, case.onset).services()[0][0] == case.truth.service
    True
    """
    config = config or RUNConfig()
    source = graph if graph is not None else config.learned_graph()
    return Pipeline(name, config.detector, source, config.ranker, use_call_graph=use_call_graph)
