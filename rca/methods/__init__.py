"""Every RCA method, registered by name for the CLI, the API and the benchmarks."""

from __future__ import annotations

from rca.methods.baro import BARO
from rca.methods.base import RCAMethod
from rca.methods.granger_pagerank import GrangerPageRank
from rca.methods.nsigma import NSigma
from rca.methods.random_rank import RandomRanker
from rca.registry import Registry

METHODS: Registry[RCAMethod] = Registry("method")


@METHODS.register("random", "seeded random order of series (RCAEval's dummy)")
def _random(seed: int = 0) -> RCAMethod:
    return RandomRanker(seed=seed)


@METHODS.register("nsigma", "mean/std z-score after vs before the onset")
def _nsigma(seed: int = 0) -> RCAMethod:
    return NSigma()


@METHODS.register("baro", "median/IQR robust score (BARO's RobustScorer, FSE'24)")
def _baro(seed: int = 0) -> RCAMethod:
    return BARO()


@METHODS.register("granger-pagerank", "linear Granger graph + plain PageRank (control)")
def _granger_pagerank(seed: int = 0) -> RCAMethod:
    return GrangerPageRank()


def make_method(name: str, seed: int = 0) -> RCAMethod:
    """A fresh instance of the registered method ``name``."""
    return METHODS.get(name).factory(seed=seed)


__all__ = ["METHODS", "RCAMethod", "make_method"]
