"""Every RCA method, registered by name: ``METHODS`` are those that work on live data (the API,
``rca serve``, ``rca analyze``, the demo), ``BENCH_METHODS`` the ablations and controls that only
make sense in a benchmark (a dummy, a random or true graph, a stage removed). ``rca bench``
runs both."""

from __future__ import annotations

from rca.causal.neural_granger import NeuralGrangerConfig
from rca.causal.sources import (
    CallGraph,
    NoGraph,
    OracleGraph,
    RandomGraph,
    RandomLearnedEdges,
)
from rca.methods.baro import BARO
from rca.methods.base import RCAMethod
from rca.methods.granger_pagerank import GrangerPageRank
from rca.methods.nsigma import NSigma
from rca.methods.random_rank import RandomRanker
from rca.methods.run import FAST_GRANGER, RUNConfig, compose_run
from rca.rank.walk_ranker import AnomalyWalkRanker
from rca.registry import Entry, Registry

METHODS: Registry[RCAMethod] = Registry("method")
BENCH_METHODS: Registry[RCAMethod] = Registry("bench method")


@BENCH_METHODS.register("random", "seeded random order of series (RCAEval's dummy)")
def _random(seed: int = 0) -> RCAMethod:
    return RandomRanker(seed=seed)


@METHODS.register("nsigma", "mean/std z-score after vs before the onset")
def _nsigma(seed: int = 0) -> RCAMethod:
    return NSigma()


@METHODS.register("baro", "median/IQR robust score (BARO's RobustScorer, FSE'24)")
def _baro(seed: int = 0) -> RCAMethod:
    return BARO()


@BENCH_METHODS.register("granger-pagerank", "linear Granger graph + plain PageRank (control)")
def _granger_pagerank(seed: int = 0) -> RCAMethod:
    return GrangerPageRank()


@METHODS.register("run", "RUN done right: neural Granger graph + anomaly-aware walk")
def _run(seed: int = 0) -> RCAMethod:
    return compose_run("run", RUNConfig(seed=seed))


@METHODS.register("run-fast", "run with a short training budget")
def _run_fast(seed: int = 0) -> RCAMethod:
    return compose_run("run-fast", RUNConfig(seed=seed, granger=FAST_GRANGER))


@BENCH_METHODS.register("run-nograph", "ablation: anomaly and precedence only, no graph")
def _run_nograph(seed: int = 0) -> RCAMethod:
    return compose_run("run-nograph", RUNConfig(seed=seed), NoGraph())


@BENCH_METHODS.register("run-noprior", "ablation: the learned graph without the call graph")
def _run_noprior(seed: int = 0) -> RCAMethod:
    return compose_run("run-noprior", RUNConfig(seed=seed), use_call_graph=False)


@BENCH_METHODS.register("run-randomgraph", "ablation: a random graph as dense as run's graph")
def _run_randomgraph(seed: int = 0) -> RCAMethod:
    config = RUNConfig(seed=seed)
    return compose_run("run-randomgraph", config, RandomGraph(config.learned_graph(), seed))


@BENCH_METHODS.register(
    "run-randomedges", "ablation: the call graph kept, as many random edges as run learned"
)
def _run_randomedges(seed: int = 0) -> RCAMethod:
    config = RUNConfig(seed=seed)
    return compose_run("run-randomedges", config, RandomLearnedEdges(config.learned_graph(), seed))


@METHODS.register("run-topology", "ablation: call graph and services only, no learning")
def _run_topology(seed: int = 0) -> RCAMethod:
    return compose_run("run-topology", RUNConfig(seed=seed), CallGraph())


@BENCH_METHODS.register("run-contrastive", "ablation: run with contrastive encoder pre-training")
def _run_contrastive(seed: int = 0) -> RCAMethod:
    granger = NeuralGrangerConfig(contrastive_pretraining=True)
    return compose_run("run-contrastive", RUNConfig(granger=granger, seed=seed))


@BENCH_METHODS.register(
    "run-symptoms", "run-topology whose walk also starts from the alert's services"
)
def _run_symptoms(seed: int = 0) -> RCAMethod:
    config = RUNConfig(seed=seed, ranker=AnomalyWalkRanker(symptom_start=1.0))
    return compose_run("run-symptoms", config, CallGraph())


@BENCH_METHODS.register("run-oracle", "ablation: the true series graph (synthetic data only)")
def _run_oracle(seed: int = 0) -> RCAMethod:
    return compose_run("run-oracle", RUNConfig(seed=seed), OracleGraph())


def method_entry(name: str) -> Entry[RCAMethod]:
    """The registered method ``name``, live or bench-only (``KeyError`` naming both lists)."""
    for registry in (METHODS, BENCH_METHODS):
        if name in registry:
            return registry.get(name)
    raise KeyError(
        f"unknown method {name!r}; live: {', '.join(METHODS.names())}; "
        f"bench only: {', '.join(BENCH_METHODS.names())}"
    )


def make_method(name: str, seed: int = 0) -> RCAMethod:
    """A fresh instance of the registered method ``name`` (live or bench-only)."""
    return method_entry(name).factory(seed=seed)


__all__ = ["METHODS", "RCAMethod", "make_method"]
