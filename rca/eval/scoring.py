"""AC@k and Avg@k with RCAEval's conventions, ties counted pessimistically.

Service level: each ranked series maps to its service, a ``-db`` suffix is stripped
(``carts-db`` counts as ``carts``), and services are de-duplicated in order (a service's score is
its best series' score). Metric level: the same over ``(service, metric)`` pairs, where the
truth names its indicator metrics. Ties: a candidate tied with the truth is counted as ranked
ahead of it, so a method that gives every candidate the same score earns no credit for order.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from rca.datasets.base import Truth
from rca.types import RCAResult, parse_series_name


def normalize_service(service: str) -> str:
    """RCAEval's convention: a database counts as its service (``carts-db`` -> ``carts``)."""
    return service.removesuffix("-db")


def pessimistic_rank(
    scored: Iterable[tuple[Hashable, float]], targets: set[Hashable] | frozenset[Hashable]
) -> int | None:
    """1-based position of the best-scored target when every tie is broken against it.

    ``scored`` holds unique candidates and their scores (higher is better; NaN is worst).
    Returns ``None`` when no target is among the candidates.
    """
    items = [(key, -math.inf if math.isnan(score) else score) for key, score in scored]
    target_scores = [score for key, score in items if key in targets]
    if not target_scores:
        return None
    best = max(target_scores)
    ahead = sum(1 for key, score in items if score > best or (score == best and key not in targets))
    return ahead + 1


def _best_by(result: RCAResult, key_of) -> dict[Hashable, float]:
    best: dict[Hashable, float] = {}
    for cause in result.causes:
        key = key_of(cause)
        if key not in best or cause.score > best[key]:
            best[key] = cause.score
    return best


@dataclass(frozen=True)
class CaseRanks:
    """Where the truth landed in one result (``None``: not ranked at all)."""

    service: int | None
    metric: int | None  # None also when the truth names no metric


def rank_truth(result: RCAResult, truth: Truth) -> CaseRanks:
    services: dict[Hashable, float] = {}
    for service, score in result.services():
        key = normalize_service(service)
        services[key] = max(services.get(key, -math.inf), score)
    service_rank = pessimistic_rank(services.items(), {normalize_service(truth.service)})
    metric_rank = None
    if truth.metrics:
        pairs = _best_by(
            result,
            lambda c: (normalize_service(c.service), parse_series_name(c.series).metric),
        )
        targets = {(normalize_service(truth.service), m) for m in truth.metrics}
        metric_rank = pessimistic_rank(pairs.items(), targets)
    return CaseRanks(service_rank, metric_rank)


def accuracy_at(ranks: Sequence[int | None], k: int) -> float:
    """AC@k: share of cases whose truth is within the first ``k``."""
    if not ranks:
        return math.nan
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_rank(ranks: Sequence[int | None], candidates: Sequence[int]) -> float:
    """Mean position of the truth; an unranked truth counts as its case's number of candidates
    + 1 (behind every service the method could have named)."""
    if not ranks:
        return math.nan
    placed = [c + 1 if r is None else r for r, c in zip(ranks, candidates, strict=True)]
    return sum(placed) / len(placed)


def average_accuracy(ranks: Sequence[int | None], k: int = 5) -> float:
    """Avg@k: mean of AC@1 .. AC@k."""
    return sum(accuracy_at(ranks, i) for i in range(1, k + 1)) / k
