"""Observability views: a benchmark case as a poorer deployment would have recorded it.

Each view is a pure function ``Case -> Case`` (the input is never changed); ``rca bench --view``
applies them in the order given, so they compose (``no-call-graph,latency-only``):

- ``no-call-graph``: no call graph, and no series that only tracing produces: service-graph
  metrics (``traces_service_graph_*``) and per-edge series (an attribute naming the peer of a
  call: ``rpc.peer``, ``peer.service``, ``client``/``server``).
- ``latency-only``: only the series :func:`is_latency` accepts.
- ``one-latency``: of those, one per service (:func:`latency_preference`).
- ``coarse:<step>`` (``coarse:60s``, ``coarse:5m``): rows resampled to a coarser step.
- ``call-graph-drop:<share>``: that share of the call edges removed (and their per-edge series),
  seeded by the run's seed and the case id.

A view may leave the truth service without series: the method then cannot rank it, the case
counts as a miss, and :func:`truth_observed` says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from rca.datasets.base import Case
from rca.errors import RCAInputError
from rca.eval.scoring import normalize_service
from rca.types import Alert, SeriesKey, parse_series_name
from rca.window import Window, infer_step_seconds

# Attributes that name the other end of a call: the series describes one caller -> callee edge
# (Nezha's per-edge latencies, OpenTelemetry's service-graph metrics), which only tracing gives.
PEER_ATTRIBUTES = ("rpc.peer", "peer.service", "client", "server")
_SERVICE_GRAPH = re.compile(r"^traces[._]service[._]graph", re.IGNORECASE)

# A latency: the metric's name has one of these words (``http.server.request.duration``,
# ``rpc.client.duration``, PetShop's ``latency``, Prometheus' ``*_latency_seconds``,
# ``gen_ai.server.time_to_first_token``, ROS 2's ``message.age``), and the statistic is not a
# count of the histogram (its ``rate``, ``sum`` or ``count`` is traffic, not time).
_LATENCY_WORDS = re.compile(
    r"duration|latency|response[._]time|time[._]to[._]first[._]token|"
    r"time[._]per[._]output[._]token|ttft|tpot|message[._]age",
    re.IGNORECASE,
)
_COUNT_STATS = frozenset({"rate", "sum", "count"})
# one-latency's choice of statistic: the p90 an SLO usually watches, then its neighbours.
_STAT_ORDER = ("p90", "p95", "p99", "mean", "avg", "p50", None)


def _key(name: str) -> SeriesKey | None:
    try:
        return parse_series_name(name)
    except ValueError:
        return None


def is_latency(key: SeriesKey) -> bool:
    """Whether a series is a request (or message) duration: see ``_LATENCY_WORDS``."""
    return bool(_LATENCY_WORDS.search(key.metric)) and key.stat not in _COUNT_STATS


def edge_peer(key: SeriesKey) -> str | None:
    """The peer service a per-edge series names (``None`` for a service's own series)."""
    attrs = dict(key.attrs)
    return next((attrs[a] for a in PEER_ATTRIBUTES if attrs.get(a)), None)


def is_tracing_only(key: SeriesKey) -> bool:
    """Service-graph metrics and per-edge series: what a deployment without tracing lacks."""
    return bool(_SERVICE_GRAPH.match(key.metric)) or edge_peer(key) is not None


def latency_preference(key: SeriesKey, missing_share: float) -> tuple:
    """Sort key for one-latency (smallest wins): a service's own series before per-edge ones,
    at least half present, server-side before client-side, request durations first,
    p90 > p95 > p99 > mean > p50, the most complete, the fewest attributes, then the name."""
    metric = key.metric.lower()
    side = 0 if "server" in metric else 2 if "client" in metric else 1
    stat = _STAT_ORDER.index(key.stat) if key.stat in _STAT_ORDER else len(_STAT_ORDER)
    return (
        edge_peer(key) is not None,
        missing_share > 0.5,
        side,
        "request" not in metric,
        stat,
        missing_share,
        len(key.attrs),
        key.name,
    )


def keep_series(case: Case, names: Iterable[str], note: str) -> Case:
    """The case restricted to ``names`` (window, history, true graph, the alert's series)."""
    kept = set(names)
    columns = [c for c in case.window.columns if c in kept]
    history = case.history
    if history is not None:
        history = history[[c for c in history.columns if c in kept]]
    true_graph = case.true_graph
    if true_graph is not None:
        true_graph = true_graph.subgraph(n for n in true_graph.nodes if n in kept).copy()
    alert = case.alert
    if alert is not None:
        alert = Alert(alert.services, tuple(s for s in alert.series if s in kept))
    note = f"{note}: {len(columns)} of {case.window.shape[1]} series"
    return replace(
        case,
        window=case.window[columns],
        history=history,
        true_graph=true_graph,
        alert=alert,
        notes=(*case.notes, note),
    )


def _select(case: Case, keep: Callable[[SeriesKey], bool], note: str) -> Case:
    names = [c for c in case.window.columns if (k := _key(str(c))) is not None and keep(k)]
    return keep_series(case, names, note)


def no_call_graph(case: Case) -> Case:
    """No call graph and no tracing-only series."""
    dropped = _select(case, lambda k: not is_tracing_only(k), "no-call-graph")
    return replace(dropped, call_graph=None)


def latency_only(case: Case) -> Case:
    """Only latency series (:func:`is_latency`)."""
    return _select(case, is_latency, "latency-only")


def one_latency(case: Case) -> Case:
    """One latency series per service, the first by :func:`latency_preference`."""
    missing = case.window.isna().mean()
    best: dict[str, tuple[tuple, str]] = {}
    for column in case.window.columns:
        key = _key(str(column))
        if key is None or not is_latency(key):
            continue
        rank = (latency_preference(key, float(missing[column])), str(column))
        if key.service not in best or rank < best[key.service]:
            best[key.service] = rank
    return keep_series(case, [column for _, column in best.values()], "one-latency")


def _mean_or_sum(frame: Window, rule: pd.Timedelta, origin: pd.Timestamp) -> Window:
    """Resampled rows: totals (``sum``, ``count`` statistics) add up, everything else (gauges,
    rates per second, latency statistics) is averaged. A quantile of a coarser step cannot be
    recomputed from finer quantiles; their mean stands in for it."""
    keys = {c: _key(str(c)) for c in frame.columns}
    totals = [c for c, k in keys.items() if k is not None and k.stat in ("sum", "count")]
    others = [c for c in frame.columns if c not in set(totals)]
    bins = {"rule": rule, "origin": origin, "label": "left", "closed": "left"}
    parts = [frame[others].resample(**bins).mean()]
    if totals:
        parts.append(frame[totals].resample(**bins).sum(min_count=1))
    return pd.concat(parts, axis=1)[list(frame.columns)]


def coarse(case: Case, step_seconds: float) -> Case:
    """Rows resampled to ``step_seconds`` on bins that start at the window's first row; the
    onset moves to the start of the bin that holds it (that bin already shows the fault), but
    never onto the first bin (a method needs rows before the onset). A step no coarser than the
    window's leaves the case as it is."""
    step = infer_step_seconds(case.window.index)
    if step_seconds <= step:
        return replace(case, notes=(*case.notes, f"coarse: already at {step:g} s"))
    rule = pd.Timedelta(seconds=step_seconds)
    origin = case.window.index[0]
    window = _mean_or_sum(case.window, rule, origin)
    bins = np.floor((case.onset - origin) / rule)
    onset = origin + max(int(bins), 1) * rule
    if onset > window.index[-1]:
        raise RCAInputError(f"coarse:{step_seconds:g}s leaves no row at or after the onset")
    history = None if case.history is None else _mean_or_sum(case.history, rule, origin)
    return replace(
        case,
        window=window,
        onset=onset,
        history=history,
        notes=(*case.notes, f"coarse: {step:g} s -> {step_seconds:g} s"),
    )


def case_seed(seed: int, *parts: str) -> int:
    """A seed for one case (and purpose) from the run's seed: a stable hash, the same in every
    process, so a case draws the same whatever ran before it."""
    text = "|".join((str(seed), *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def drop_call_edges(case: Case, share: float, seed: int) -> Case:
    """``share`` of the call edges (rounded) removed at random, with the per-edge series of
    the removed edges; services stay."""
    if case.call_graph is None or case.call_graph.number_of_edges() == 0:
        return case
    edges = sorted(case.call_graph.edges)
    count = round(share * len(edges))
    rng = np.random.default_rng(seed)
    removed = {edges[i] for i in rng.choice(len(edges), size=count, replace=False)}
    graph = case.call_graph.copy()
    graph.remove_edges_from(removed)

    def kept(key: SeriesKey) -> bool:
        peer = edge_peer(key)
        return peer is None or not {(peer, key.service), (key.service, peer)} & removed

    dropped = _select(case, kept, f"call-graph-drop:{share:g} ({count} of {len(edges)} edges)")
    return replace(dropped, call_graph=graph)


def truth_observed(case: Case) -> bool:
    """Whether the window still has a series of the truth service (a database counts as its
    service, as in scoring)."""
    truth = normalize_service(case.truth.service)
    return any(
        (k := _key(str(c))) is not None and normalize_service(k.service) == truth
        for c in case.window.columns
    )


def shift_onset(window: Window, onset: pd.Timestamp, steps: float) -> pd.Timestamp:
    """``onset`` moved by ``steps`` of the window's step (negative: earlier); one that lands
    where a method cannot take it (at or before the first row, after the last) moves to the
    second row or the last."""
    moved = onset + steps * pd.Timedelta(seconds=infer_step_seconds(window.index))
    if moved <= window.index[0]:
        return window.index[1]
    return min(moved, window.index[-1])


@dataclass(frozen=True)
class View:
    """A parsed ``--view``: its spec as written and the function it applies (case, seed)."""

    spec: str
    apply: Callable[[Case, int], Case]


def _share(text: str) -> float:
    share = float(text)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"a share is between 0 and 1, got {share}")
    return share


def _seconds(text: str) -> float:
    seconds = pd.Timedelta(text if text[-1:].isalpha() else f"{text}s").total_seconds()
    if seconds <= 0:
        raise ValueError(f"a step must be positive, got {text!r}")
    return seconds


def parse_view(spec: str) -> View:
    """``no-call-graph``, ``latency-only``, ``one-latency``, ``coarse:<step>`` or
    ``call-graph-drop:<share>``; a clear error otherwise."""
    name, _, arg = spec.strip().partition(":")
    try:
        if name in _PLAIN and not arg:
            plain = _PLAIN[name]
            return View(spec, lambda case, seed: plain(case))
        if name == "coarse" and arg:
            step = _seconds(arg)
            return View(spec, lambda case, seed: coarse(case, step))
        if name == "call-graph-drop" and arg:
            share = _share(arg)
            return View(
                spec,
                lambda case, seed: drop_call_edges(
                    case, share, case_seed(seed, case.case_id, "call-graph-drop")
                ),
            )
    except ValueError as exc:
        raise RCAInputError(f"view {spec!r}: {exc}") from None
    raise RCAInputError(
        f"unknown view {spec!r}: expected {', '.join(_PLAIN)}, coarse:<step> (e.g. coarse:60s) "
        "or call-graph-drop:<share> (e.g. call-graph-drop:0.5)"
    )


_PLAIN: dict[str, Callable[[Case], Case]] = {
    "no-call-graph": no_call_graph,
    "latency-only": latency_only,
    "one-latency": one_latency,
}


def parse_views(specs: Iterable[str]) -> tuple[View, ...]:
    """Views from repeated and/or comma-separated specs, in order."""
    return tuple(parse_view(s) for spec in specs for s in spec.split(",") if s.strip())


def apply_views(case: Case, views: Iterable[View], seed: int) -> Case:
    for view in views:
        case = view.apply(case, seed)
    return case
