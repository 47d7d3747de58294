"""The vocabulary every stage shares: series keys, ranked causes and RCA results.

Orientation: every graph in this package is stored cause -> effect (edge ``(u, v)`` means
``u``'s past helps explain ``v``). Rankers that walk from symptoms back to causes reverse it
themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Characters that separate the parts of a column name; escaped inside each part so that any
# service or metric name (PetShop's "PetSite_AWS::ECS::Fargate", vLLM's "vllm:...") round-trips.
_ESCAPES = {"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D", ",": "%2C", "=": "%3D"}


def _escape(part: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in part)


def _unescape(part: str) -> str:
    for ch, code in reversed(list(_ESCAPES.items())):
        part = part.replace(code, ch)
    return part


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One time series: a service, an OpenTelemetry metric name, an optional statistic
    (``p50``, ``p90``, ``p99``, ``mean``, ``rate``...) and optional point attributes."""

    service: str
    metric: str
    stat: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return series_name(self.service, self.metric, self.stat, dict(self.attrs))


# SeriesKey's fields as a plain tuple, for the ingest hot path (decoder and window store), where
# building a dataclass per sample would cost as much as decoding it.
SeriesTuple = tuple[str, str, str | None, tuple[tuple[str, str], ...]]


def series_name(
    service: str, metric: str, stat: str | None = None, attrs: dict[str, str] | None = None
) -> str:
    """The one function that names a window column: ``service:metric[:stat][{k=v,...}]``.

    >>> series_name("carts", "container.cpu.utilization")
    'carts:container.cpu.utilization'
    >>> series_name("front-end", "http.server.request.duration", "p90", {"http.route": "/cart"})
    'front-end:http.server.request.duration:p90{http.route=/cart}'
    """
    if not service or not metric:
        raise ValueError(f"a series needs a service and a metric, got {service!r}, {metric!r}")
    name = f"{_escape(service)}:{_escape(metric)}"
    if stat:
        name += f":{_escape(stat)}"
    if attrs:
        inner = ",".join(f"{_escape(k)}={_escape(str(v))}" for k, v in sorted(attrs.items()))
        name += "{" + inner + "}"
    return name


def parse_series_name(name: str) -> SeriesKey:
    """Inverse of :func:`series_name`; raises ``ValueError`` for a name it did not make."""
    attrs: tuple[tuple[str, str], ...] = ()
    head = name
    if name.endswith("}") and "{" in name:
        head, inner = name[:-1].split("{", 1)
        pairs = []
        for item in inner.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"not a series name (bad attribute {item!r}): {name!r}")
            pairs.append((_unescape(key), _unescape(value)))
        attrs = tuple(pairs)
    parts = head.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"not a series name (expected service:metric[:stat]): {name!r}")
    stat = _unescape(parts[2]) if len(parts) == 3 else None
    return SeriesKey(_unescape(parts[0]), _unescape(parts[1]), stat, attrs)


def service_of(name: str) -> str:
    """Service of a column name made by :func:`series_name`."""
    return parse_series_name(name).service


# A Deployment's pod: ``<deployment>-<pod-template-hash>-<suffix>``, both generated from
# Kubernetes' safe alphabet (no vowels, no 0, 1 or 3, so they never spell a word).
_DEPLOYMENT_POD = re.compile(
    r"^(?P<workload>.+)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"
)


def workload_of(name: str) -> str:
    """The Deployment a pod name belongs to, else the name itself. A pod killed by a fault
    comes back under a new name: its series must stay the service's, and a fault labelled
    with the service must find them. StatefulSet pods (``robot-1``) keep their names.

    >>> workload_of("frontend-579b9bff58-t2dbm"), workload_of("user-profile-store")
    ('frontend', 'user-profile-store')
    >>> workload_of("robot-1"), workload_of("carts-db")
    ('robot-1', 'carts-db')
    """
    match = _DEPLOYMENT_POD.match(name)
    return match.group("workload") if match else name


@dataclass(frozen=True)
class AnomalyScores:
    """What the detect stage found in one window, per series (the columns it kept).

    ``z``: robust z-scores of every row. ``strength``: the sustained anomaly after the onset
    (higher = more anomalous, never NaN). ``changed_at``: the first row from which the series
    stayed changed (NaT if never). ``dropped``: series not scored (empty or constant on a side),
    with the reason for each. ``surprise`` (optional): the same as ``strength`` against the
    series' own noise alone, without the floors that keep near-flat series from looking
    alarming; it orders series whose change is already clear.
    """

    z: pd.DataFrame
    strength: pd.Series
    changed_at: pd.Series
    dropped: dict[str, str] = field(default_factory=dict)
    surprise: pd.Series | None = None

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.strength.index]


@dataclass(frozen=True)
class CausalEdge:
    """``cause -> effect``: the cause's past helps explain the effect, ``lag_steps`` later
    (``None``: not estimated); ``learned`` is the part of ``weight`` a learner found."""

    cause: str
    effect: str
    weight: float
    lag_steps: int | None = None
    learned: float | None = None


@dataclass(frozen=True, eq=False)
class CausalGraph:
    """A weighted cause -> effect graph over series: ``weights[i, j]`` is ``nodes[i] ->
    nodes[j]``. ``learned`` (same shape, optional) is the part a learner found, 0 where the edge
    was known beforehand (same service, the call graph); ``lag_steps`` the estimated lags.
    ``stats`` says how it was made (e.g. ``granger_epochs``)."""

    nodes: tuple[str, ...]
    weights: np.ndarray
    learned: np.ndarray | None = None
    lag_steps: np.ndarray | None = None
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if self.weights.shape != (n, n):
            raise ValueError(f"weights must be {n}x{n}, got {self.weights.shape}")

    @classmethod
    def empty(cls, nodes: Sequence[str]) -> CausalGraph:
        return cls(tuple(nodes), np.zeros((len(nodes), len(nodes))))

    def edges(self) -> Iterator[CausalEdge]:
        for i, j in zip(*np.nonzero(self.weights), strict=True):
            yield CausalEdge(
                self.nodes[i],
                self.nodes[j],
                float(self.weights[i, j]),
                None if self.lag_steps is None else int(self.lag_steps[i, j]),
                None if self.learned is None else float(self.learned[i, j]),
            )

    def reversed(self) -> CausalGraph:
        """The same edges pointing effect -> cause (for walks from symptoms to causes)."""
        flip = None if self.learned is None else self.learned.T
        lags = None if self.lag_steps is None else self.lag_steps.T
        return CausalGraph(self.nodes, self.weights.T, flip, lags, dict(self.stats))

    def on(self, nodes: Sequence[str]) -> CausalGraph:
        """The graph over ``nodes``, in that order: edges between nodes it knows, no edge to or
        from a node it does not (a series that appeared after the graph was fitted)."""
        index = {name: k for k, name in enumerate(self.nodes)}
        known = np.array([name in index for name in nodes])
        where = np.array([index.get(name, 0) for name in nodes], dtype=int)
        both = np.outer(known, known)

        def pick(matrix: np.ndarray | None) -> np.ndarray | None:
            if matrix is None:
                return None
            return np.where(both, matrix[np.ix_(where, where)], 0).astype(matrix.dtype)

        picked = pick(self.weights)
        assert picked is not None
        return CausalGraph(
            tuple(nodes), picked, pick(self.learned), pick(self.lag_steps), dict(self.stats)
        )

    def to_json(self, min_weight: float = 1e-3) -> dict[str, object]:
        """Nodes, the edges of weight at least ``min_weight`` as ``[cause, effect, weight]``
        index triples, ``[cause, effect, weight, lag_steps]`` where lags were estimated (a
        fitted graph is sparse; the walk ignores lighter edges anyway), and ``stats``."""
        rows, cols = np.nonzero(self.weights >= min_weight)
        lags = self.lag_steps
        return {
            "nodes": list(self.nodes),
            "edges": [
                [int(i), int(j), round(float(self.weights[i, j]), 6)]
                + ([] if lags is None else [int(lags[i, j])])
                for i, j in zip(rows, cols, strict=True)
            ],
            "stats": dict(self.stats),
        }

    @classmethod
    def from_json(cls, data: dict[str, object], learned: bool = True) -> CausalGraph:
        """The graph :meth:`to_json` wrote; ``learned``: every edge is a learned one.
        ``ValueError`` naming what is wrong where ``data`` is not such a graph."""
        if not isinstance(data, dict):
            raise ValueError(
                f"expected an object with 'nodes' and 'edges', got {type(data).__name__}"
            )
        raw_nodes, raw_edges = data.get("nodes"), data.get("edges")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise ValueError("'nodes' must be a non-empty list of series names")
        if not isinstance(raw_edges, list):
            raise ValueError("'edges' must be a list of [cause, effect, weight] triples")
        nodes = tuple(str(n) for n in raw_nodes)
        weights = np.zeros((len(nodes), len(nodes)))
        lags = np.zeros((len(nodes), len(nodes)), dtype=int)
        with_lags = bool(raw_edges) and all(
            isinstance(edge, list) and len(edge) == 4 for edge in raw_edges
        )
        for edge in raw_edges:
            if not (
                isinstance(edge, list)
                and len(edge) == (4 if with_lags else 3)
                and all(type(k) is int and 0 <= k < len(nodes) for k in edge[:2])
                and isinstance(edge[2], int | float)
                and (not with_lags or (type(edge[3]) is int and edge[3] >= 0))
            ):
                raise ValueError(
                    f"edge {edge!r}: expected [cause, effect, weight] (or, in every edge, "
                    f"[cause, effect, weight, lag_steps]) with node indices 0..{len(nodes) - 1}"
                )
            weights[edge[0], edge[1]] = float(edge[2])
            if with_lags:
                lags[edge[0], edge[1]] = edge[3]
        stats = {str(k): float(v) for k, v in dict(data.get("stats") or {}).items()}  # type: ignore[call-overload]
        return cls(
            nodes,
            weights,
            learned=weights.copy() if learned else None,
            lag_steps=lags if with_lags else None,
            stats=stats,
        )


@dataclass(frozen=True)
class Evidence:
    """Why a cause ranks where it does; fields a method does not compute stay ``None``."""

    anomaly: float | None = None
    onset: pd.Timestamp | None = None
    walk_share: float | None = None
    edges: tuple[tuple[str, str, float], ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class RankedCause:
    """One series ranked as a cause; ``score`` is higher for likelier causes."""

    series: str
    service: str
    score: float
    evidence: Evidence = field(default_factory=Evidence)


@dataclass
class RCAResult:
    """What every RCA method returns.

    ``causes`` is sorted by descending score. ``graph`` (cause -> effect, with weights and,
    where estimated, lags) is ``None`` for methods that build none. ``dropped`` names the
    series the method ignored (constant, empty) so a person can see what was not looked at.
    ``service_scores`` (best first) is set by methods that score services themselves rather
    than by their best series.
    """

    method: str
    causes: list[RankedCause]
    graph: CausalGraph | None = None
    timings_seconds: dict[str, float] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    service_scores: dict[str, float] | None = None
    # How much the evidence supports the first place, in [0, 1] (None: the method does not
    # say). Low when nothing was clearly anomalous or the first two are close: read the ranking
    # as a list of suspects, not a verdict.
    confidence: float | None = None

    def services(self) -> list[tuple[str, float]]:
        """Services best first: ``service_scores`` when the method gave them, else each
        service's best series' score (ties keep first appearance)."""
        if self.service_scores is not None:
            return list(self.service_scores.items())
        best: dict[str, float] = {}
        for cause in self.causes:
            if cause.service not in best or cause.score > best[cause.service]:
                best[cause.service] = cause.score
        return sorted(best.items(), key=lambda item: -item[1])


@dataclass(frozen=True)
class Alert:
    """What an alert says about an incident: the services and series where it fired.

    Methods may use it to seed their search from the symptoms; none requires it.
    """

    services: tuple[str, ...] = ()
    series: tuple[str, ...] = ()
