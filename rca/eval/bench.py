"""Methods x datasets on the same cases, same protocol; one row per (dataset, method)."""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import networkx as nx
import numpy as np
from tqdm import tqdm

from rca.datasets.base import Case, Dataset
from rca.eval.scoring import accuracy_at, average_accuracy, rank_truth
from rca.methods import make_method


@dataclass(frozen=True)
class CaseOutcome:
    dataset: str
    method: str
    case_id: str
    truth: str
    fault: str | None
    service_rank: int | None
    metric_rank: int | None
    metric_scored: bool  # the truth names an indicator metric
    seconds: float
    top: tuple[str, ...]
    error: str | None = None
    # Against the generator's true series graph (synthetic data): precision of the method's
    # learned edges (all its edges if it learns none), and the precision of a random guess.
    edge_precision: float | None = None
    edge_chance: float | None = None


@dataclass(frozen=True)
class BenchRow:
    dataset: str
    method: str
    cases: int
    ac1: float
    ac3: float
    avg5: float
    seconds_median: float
    seconds_p90: float
    metric_cases: int
    metric_ac1: float
    metric_avg5: float
    errors: int
    by_fault: dict[str, dict[str, float]] = field(default_factory=dict)
    edge_precision: float | None = None
    edge_chance: float | None = None

    def to_json(self) -> dict[str, object]:
        return {k: None if _is_nan(v) else v for k, v in asdict(self).items()}


Split = Literal["all", "tune", "holdout"]


def split_cases(case_ids: Sequence[str], split: Split) -> list[str]:
    """The tuning split is every fifth case (in id order); the holdout is the rest.

    Methods are tuned on synthetic data and on at most this fifth of a real dataset; accuracy
    is reported on the holdout (and on all cases, for comparison with published numbers).
    """
    if split == "all":
        return list(case_ids)
    tune = set(case_ids[::5])
    return [c for c in case_ids if (c in tune) == (split == "tune")]


def pick_cases(case_ids: Sequence[str], limit: int | None) -> list[str]:
    """All ids, or ``limit`` of them spread evenly (so a limit still covers every fault group)."""
    if limit is None or limit >= len(case_ids):
        return list(case_ids)
    if limit <= 0:
        return []
    step = len(case_ids) / limit
    return [case_ids[int(i * step)] for i in range(limit)]


def run_case(case: Case, method_name: str, seed: int) -> CaseOutcome:
    """Fit (on the case's history and call graph) and rank one case with a fresh method."""
    started = time.perf_counter()
    try:
        method = make_method(method_name, seed=seed)
        method.fit(case.history, call_graph=case.call_graph, series_graph=case.true_graph)
        result = method.rank(case.window, case.onset)
    except Exception as exc:  # a failing method must not stop the benchmark; it is counted
        return CaseOutcome(
            case.dataset,
            method_name,
            case.case_id,
            case.truth.service,
            case.truth.fault,
            None,
            None,
            bool(case.truth.metrics),
            time.perf_counter() - started,
            (),
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
        )
    seconds = time.perf_counter() - started
    ranks = rank_truth(result, case.truth)
    top = tuple(service for service, _ in result.services()[:5])
    precision, chance = (None, None)
    if case.true_graph is not None and result.graph is not None:
        precision, chance = edge_precision(result.graph, case.true_graph)
    return CaseOutcome(
        case.dataset,
        method_name,
        case.case_id,
        case.truth.service,
        case.truth.fault,
        ranks.service,
        ranks.metric,
        bool(case.truth.metrics),
        seconds,
        top,
        edge_precision=precision,
        edge_chance=chance,
    )


def edge_precision(found: nx.DiGraph, truth: nx.DiGraph) -> tuple[float | None, float]:
    """Share of ``found``'s learned edges (attribute ``learned`` > 0; every edge when no edge
    carries the attribute) that are true cause -> effect edges, and that share for a random
    guess over the same nodes. ``None`` when nothing was learned."""
    nodes = set(found.nodes)
    learned = [(u, v) for u, v, d in found.edges(data=True) if d.get("learned", 1.0) > 0]
    true_edges = {(u, v) for u, v in truth.edges if u in nodes and v in nodes and u != v}
    pairs = max(len(nodes) * (len(nodes) - 1), 1)
    chance = len(true_edges) / pairs
    if not learned:
        return None, chance
    return sum(1 for e in learned if e in true_edges) / len(learned), chance


def summarize(dataset: str, method: str, outcomes: Sequence[CaseOutcome]) -> BenchRow:
    ranks = [o.service_rank for o in outcomes]
    metric_ranks = [o.metric_rank for o in outcomes if o.metric_scored]
    seconds = np.array([o.seconds for o in outcomes]) if outcomes else np.array([math.nan])
    faults = sorted({o.fault or "-" for o in outcomes})
    by_fault = {
        fault: {
            "cases": float(len(group)),
            "ac1": accuracy_at([o.service_rank for o in group], 1),
            "avg5": average_accuracy([o.service_rank for o in group]),
        }
        for fault in faults
        for group in [[o for o in outcomes if (o.fault or "-") == fault]]
    }
    return BenchRow(
        dataset=dataset,
        method=method,
        cases=len(outcomes),
        ac1=accuracy_at(ranks, 1),
        ac3=accuracy_at(ranks, 3),
        avg5=average_accuracy(ranks),
        seconds_median=float(np.median(seconds)),
        seconds_p90=float(np.percentile(seconds, 90)),
        metric_cases=len(metric_ranks),
        metric_ac1=accuracy_at(metric_ranks, 1),
        metric_avg5=average_accuracy(metric_ranks),
        errors=sum(1 for o in outcomes if o.error),
        by_fault=by_fault,
        edge_precision=_mean([o.edge_precision for o in outcomes]),
        edge_chance=_mean([o.edge_chance for o in outcomes]),
    )


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def run_bench(
    datasets: Sequence[Dataset],
    methods: Sequence[str],
    *,
    seed: int = 0,
    limit: int | None = None,
    split: Split = "all",
    progress: bool = True,
    on_outcome: Callable[[CaseOutcome], None] | None = None,
) -> tuple[list[BenchRow], list[CaseOutcome]]:
    """Run every method on every (limited) case of every dataset; each case is loaded once."""
    rows: list[BenchRow] = []
    outcomes: list[CaseOutcome] = []
    for dataset in datasets:
        ids = pick_cases(split_cases(dataset.case_ids(), split), limit)
        per_method: dict[str, list[CaseOutcome]] = {m: [] for m in methods}
        # disable=None: a bar on a terminal, one summary line per dataset otherwise.
        bar = tqdm(
            ids, desc=dataset.name, unit="case", disable=None if progress else True, file=sys.stderr
        )
        started = time.perf_counter()
        for case_id in bar:
            case = dataset.load(case_id)
            for method in methods:
                outcome = run_case(case, method, seed)
                per_method[method].append(outcome)
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
            bar.set_postfix(
                {
                    m: f"{accuracy_at([o.service_rank for o in v], 1):.2f}"
                    for m, v in per_method.items()
                }
            )
        rows.extend(summarize(dataset.name, m, per_method[m]) for m in methods)
        if progress and bar.disable:
            elapsed = time.perf_counter() - started
            print(
                f"{dataset.name}: {len(ids)} cases x {len(methods)} methods in {elapsed:.1f} s "
                f"({len(ids) / max(elapsed, 1e-9):.1f} cases/s)",
                file=sys.stderr,
            )
    return rows, outcomes


def holdout_rows(
    datasets: Sequence[Dataset], methods: Sequence[str], outcomes: Sequence[CaseOutcome]
) -> list[BenchRow]:
    """The rows again, on the holdout cases only (those no method was tuned on)."""
    rows = []
    for dataset in datasets:
        held = set(split_cases(dataset.case_ids(), "holdout"))
        for method in methods:
            mine = [
                o
                for o in outcomes
                if o.dataset == dataset.name and o.method == method and o.case_id in held
            ]
            if mine:
                rows.append(summarize(dataset.name, method, mine))
    return rows


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if _is_nan(value) else f"{value:.{digits}f}"


def format_table(rows: Sequence[BenchRow]) -> str:
    """A plain-text table, one line per (dataset, method)."""
    header = (
        "dataset",
        "method",
        "cases",
        "AC@1",
        "AC@3",
        "Avg@5",
        "s/case med",
        "s/case p90",
        "metric AC@1",
        "metric Avg@5",
        "errors",
    )
    lines = [
        (
            r.dataset,
            r.method,
            str(r.cases),
            _fmt(r.ac1),
            _fmt(r.ac3),
            _fmt(r.avg5),
            _fmt(r.seconds_median, 3),
            _fmt(r.seconds_p90, 3),
            f"{_fmt(r.metric_ac1)} ({r.metric_cases})" if r.metric_cases else "-",
            _fmt(r.metric_avg5) if r.metric_cases else "-",
            str(r.errors),
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
        for i, h in enumerate(header)
    ]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines)])


def format_graphs(rows: Sequence[BenchRow]) -> str:
    """Edge precision against the true graph, where a dataset has one."""
    lines = [
        f"{r.dataset}  {r.method}  edge precision {_fmt(r.edge_precision)} "
        f"(random guess {_fmt(r.edge_chance)})"
        for r in rows
        if r.edge_precision is not None
    ]
    return "\n".join(["learned graph vs the true graph:", *lines]) if lines else ""


def format_faults(rows: Sequence[BenchRow]) -> str:
    """Per-fault AC@1 / Avg@5, one line per (dataset, method, fault)."""
    out = ["dataset  method  fault  cases  AC@1  Avg@5"]
    for r in rows:
        for fault, stats in r.by_fault.items():
            out.append(
                f"{r.dataset}  {r.method}  {fault}  {int(stats['cases'])}  "
                f"{_fmt(stats['ac1'])}  {_fmt(stats['avg5'])}"
            )
    return "\n".join(out)
