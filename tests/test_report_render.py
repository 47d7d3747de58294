"""The report's verdict, units, service-graph layout and series choice, on simulated incidents
of the demo stacks, and the page as headless Chromium renders it."""

from __future__ import annotations

import html
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from rca.datasets import open_dataset
from rca.datasets.base import Case
from rca.methods import make_method
from rca.report import render_report
from rca.report.figures import graph_figure, graph_layout, pick_panels
from rca.report.layout import Box, GraphLayout, layered_layout, overlapping, service_graph
from rca.report.units import key_of, unit_of
from rca.report.verdict import verdict, when_text
from rca.types import Alert, CausalGraph, RCAResult, series_name


def _analysed(spec: str, case_id: str) -> tuple[Case, RCAResult]:
    case = open_dataset(spec, None, seed=0).load(case_id)
    method = make_method("run-topology", seed=0)
    method.fit(case.history, call_graph=case.call_graph)
    return case, method.rank(case.window, case.onset, alert=case.alert)


@pytest.fixture(scope="module")
def sockshop() -> tuple[Case, RCAResult]:
    """A 14-service Sock Shop incident: a CPU hog at session-db, front-end's latency SLO
    alerting."""
    case, result = _analysed("sim:sockshop", "0022")
    assert len(result.services()) == 14 and case.alert is not None
    return case, result


@pytest.fixture(scope="module")
def large() -> tuple[Case, RCAResult]:
    """A 45-service incident (sim:large, Train Ticket's scale)."""
    return _analysed("sim:large", "0001")


@pytest.mark.parametrize(
    ("metric", "stat", "value", "shown"),
    [
        ("http.server.request.duration", "p90", 0.4123, "412 ms"),
        ("http.server.request.duration", "rate", 6.5, "6.5 /s"),
        ("process.cpu.utilization", None, 0.481, "48.1 %"),
        ("vllm.kv_cache_usage_perc", None, 0.25, "25 %"),
        ("process.memory.usage", None, 114_070_000.0, "109 MiB"),
        ("hw.gpu.memory.usage", None, 16e9, "15259 MiB"),
        ("hw.gpu.clock.sm", None, 1.98e9, "1980 MHz"),
        ("hw.power", None, 149.3, "149 W"),
        ("rabbitmq.message.current", None, 2.0, "2"),
    ],
)
def test_units_follow_opentelemetry_names(metric, stat, value, shown):
    assert unit_of(metric, stat).format(value) == shown


def test_verdict_names_cause_metric_change_time_and_confidence(sockshop):
    case, result = sockshop
    found = verdict(result, case.window, case.onset, alert=case.alert, truth=case.truth)
    first = found.causes[0]
    assert first.service == "session-db" == case.truth.service
    assert first.series == "session-db:process.cpu.utilization"
    # The medians before and after, in percent: a CPU hog takes about half a core.
    assert first.change is not None and first.change.direction == "rose"
    assert 0.005 < first.change.before < 0.03 and 0.4 < first.change.after < 0.6
    assert first.changed_seconds == 0.0
    assert re.fullmatch(
        r"session-db is the likely root cause: process\.cpu\.utilization rose "
        r"[\d.]+ % → [\d.]+ % \(robust z [\d.]+\), at the onset; high confidence \(0\.9\d\)\.",
        found.headline,
    ), found.headline
    assert found.title.startswith("Likely root cause: session-db")
    assert found.truth == "injected: cpu at session-db, ranked #1 of 14"
    assert found.symptom == case.alert.series[0]
    # Real scores, not rank ordinals: the service scores the method gave.
    assert [row.score for row in found.causes] == [s for _, s in result.services()[:5]]
    payload = json.loads(json.dumps(found.to_json()))
    assert payload["causes"][0]["change"]["unit"] == "%"
    assert payload["causes"][0]["edges"], "the walk's edges from the top cause"


def test_verdict_says_plainly_when_nothing_is_anomalous(rng):
    index = pd.date_range("2026-01-01", periods=120, freq="5s", tz="UTC")
    window = pd.DataFrame(
        {
            series_name(f"svc{i}", "process.cpu.utilization"): rng.normal(0.2, 0.01, 120)
            for i in range(4)
        },
        index=index,
    )
    result = make_method("run-topology").rank(window, index[90])
    found = verdict(result, window, index[90])
    assert found.confidence_text == "low confidence: nothing clearly anomalous"
    assert found.headline.startswith(f"{found.causes[0].service} is only the first suspect: ")
    assert found.headline.endswith("; low confidence: nothing clearly anomalous.")
    assert found.title.startswith("First suspect: ")


def test_the_injected_service_gets_an_evidence_row_wherever_it_ranked(sockshop):
    case, result = sockshop
    last = result.services()[-1][0]
    truth = type(case.truth)(last, "cpu")
    found = verdict(result, case.window, case.onset, truth=truth, top=3)
    assert [row.injected for row in found.causes] == [False, False, False, True]
    assert found.causes[-1].rank == 14 and "ranked #14 of 14" in found.truth


def _random_services(n: int, rng: np.random.Generator) -> CausalGraph:
    """A learned-looking series graph over ``n`` services with long, prefix-sharing names,
    cycles and within-service edges."""
    names = [f"PetSite_AWS::ECS::Fargate-{'x' * int(rng.integers(0, 30))}{i}" for i in range(n)]
    series = [series_name(s, m) for s in names for m in ("process.cpu.utilization", "db.q")]
    weights = np.zeros((len(series), len(series)))
    for _ in range(3 * n):
        u, v = rng.choice(len(series), size=2, replace=False)
        weights[u, v] = float(rng.uniform(0.1, 1.0))
    return CausalGraph(tuple(series), weights)


@pytest.mark.parametrize("n", [14, 40])
def test_layout_boxes_never_overlap_and_edges_run_left_to_right_between_boxes(n, rng):
    services = service_graph(_random_services(n, rng))
    assert services.number_of_nodes() == n
    order = sorted(services.nodes)
    layout = layered_layout(services, {s: s for s in services.nodes}, order)
    assert set(layout.boxes) == set(services.nodes)
    assert overlapping(layout.boxes) == []
    assert layout.backward, "the random graph has cycles"
    dag = nx.DiGraph((v, u) if (u, v) in layout.backward else (u, v) for u, v, _ in layout.edges)
    assert nx.is_directed_acyclic_graph(dag)
    for u, v, _ in layout.edges:
        a, b = layout.boxes[u], layout.boxes[v]
        assert (b.x1 <= a.x0) if (u, v) in layout.backward else (a.x1 <= b.x0), (u, v)
    assert _boxes_crossed(layout) == []


def _boxes_crossed(layout: GraphLayout) -> list[tuple[str, str, str]]:
    """``(cause, effect, service)`` for every edge that passes through the box of a service
    other than its ends, sampled along each leg."""
    crossed = []
    for u, v, _ in layout.edges:
        for (x0, y0), (x1, y1) in itertools.pairwise(layout.path(u, v)):
            for t in np.linspace(0, 1, 41):
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                crossed += [
                    (u, v, name)
                    for name, box in layout.boxes.items()
                    if name not in (u, v) and box.x0 < x < box.x1 and box.y0 < y < box.y1
                ]
    return sorted(set(crossed))


def test_overlap_check_finds_overlaps():
    boxes = {"a": Box(0, 0, 10, 10), "b": Box(9, 9, 20, 20), "c": Box(10, 0, 12, 5)}
    assert overlapping(boxes) == [("a", "b")]


@pytest.mark.parametrize("incident", ["sockshop", "large"])
def test_drawn_graph_labels_stay_in_their_boxes_and_apart(incident, request):
    """The check on the picture itself: every label as the Agg renderer draws it lies inside
    its box, no two drawn labels intersect, and no edge runs through a box."""
    case, result = request.getfixturevalue(incident)
    found = verdict(result, case.window, case.onset, alert=case.alert, truth=case.truth)
    layout = graph_layout(result, found)
    assert layout is not None and len(layout.boxes) == len(result.services())
    figure = graph_figure(result, found)
    renderer = FigureCanvasAgg(figure).get_renderer()
    ax = figure.axes[0]
    drawn: dict[str, Box] = {}
    for text in ax.texts:
        gid = text.get_gid() or ""
        if gid.startswith("label:"):
            service = gid.removeprefix("label:")
            drawn[service] = Box(*text.get_window_extent(renderer).extents)
            box = layout.boxes[service]
            (x0, y0), (x1, y1) = ax.transData.transform([(box.x0, box.y0), (box.x1, box.y1)])
            inside = drawn[service]
            assert x0 - 0.5 <= inside.x0 and inside.x1 <= x1 + 0.5, service
            assert y0 - 0.5 <= inside.y0 and inside.y1 <= y1 + 0.5, service
    assert set(drawn) == set(layout.boxes)
    assert overlapping(drawn) == []
    assert _boxes_crossed(layout) == []


def test_panels_span_services_and_metrics_with_the_alert_beside_the_top_cause(sockshop):
    case, result = sockshop
    panels = pick_panels(result, case.window, case.alert.series[0])
    assert panels[0] == ("session-db:process.cpu.utilization", "#1")
    assert panels[1] == (case.alert.series[0], "alert")
    keys = [key_of(series) for series, _ in panels]
    assert len({(k.service, k.metric) for k in keys}) == len(panels) == 6
    assert len({k.service for k in keys}) == 6


def test_page_shows_granger_epochs_as_a_count_and_the_onset_method(sockshop):
    case, result = sockshop
    result.graph.stats["granger_epochs"] = 40.0
    try:
        page = render_report(
            "c1", "REST query", result, case.window, case.onset, onset_method="given by the test"
        )
    finally:
        del result.graph.stats["granger_epochs"]
    assert "granger epochs 40 ·" in page and "granger_epochs 40 s" not in page
    assert "(given by the test)" in page and "alert: REST query" in page
    assert "<h1>Likely root cause: session-db" in page


_CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(_CHROMIUM is None, reason="headless Chromium not installed (Debian: chromium)")
def test_chromium_renders_the_verdict_and_a_readable_graph(sockshop, tmp_path: Path):
    case, result = sockshop
    alert = Alert(services=case.alert.services, series=case.alert.series)
    page = render_report(
        "sim-sockshop-0022",
        "REST query",
        result,
        case.window,
        case.onset,
        alert=alert,
        truth=case.truth,
        onset_method="given by the simulator",
    )
    path = tmp_path / "report.html"
    path.write_text(page)
    base = [
        str(_CHROMIUM),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2400",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = re.search(r'<p id="verdict"[^>]*>(.*?)</p>', dom.stdout, re.S)
    assert shown is not None, dom.stdout[:2000]
    assert shown.group(1).startswith("session-db is the likely root cause: process.cpu.util")
    assert "injected: cpu at session-db, ranked #1 of 14" in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [*base, "--hide-scrollbars", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # The graph picture was decoded and shown: its suspects' pink fill is on the screen.
    pixels = (imread(shot)[..., :3] * 255).round().astype(int)
    pink = np.all(np.abs(pixels - [0xF5, 0xB7, 0xB1]) <= 2, axis=-1)
    assert pink.sum() > 500
    layout = graph_layout(result, verdict(result, case.window, case.onset, alert=alert))
    assert layout is not None and overlapping(layout.boxes) == []


def test_services_without_an_edge_beside_a_chain_get_a_place():
    """Isolated services fill trailing columns; the ordering sweeps ask them for neighbours
    too (a KeyError from networkx failed every API report with an isolated service)."""
    graph = nx.DiGraph([("a", "b"), ("b", "c")])
    graph.add_nodes_from(f"lone{i}" for i in range(12))
    order = sorted(graph.nodes)
    layout = layered_layout(graph, {n: n for n in order}, order)
    assert not overlapping(layout.boxes)
    assert set(layout.boxes) == set(order)


def test_a_miss_is_explained_from_the_evidence_when_the_truth_is_not_first():
    """synthetic-hard 0108 (seed 0): a CPU hog at svc06 ranks second behind svc07, whose
    memory changed 20 s after svc06's CPU did."""
    case, result = _analysed("synthetic-hard", "0108")
    found = verdict(result, case.window, case.onset, truth=case.truth)
    miss = found.miss
    assert miss is not None and case.truth.service == "svc06"
    assert miss.injected is not None and miss.injected.rank == 2
    assert miss.first is not None and miss.injected_first is not None
    assert (miss.first.series, miss.first.rank) == ("svc07:container.memory.usage", 1)
    assert miss.injected_first.series == "svc06:container.cpu.utilization"
    assert miss.lead_seconds == -20.0
    assert miss.text() == (
        "Why not first: svc06 moved first: svc06 · container.cpu.utilization (#2), "
        f"{when_text(miss.injected_first.seconds)}, 20 s before svc07 · container.memory.usage "
        "(#1), the first change ranked above it. svc06's strongest series svc06 · "
        f"container.cpu.utilization is {miss.injected.anomaly:.3g} robust sigmas off normal, "
        f"above the ranker's anomaly offset 3; the walk left it {miss.injected.walk_share:.2g}; "
        "ranked #2 of 14."
    )
    payload = json.loads(json.dumps(found.to_json()))["miss"]
    assert payload["text"] == miss.text() and payload["lead_seconds"] == -20.0
    assert payload["first_moved"]["series"] == "svc07:container.memory.usage"
    page = render_report("c1", "test", result, case.window, case.onset, truth=case.truth)
    assert f'<p id="miss" class="truth">{html.escape(miss.text())}</p>' in page


def test_no_miss_paragraph_when_the_truth_is_first(sockshop):
    case, result = sockshop
    found = verdict(result, case.window, case.onset, alert=case.alert, truth=case.truth)
    assert found.causes[0].injected and found.miss is None
    assert found.to_json()["miss"] is None
    page = render_report("c1", "test", result, case.window, case.onset, truth=case.truth)
    assert 'id="truth"' in page and 'id="miss"' not in page
