import math

import pytest

from rca.datasets.base import Truth
from rca.eval.scoring import (
    accuracy_at,
    average_accuracy,
    normalize_service,
    pessimistic_rank,
    rank_truth,
)
from rca.types import RankedCause, RCAResult, service_of


def result_of(*scored: tuple[str, float]) -> RCAResult:
    return RCAResult("hand", [RankedCause(s, service_of(s), v) for s, v in scored])


def test_pessimistic_rank_counts_ties_against_the_target():
    scored = [("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", 2.0), ("e", 1.0)]
    assert pessimistic_rank(scored, {"a"}) == 1
    assert pessimistic_rank(scored, {"c"}) == 4  # tied with b and d: worst of positions 2..4
    assert pessimistic_rank(scored, {"e"}) == 5
    assert pessimistic_rank(scored, {"zz"}) is None


def test_all_equal_scores_give_the_last_position():
    scored = [(name, 0.0) for name in "abcdef"]
    assert pessimistic_rank(scored, {"a"}) == 6


def test_nan_scores_rank_last():
    assert pessimistic_rank([("a", math.nan), ("b", 0.0)], {"a"}) == 2


def test_several_targets_use_the_best_and_do_not_tie_with_each_other():
    scored = [("x", 5.0), ("t1", 4.0), ("t2", 4.0), ("y", 4.0)]
    assert pessimistic_rank(scored, {"t1", "t2"}) == 3


def test_service_level_strips_db_and_dedupes_in_order():
    result = result_of(
        ("carts-db:container.memory.usage", 9.0),
        ("orders:container.cpu.utilization", 8.0),
        ("carts:container.cpu.utilization", 1.0),
    )
    assert normalize_service("carts-db") == "carts"
    assert rank_truth(result, Truth("carts")).service == 1
    assert rank_truth(result, Truth("orders")).service == 2
    assert rank_truth(result, Truth("payment")).service is None


def test_service_tie_is_pessimistic():
    result = result_of(("a:cpu", 1.0), ("b:cpu", 1.0), ("c:cpu", 0.5))
    assert rank_truth(result, Truth("a")).service == 2
    assert rank_truth(result, Truth("c")).service == 3


def test_metric_level_needs_the_right_metric_of_the_right_service():
    result = result_of(
        ("carts:http.server.request.duration:p90", 9.0),
        ("orders:container.cpu.utilization", 8.0),
        ("carts:container.cpu.utilization", 7.0),
    )
    truth = Truth("carts", "cpu", frozenset({"container.cpu.utilization"}))
    ranks = rank_truth(result, truth)
    assert ranks.service == 1
    assert ranks.metric == 3
    assert rank_truth(result, Truth("carts")).metric is None


def test_accuracy_and_average_on_hand_made_ranks():
    ranks = [1, 2, 3, None, 6]
    assert accuracy_at(ranks, 1) == pytest.approx(0.2)
    assert accuracy_at(ranks, 3) == pytest.approx(0.6)
    # AC@1..5 = 0.2, 0.4, 0.6, 0.6, 0.6
    assert average_accuracy(ranks) == pytest.approx(0.48)
    assert math.isnan(accuracy_at([], 1))
