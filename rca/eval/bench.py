"""Methods x datasets on the same cases, same protocol; one row per (dataset, method).

The protocol (:class:`Protocol`) says what each method is handed: the case through the
observability views (:mod:`rca.eval.views`), the onset (the injection time, or what the onset
detector finds before the alert, moved by ``onset_shift`` steps) and, with ``symptoms``, the
case's alert. Every method gets the same case and the same onset.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.base import Case, Dataset
from rca.eval.progress import CaseProgress
from rca.eval.scoring import (
    accuracy_at,
    average_accuracy,
    mean_rank,
    normalize_service,
    rank_truth,
)
from rca.eval.views import View, apply_views, case_seed, shift_onset, truth_observed
from rca.methods import make_method
from rca.types import Alert, CausalGraph, service_of
from rca.window import Window, infer_step_seconds

# Methods whose order is their seed alone get one seed per case (from the run's seed and the
# case id), so that cases sharing their columns get independent orders (chance); the others
# keep the run's seed, so their numbers stay comparable across runs.
SEEDED_PER_CASE = frozenset({"random"})


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
    # Services in the window the method saw (a database counts as its service): an unranked
    # truth counts as candidates + 1 in the mean rank.
    candidates: int = 0
    # Whether the window (after the views) still has a series of the truth service.
    truth_observed: bool = True
    # The onset handed to the method minus the true onset (as the views left it: coarse rounds
    # it into its bin), in the window's steps; and how the handed onset was found.
    onset_error_steps: float = 0.0
    onset_how: str = "exact"


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
    mean_rank: float = math.nan
    unobserved: int = 0  # cases whose truth service has no series left after the views
    onset_error_median: float = 0.0
    protocol: str = "full view; exact onset"

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


class OnsetEstimate(Protocol):
    onset: pd.Timestamp
    method: str


class OnsetDetector(Protocol):
    """:func:`rca.detect.onset.detect_onset`'s signature (what ``--onset detect`` calls)."""

    def __call__(
        self,
        window: Window,
        *,
        not_after: pd.Timestamp | None = None,
        not_before: pd.Timestamp | None = None,
        history: Window | None = None,
    ) -> OnsetEstimate: ...


@dataclass(frozen=True)
class BenchProtocol:
    """What every method is handed. ``onset``: ``exact`` (the injection time) or ``detect``
    (the onset detector's estimate; with ``alert_delay_steps`` it is told that an alert fired
    that many of the window's steps after the injection, an upper bound, never the injection
    itself); ``onset_shift_steps`` then moves the onset (negative: earlier); ``symptoms``
    hands the case's alert (its SLO-breaching services) to ``rank``."""

    views: tuple[View, ...] = ()
    onset: Literal["exact", "detect"] = "exact"
    alert_delay_steps: float | None = None
    onset_shift_steps: int = 0
    symptoms: bool = False

    @property
    def label(self) -> str:
        parts = [",".join(v.spec for v in self.views) or "full view"]
        if self.onset == "detect":
            alert = (
                "no alert"
                if self.alert_delay_steps is None
                else f"alert +{self.alert_delay_steps:g} steps"
            )
            parts.append(f"detected onset ({alert})")
        else:
            parts.append("exact onset")
        if self.onset_shift_steps:
            parts.append(f"onset shift {self.onset_shift_steps:+d} steps")
        if self.symptoms:
            parts.append("symptoms")
        return "; ".join(parts)


@dataclass(frozen=True)
class HandedOnset:
    """The onset every method gets for one case, and how it was found."""

    onset: pd.Timestamp
    how: str


def hand_onset(
    case: Case, protocol: BenchProtocol, detector: OnsetDetector | None = None
) -> HandedOnset:
    """The onset ``protocol`` hands the methods for ``case`` (the detector is called once per
    case, so every method gets the same). A detector that fails hands the alert time (or,
    without an alert, the start of the window's last quarter, as the API does), and says so."""
    onset, how = case.onset, "exact"
    if protocol.onset == "detect":
        index = case.window.index
        alert_at = None
        if protocol.alert_delay_steps is not None:
            step = pd.Timedelta(seconds=infer_step_seconds(index))
            alert_at = min(case.onset + protocol.alert_delay_steps * step, index[-1])
        if detector is None:
            from rca.detect.onset import detect_onset as detector
        try:
            estimate = detector(case.window, not_after=alert_at, history=case.history)
            onset, how = estimate.onset, f"detected ({estimate.method})"
        except Exception as exc:  # counted per case, like a failing method
            failed = f"detector failed ({type(exc).__name__}: {exc})"
            if alert_at is None:
                onset, how = index[(3 * len(index)) // 4], f"{failed}; the last quarter's start"
            else:
                onset, how = alert_at, f"{failed}; the alert time"
    return HandedOnset(shift_onset(case.window, onset, protocol.onset_shift_steps), how)


def candidate_count(window: Window) -> int:
    """Services in the window, a database counted as its service (as scoring counts them)."""
    return len({normalize_service(service_of(str(c))) for c in window.columns})


def failed_case(
    case: Case, method: str, seconds: float, error: str, **context: object
) -> CaseOutcome:
    """The outcome of a case that could not be ranked: counted, the truth unranked."""
    return CaseOutcome(
        case.dataset,
        method,
        case.case_id,
        case.truth.service,
        case.truth.fault,
        None,
        None,
        bool(case.truth.metrics),
        seconds,
        (),
        error=error,
        **context,  # type: ignore[arg-type]
    )


def run_case(
    case: Case,
    method_name: str,
    seed: int,
    *,
    handed: HandedOnset | None = None,
    alert: Alert | None = None,
) -> CaseOutcome:
    """Fit (on the case's history and call graph) and rank one case with a fresh method, at
    the ``handed`` onset (default: the case's) and with ``alert`` (default: none)."""
    handed = handed or HandedOnset(case.onset, "exact")
    onset = handed.onset
    context = {
        "candidates": candidate_count(case.window),
        "truth_observed": truth_observed(case),
        "onset_error_steps": _steps_between(case.window, case.onset, onset),
        "onset_how": handed.how,
    }
    if method_name in SEEDED_PER_CASE:
        seed = case_seed(seed, case.case_id)
    started = time.perf_counter()
    try:
        method = make_method(method_name, seed=seed)
        method.fit(case.history, call_graph=case.call_graph, series_graph=case.true_graph)
        result = method.rank(case.window, onset, alert=alert)
    except Exception as exc:  # a failing method must not stop the benchmark; it is counted
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return failed_case(case, method_name, time.perf_counter() - started, error, **context)
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
        **context,
    )


def _steps_between(window: Window, start: pd.Timestamp, end: pd.Timestamp) -> float:
    if start == end:
        return 0.0
    return (end - start).total_seconds() / infer_step_seconds(window.index)


def edge_precision(found: CausalGraph, truth: nx.DiGraph) -> tuple[float | None, float]:
    """Share of ``found``'s learned edges (every edge when the graph does not say which were
    learned) that are true cause -> effect edges, and that share for a random guess over the
    same nodes. ``None`` when nothing was learned."""
    nodes = set(found.nodes)
    learned = [(e.cause, e.effect) for e in found.edges() if e.learned is None or e.learned > 0]
    true_edges = {(u, v) for u, v in truth.edges if u in nodes and v in nodes and u != v}
    pairs = max(len(nodes) * (len(nodes) - 1), 1)
    chance = len(true_edges) / pairs
    if not learned:
        return None, chance
    return sum(1 for e in learned if e in true_edges) / len(learned), chance


def summarize(
    dataset: str,
    method: str,
    outcomes: Sequence[CaseOutcome],
    protocol: str = "full view; exact onset",
) -> BenchRow:
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
        mean_rank=mean_rank(ranks, [o.candidates for o in outcomes]),
        unobserved=sum(1 for o in outcomes if not o.truth_observed),
        onset_error_median=(
            float(np.median([o.onset_error_steps for o in outcomes])) if outcomes else math.nan
        ),
        protocol=protocol,
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
    protocol: BenchProtocol | None = None,
    detector: OnsetDetector | None = None,
) -> tuple[list[BenchRow], list[CaseOutcome]]:
    """Run every method on every (limited) case of every dataset under ``protocol`` (default:
    the case as recorded, the exact onset); each case is loaded, viewed and given its onset
    once. ``detector`` stands in for :func:`rca.detect.onset.detect_onset`."""
    protocol = protocol or BenchProtocol()
    rows: list[BenchRow] = []
    outcomes: list[CaseOutcome] = []
    for dataset in datasets:
        ids = pick_cases(split_cases(dataset.case_ids(), split), limit)
        per_method: dict[str, list[CaseOutcome]] = {m: [] for m in methods}
        report = CaseProgress(dataset.name, len(ids)) if progress else None
        for case_id in ids:
            for outcome in _run_protocol(dataset.load(case_id), methods, seed, protocol, detector):
                per_method[outcome.method].append(outcome)
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
            if report is not None:
                report.advance(_accuracy_note(per_method))
        if report is not None:
            report.close()
        rows.extend(summarize(dataset.name, m, per_method[m], protocol.label) for m in methods)
    return rows, outcomes


def _accuracy_note(per_method: dict[str, list[CaseOutcome]]) -> str:
    """The progress note: each method's AC@1 so far."""
    scores = (
        f"{m}={accuracy_at([o.service_rank for o in v], 1):.2f}" for m, v in per_method.items()
    )
    return "AC@1 " + " ".join(scores)


def _run_protocol(
    case: Case,
    methods: Sequence[str],
    seed: int,
    protocol: BenchProtocol,
    detector: OnsetDetector | None,
) -> Iterator[CaseOutcome]:
    """Every method on one case under ``protocol``; a view that cannot be applied to the case
    fails every method on it (counted, as a failing method is)."""
    try:
        viewed = apply_views(case, protocol.views, seed)
        handed = hand_onset(viewed, protocol, detector)
    except Exception as exc:  # the case still counts, as a miss
        error = f"protocol: {type(exc).__name__}: {exc}"
        candidates = candidate_count(case.window)
        yield from (
            failed_case(case, method, 0.0, error, candidates=candidates, truth_observed=False)
            for method in methods
        )
        return
    alert = viewed.alert if protocol.symptoms else None
    for method in methods:
        yield run_case(viewed, method, seed, handed=handed, alert=alert)


def holdout_rows(
    datasets: Sequence[Dataset],
    methods: Sequence[str],
    outcomes: Sequence[CaseOutcome],
    protocol: str = "full view; exact onset",
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
                rows.append(summarize(dataset.name, method, mine, protocol))
    return rows


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if _is_nan(value) else f"{value:.{digits}f}"


def format_table(rows: Sequence[BenchRow]) -> str:
    """A plain-text table, one line per (dataset, method). Mean rank: an unranked truth counts
    as the number of candidate services + 1; truth unseen: cases whose truth service has no
    series left after the views; onset err med: the median of handed - true onset, in steps."""
    header = (
        "dataset",
        "method",
        "cases",
        "AC@1",
        "AC@3",
        "Avg@5",
        "mean rank",
        "truth unseen",
        "onset err med",
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
            _fmt(r.mean_rank, 1),
            str(r.unobserved),
            _fmt(r.onset_error_median, 1),
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
