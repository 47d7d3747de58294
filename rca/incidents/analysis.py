"""One analysis: a method from the registry on one window, result as JSON-able data, plus
the report. Pure (no clock, no I/O): the worker pool runs it in a worker process or thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pandas as pd

from rca.methods import make_method
from rca.types import Alert, CausalGraph, RCAResult
from rca.window import Window

# How much of a result is kept: the ranking of services is short anyway; series and graph are
# cut to what a person (or Grafana's node graph) can read.
MAX_SERVICES = 200
MAX_CAUSES = 100
GRAPH_NODES = 30
GRAPH_EDGES = 200
TOP = 3


@dataclass(frozen=True)
class AnalysisJob:
    incident_id: str
    title: str
    method: str
    window: Window
    # None: found by the onset detector, before ``onset_not_after`` when that is set (an
    # alert's startsAt: its rule fired after the change).
    onset: pd.Timestamp | None
    history: Window | None = None
    call_graph: nx.DiGraph | None = None
    symptoms: tuple[str, ...] = ()
    seed: int = 0
    onset_not_after: pd.Timestamp | None = None
    # The newest graph learned from history in the background (CausalGraph.to_json), if any.
    learned_graph: dict[str, Any] | None = None


@dataclass(frozen=True)
class AnalysisOutcome:
    result: dict[str, Any]
    top: list[dict[str, Any]]
    timings: dict[str, float]
    report_html: str
    onset: pd.Timestamp


def find_onset(job: AnalysisJob) -> tuple[pd.Timestamp, str]:
    """The job's onset and how it was found: given, or the onset detector's estimate."""
    if job.onset is not None:
        return job.onset, "given"
    from rca.detect.onset import detect_onset

    bound = job.onset_not_after
    if bound is not None and not job.window.index[0] < bound <= job.window.index[-1]:
        bound = None  # the alert time is outside the window: search all of it
    estimate = detect_onset(job.window, not_after=bound, history=job.history)
    how = f"{estimate.method}, confidence {estimate.confidence:.2f}"
    if bound is not None:
        how += f", searched back from the alert at {bound.isoformat()}"
    return estimate.onset, how


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become ``None``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def result_json(
    result: RCAResult, window: Window, onset: pd.Timestamp, onset_method: str = "given"
) -> dict[str, Any]:
    """The stored form of a result: services best first (with their strongest series), the
    best series with evidence, the causal graph among the best series (cause -> effect), the
    dropped series and what the window was."""
    best_series: dict[str, Any] = {}
    for cause in result.causes:
        best_series.setdefault(cause.service, cause)
    services = []
    for rank, (service, score) in enumerate(result.services()[:MAX_SERVICES], start=1):
        cause = best_series.get(service)
        services.append(
            {
                "rank": rank,
                "service": service,
                "score": finite(score),
                "series": cause.series if cause else None,
                "anomaly": finite(cause.evidence.anomaly) if cause else None,
            }
        )
    causes = [
        {
            "rank": rank,
            "series": cause.series,
            "service": cause.service,
            "score": finite(cause.score),
            "anomaly": finite(cause.evidence.anomaly),
            "onset": _iso(cause.evidence.onset),
            "walk_share": finite(cause.evidence.walk_share),
        }
        for rank, cause in enumerate(result.causes[:MAX_CAUSES], start=1)
    ]
    nodes = [c["series"] for c in causes[:GRAPH_NODES]]
    edges: list[list[Any]] = []
    if result.graph is not None:
        keep = set(nodes)
        for edge in result.graph.edges():
            weight = finite(edge.weight)
            if edge.cause in keep and edge.effect in keep and edge.cause != edge.effect and weight:
                edges.append([edge.cause, edge.effect, weight])
        edges.sort(key=lambda e: (-e[2], e[0], e[1]))
        edges = edges[:GRAPH_EDGES]
    step = (window.index[1] - window.index[0]).total_seconds() if len(window.index) > 1 else None
    return {
        "method": result.method,
        "confidence": finite(result.confidence),
        "services": services,
        "causes": causes,
        "graph": {"nodes": nodes, "edges": edges, "has_graph": result.graph is not None},
        "dropped": list(result.dropped[:MAX_CAUSES]),
        "window": {
            "start": _iso(window.index[0]),
            "end": _iso(window.index[-1]),
            "onset": _iso(onset),
            "onset_method": onset_method,
            "rows": len(window.index),
            "series": len(window.columns),
            "step_seconds": step,
        },
    }


def analyse(job: AnalysisJob) -> AnalysisOutcome:
    """Fit the method on the history (when any) and the learned graph (when fitted), rank the
    window, render the report."""
    from rca.report import render_report  # matplotlib loads here, in the worker
    from rca.report.verdict import verdict

    started = time.perf_counter()
    onset, onset_method = find_onset(job)
    onset_seconds = time.perf_counter() - started
    method = make_method(job.method, seed=job.seed)
    started = time.perf_counter()
    learned = None if job.learned_graph is None else CausalGraph.from_json(job.learned_graph)
    method.fit(job.history, call_graph=job.call_graph, learned_graph=learned)
    fit_seconds = time.perf_counter() - started
    alert = Alert(services=job.symptoms) if job.symptoms else None
    result = method.rank(job.window, onset, alert=alert)
    payload = result_json(result, job.window, onset, onset_method)
    started = time.perf_counter()
    payload["verdict"] = verdict(
        result, job.window, onset, alert=alert, onset_method=onset_method
    ).to_json()
    html = render_report(
        job.incident_id,
        job.title,
        result,
        job.window,
        onset,
        alert=alert,
        onset_method=onset_method,
    )
    timings = {k: float(v) for k, v in result.timings_seconds.items()}
    timings["onset"] = onset_seconds
    timings["fit"] = fit_seconds
    timings["report"] = time.perf_counter() - started
    return AnalysisOutcome(
        result=payload,
        top=[
            {"service": s["service"], "score": s["score"], "series": s["series"]}
            for s in payload["services"][:TOP]
        ],
        timings=timings,
        report_html=html,
        onset=onset,
    )


def warm_up() -> bool:
    """Import what analyses need (torch, pandas, matplotlib) so the first one is not slow."""
    import rca.methods
    import rca.report  # noqa: F401

    return True
