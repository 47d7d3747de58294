"""``run``'s rank stage: the anomaly walk on the causal graph, shares added up per service.

A series' anomaly is ``1 - exp(-(strength - offset) / scale)`` above ``offset`` (robust z) and
0 below it; the walk (:mod:`rca.rank.anomaly_walk`) runs from symptoms back to causes; a
receiver's per-peer series count for the peer when only that peer changed
(:mod:`rca.rank.peer_attribution`); a service's score is the walk's share of its series, the
statistics of one distribution counted once.

The order is total: services the walk gives no share (nothing anomalous enough) follow, ordered
by their strongest robust evidence, and services whose every series was dropped (empty or
constant on a side: no evidence at all) come last, tied only with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.detect.robust import as_unit_interval
from rca.rank.anomaly_walk import anomaly_walk
from rca.rank.base import Ranking
from rca.rank.peer_attribution import attributed_services, service_shares
from rca.types import AnomalyScores, CausalGraph, Evidence, RankedCause, service_of


@dataclass(frozen=True)
class AnomalyWalkRanker:
    # Strength (robust z) below the offset counts as healthy; above it, a = 1 - exp(-excess/scale).
    anomaly_offset: float = 3.0
    anomaly_scale: float = 25.0
    damping: float = 0.85
    precedence_steps: float = 2.0
    # How anomalous a node must be to hold the walk's mass (see rca.rank.anomaly_walk).
    hold_kappa: float = 0.05
    # Where the walk starts besides the anomalies: each series of a service the alert names
    # gets this share of the largest anomaly (0: symptoms unused).
    symptom_start: float = 0.0
    # Inside a service, series whose strength reaches this are ordered by their surprise
    # against their own noise (see AnomalyScores.surprise): the floors guard against calling
    # a near-flat series' wobble a change, but once a change is clear they understate it (a
    # memory series that grew 15x scores below the CPU it took along). Chosen on the tuning
    # fifth and the simulators (4 reorders near-ties of noise-level strength).
    clear_strength: float = 10.0

    def anomaly(self, strength: pd.Series) -> np.ndarray:
        excess = pd.Series(np.clip(strength.to_numpy(dtype=float) - self.anomaly_offset, 0, None))
        return as_unit_interval(excess, self.anomaly_scale).to_numpy()

    def rank(
        self,
        graph: CausalGraph,
        scores: AnomalyScores,
        onset: pd.Timestamp,
        step: pd.Timedelta,
        symptoms: frozenset[str] = frozenset(),
    ) -> Ranking:
        names = list(graph.nodes)
        anomaly = self.anomaly(scores.strength)
        change = ((scores.changed_at - onset) / step).astype(float).to_numpy()
        change = np.where(np.isnan(change), np.inf, change)
        start = None
        if symptoms and self.symptom_start > 0:
            alerted = np.array([service_of(name) in symptoms for name in names], dtype=float)
            start = alerted * self.symptom_start * max(float(anomaly.max(initial=0.0)), 1e-3)
        share = anomaly_walk(
            graph.weights,
            anomaly,
            change,
            damping=self.damping,
            precedence_steps=self.precedence_steps,
            kappa=self.hold_kappa,
            start=start,
        )
        if not anomaly.any():
            # Nothing crossed the offset: the walk had nothing to start from and spread evenly,
            # which says nothing; the robust evidence alone orders the services.
            share = np.zeros_like(share)
        owners = attributed_services(names, anomaly)
        # A receiver whose every series counts for its peers keeps a place, without evidence.
        everyone = sorted({service_of(name) for name in names})
        service_scores = evidence_scores(
            service_shares(names, owners, share).reindex(everyone, fill_value=0.0),
            scores.strength.groupby(owners).max().reindex(everyone, fill_value=0.0),
            {service_of(name) for name in scores.dropped},
        )
        causes = _causes(
            names, owners, list(service_scores), share, scores, graph.weights, self.clear_strength
        )
        return Ranking(causes, service_scores, confidence(service_scores, anomaly.max(initial=0)))


def evidence_scores(walk: pd.Series, strength: pd.Series, unscored: set[str]) -> dict[str, float]:
    """Every service's score, best first, in three bands that never overlap: the walk's share
    (in ``(0, 1]``) where it gave one; else ``-1 / (1 + strength)`` (in ``[-1, 0)``) from the
    strongest robust z of the service's series; ``-2`` for ``unscored`` services with no kept
    series. Equal scores mean equal evidence.

    >>> walk = pd.Series({"a": 0.0, "b": 0.7, "c": 0.0})
    >>> strength = pd.Series({"a": 1.0, "b": 9.0, "c": 3.0})
    >>> evidence_scores(walk, strength, {"c", "d"})
    {'b': 0.7, 'c': -0.25, 'a': -0.5, 'd': -2.0}
    """
    scores = {
        str(s): float(walk[s]) if walk[s] > 0 else -1.0 / (1.0 + float(strength[s]))
        for s in walk.index
    }
    scores.update(untied(walk[walk > 0], strength))
    scores.update({s: -2.0 for s in sorted(unscored) if s not in scores})
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0])))


# Walk shares closer than this are one value: the walk converges to 1e-12, and its anomaly
# reads 1.0 from a robust z of about 900 on (a 300 ms delay on services of a few ms each).
SHARE_TIE = 1e-9


def untied(walk: pd.Series, strength: pd.Series) -> dict[str, float]:
    """The walk's shares, where the walk could not tell services apart (shares within
    ``SHARE_TIE``) ordered by their strongest robust z, as BARO would: each tied service
    after the first scores 1e-15 below the one before it.

    >>> walk = pd.Series({"a": 1 / 3, "b": 1 / 3 - 1e-13, "c": 0.2})
    >>> scores = untied(walk, pd.Series({"a": 900.0, "b": 4e3, "c": 9.0}))
    >>> sorted(scores, key=scores.get, reverse=True), scores["c"]
    (['b', 'a', 'c'], 0.2)
    """
    groups: list[tuple[float, list[str]]] = []  # (the group's top share, its services)
    for service in sorted(walk.index, key=lambda s: -float(walk[s])):
        if groups and groups[-1][0] - float(walk[service]) <= SHARE_TIE:
            groups[-1][1].append(str(service))
        else:
            groups.append((float(walk[service]), [str(service)]))
    scores: dict[str, float] = {}
    for top, members in groups:
        members.sort(key=lambda s: (-float(strength[s]), s))
        scores.update({s: top - k * 1e-15 for k, s in enumerate(members)})
    return scores


def confidence(service_scores: dict[str, float], strongest: float) -> float:
    """How much the evidence supports the first place, in ``[0, 1]``: the strongest series'
    anomaly (0 when nothing crossed the offset: the order is then by weak evidence) times the
    first service's margin over the second (``1 - second / first`` of their walk shares).

    >>> confidence({"a": 0.6, "b": 0.2}, 0.9)
    0.6
    >>> confidence({"a": -0.3, "b": -0.5}, 0.0)
    0.0
    """
    shares = [max(score, 0.0) for score in service_scores.values()]
    if not shares or shares[0] <= 0:
        return 0.0
    second = shares[1] if len(shares) > 1 else 0.0
    return round(float(strongest) * (1.0 - second / shares[0]), 6)


def _causes(
    names: list[str],
    owners: list[str],
    service_order: list[str],
    share: np.ndarray,
    scores: AnomalyScores,
    weights: np.ndarray,
    clear_strength: float,
) -> list[RankedCause]:
    """Series grouped by the rank of the service they count for (``owners``); within a
    service, clear changes (strength >= ``clear_strength``) first, by surprise, then the rest
    by strength; ``score`` is that order (higher first), the walk share is in the evidence."""
    strength, changed_at = scores.strength, scores.changed_at
    surprise = strength if scores.surprise is None else scores.surprise
    position = {service: k for k, service in enumerate(service_order)}

    def within(i: int) -> tuple[bool, float]:
        clear = bool(strength.iloc[i] >= clear_strength)
        return not clear, -float(surprise.iloc[i] if clear else strength.iloc[i])

    order = sorted(range(len(names)), key=lambda i: (position[owners[i]], *within(i), names[i]))
    causes = []
    for rank, i in enumerate(order):
        effects = np.argsort(-weights[i])[:3]
        edges = tuple(
            (names[i], names[j], float(weights[i, j])) for j in effects if weights[i, j] > 0
        )
        onset = changed_at.iloc[i]
        causes.append(
            RankedCause(
                series=names[i],
                service=owners[i],
                score=float(len(order) - rank),
                evidence=Evidence(
                    anomaly=float(strength.iloc[i]),
                    onset=None if pd.isna(onset) else onset,
                    walk_share=float(share[i]),
                    edges=edges,
                ),
            )
        )
    return causes
