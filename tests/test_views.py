"""Observability views on small toy cases: what each keeps, and that the input is left alone."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from rca.datasets.base import Case, Truth
from rca.errors import RCAInputError
from rca.eval.views import (
    apply_views,
    case_seed,
    coarse,
    drop_call_edges,
    is_latency,
    latency_only,
    no_call_graph,
    one_latency,
    parse_views,
    shift_onset,
    truth_observed,
)
from rca.types import Alert, parse_series_name

FRONT_P90 = "front:http.server.request.duration:p90{http.route=/}"
COLUMNS = (
    FRONT_P90,
    "front:http.server.request.duration:p50{http.route=/}",
    "front:http.server.request.duration:rate{http.route=/}",
    "front:container.cpu.utilization",
    "cart:rpc.client.duration:p90",
    "cart:rpc.server.duration:p99",
    "cart:rpc.server.duration:p50{rpc.peer=front}",
    "cart:container.memory.usage",
    "db:container.cpu.utilization",
    "db:traces_service_graph_request_total:rate{client=cart,server=db}",
    "llm:gen_ai.server.time_to_first_token:p90",
    "llm:vllm.num_requests_waiting",
    "shop:latency:mean",
    "shop:requests:sum",
)


def toy_case(rows: int = 120, step_seconds: int = 10, onset_row: int = 80) -> Case:
    rng = np.random.default_rng(7)
    index = pd.date_range("2026-03-01", periods=rows, freq=f"{step_seconds}s", tz="UTC")
    window = pd.DataFrame(rng.normal(10, 1, (rows, len(COLUMNS))), index=index, columns=COLUMNS)
    history = window.set_axis(index - rows * pd.Timedelta(seconds=step_seconds))
    calls = nx.DiGraph([("front", "cart"), ("cart", "db"), ("front", "llm"), ("llm", "db")])
    truth_graph = nx.DiGraph([(COLUMNS[3], FRONT_P90), (COLUMNS[7], COLUMNS[4])])
    return Case(
        "toy",
        "case-1",
        window,
        index[onset_row],
        Truth("db", "cpu"),
        history=history,
        call_graph=calls,
        true_graph=truth_graph,
        alert=Alert(("front",), (FRONT_P90,)),
    )


def test_latency_only_keeps_durations_not_their_counts():
    case = toy_case()
    viewed = latency_only(case)
    assert list(viewed.window.columns) == [
        FRONT_P90,
        "front:http.server.request.duration:p50{http.route=/}",
        "cart:rpc.client.duration:p90",
        "cart:rpc.server.duration:p99",
        "cart:rpc.server.duration:p50{rpc.peer=front}",
        "llm:gen_ai.server.time_to_first_token:p90",
        "shop:latency:mean",
    ]
    assert list(viewed.history.columns) == list(viewed.window.columns)
    assert set(viewed.true_graph.nodes) == {FRONT_P90, "cart:rpc.client.duration:p90"}
    assert viewed.alert == case.alert
    assert case.window.shape[1] == len(COLUMNS)  # the input case is left alone
    assert not truth_observed(viewed) and truth_observed(case)  # db has no latency series


def test_is_latency_reads_common_names():
    def latency(name: str) -> bool:
        return is_latency(parse_series_name(name))

    assert latency("a:http_request_duration_seconds:p99")
    assert latency("a:vllm%3Ae2e_request_latency_seconds:p90")
    assert latency("a:gen_ai.server.time_per_output_token:mean")
    assert latency("a:ros2.message.age:p90")
    assert not latency("a:http.server.request.duration:rate")
    assert not latency("a:http.server.active_requests")


def test_one_latency_prefers_a_servers_p90_and_a_complete_series():
    case = toy_case()
    viewed = one_latency(case)
    assert list(viewed.window.columns) == [
        FRONT_P90,
        "cart:rpc.server.duration:p99",
        "llm:gen_ai.server.time_to_first_token:p90",
        "shop:latency:mean",
    ]
    gappy = toy_case()
    gappy.window.iloc[5:, 0] = np.nan  # the p90 is mostly missing: the p50 stands in
    assert "front:http.server.request.duration:p50{http.route=/}" in one_latency(gappy).window


def test_no_call_graph_drops_the_graph_and_tracing_only_series():
    viewed = no_call_graph(toy_case())
    assert viewed.call_graph is None
    assert "cart:rpc.server.duration:p50{rpc.peer=front}" not in viewed.window
    assert not any("traces_service_graph" in c for c in viewed.window.columns)
    assert viewed.window.shape[1] == len(COLUMNS) - 2


def test_coarse_averages_sums_totals_and_rounds_the_onset_into_its_bin():
    case = toy_case()
    case.onset = case.window.index[80] + pd.Timedelta(seconds=5)  # between two rows
    viewed = coarse(case, 60.0)
    assert len(viewed.window) == 20 and viewed.window.index[1] - viewed.window.index[0] == (
        pd.Timedelta(seconds=60)
    )
    first = case.window.iloc[:6]
    assert viewed.window[FRONT_P90].iloc[0] == pytest.approx(first[FRONT_P90].mean())
    assert viewed.window["shop:requests:sum"].iloc[0] == pytest.approx(
        first["shop:requests:sum"].sum()
    )
    # Row 80 is in the bin of rows 78-83, which starts at row 78.
    assert viewed.onset == case.window.index[78]
    assert viewed.history.index[-1] + pd.Timedelta(seconds=60) == viewed.window.index[0]
    assert coarse(case, 5.0).window is case.window  # not coarser: unchanged
    early = toy_case(onset_row=2)
    assert coarse(early, 60.0).onset == early.window.index[6]  # never on the first bin
    with pytest.raises(RCAInputError, match="no row at or after"):
        coarse(toy_case(rows=12, onset_row=11), 600.0)


def test_call_graph_drop_is_seeded_by_the_case_and_drops_edge_series():
    case = toy_case()
    seed = case_seed(0, case.case_id, "call-graph-drop")
    viewed = drop_call_edges(case, 0.5, seed)
    assert viewed.call_graph.number_of_edges() == 2
    assert set(viewed.call_graph.nodes) == set(case.call_graph.nodes)
    assert case.call_graph.number_of_edges() == 4
    again = drop_call_edges(case, 0.5, seed)
    assert set(again.call_graph.edges) == set(viewed.call_graph.edges)
    removed = set(case.call_graph.edges) - set(viewed.call_graph.edges)
    edge_series = "cart:rpc.server.duration:p50{rpc.peer=front}"
    assert (edge_series in viewed.window) == (("front", "cart") not in removed)
    # Across cases the dropped edges differ (one case id cannot decide them all).
    dropped_sets = {
        frozenset(drop_call_edges(case, 0.5, case_seed(0, f"c{i}")).call_graph.edges)
        for i in range(20)
    }
    assert len(dropped_sets) > 1


def test_views_parse_compose_and_fail_clearly():
    views = parse_views(["no-call-graph,latency-only", "coarse:1m"])
    assert [v.spec for v in views] == ["no-call-graph", "latency-only", "coarse:1m"]
    viewed = apply_views(toy_case(), views, seed=0)
    assert viewed.call_graph is None and len(viewed.window) == 20
    assert all(is_latency(parse_series_name(c)) for c in viewed.window.columns)
    assert "rpc.peer" not in "".join(viewed.window.columns)
    assert len(viewed.notes) == 3
    for bad in ("nope", "coarse", "coarse:-5s", "call-graph-drop:2", "latency-only:1"):
        with pytest.raises(RCAInputError, match="view"):
            parse_views([bad])


def test_shift_onset_moves_by_steps_and_stays_inside():
    window = toy_case().window
    onset = window.index[80]
    assert shift_onset(window, onset, -2) == window.index[78]
    assert shift_onset(window, onset, 3) == window.index[83]
    assert shift_onset(window, onset, -500) == window.index[1]
    assert shift_onset(window, onset, 500) == window.index[-1]


def test_case_seed_is_stable_and_differs_per_case():
    assert case_seed(0, "a") == case_seed(0, "a")
    assert len({case_seed(0, f"{i}") for i in range(50)}) == 50
    assert case_seed(0, "a") != case_seed(1, "a")
