"""``run``'s rank stage: the anomaly walk on the causal graph, shares added up per service.

A series' anomaly is ``1 - exp(-(strength - offset) / scale)`` above ``offset`` (robust z) and
0 below it; the walk (:mod:`rca.rank.anomaly_walk`) runs from symptoms back to causes; a
receiver's per-peer series count for the peer when only that peer changed
(:mod:`rca.rank.peer_attribution`); a service's score is the walk's share of its series, the
statistics of one distribution counted once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.detect.robust import as_unit_interval
from rca.rank.anomaly_walk import anomaly_walk
from rca.rank.base import Ranking
from rca.rank.peer_attribution import attributed_services, service_shares
from rca.types import AnomalyScores, CausalGraph, Evidence, RankedCause


@dataclass(frozen=True)
class AnomalyWalkRanker:
    # Strength (robust z) below the offset counts as healthy; above it, a = 1 - exp(-excess/scale).
    anomaly_offset: float = 3.0
    anomaly_scale: float = 25.0
    damping: float = 0.85
    precedence_steps: float = 2.0
    # How anomalous a node must be to hold the walk's mass (see rca.rank.anomaly_walk).
    hold_kappa: float = 0.05

    def anomaly(self, strength: pd.Series) -> np.ndarray:
        excess = pd.Series(np.clip(strength.to_numpy(dtype=float) - self.anomaly_offset, 0, None))
        return as_unit_interval(excess, self.anomaly_scale).to_numpy()

    def rank(
        self, graph: CausalGraph, scores: AnomalyScores, onset: pd.Timestamp, step: pd.Timedelta
    ) -> Ranking:
        names = list(graph.nodes)
        anomaly = self.anomaly(scores.strength)
        change = ((scores.changed_at - onset) / step).astype(float).to_numpy()
        change = np.where(np.isnan(change), np.inf, change)
        share = anomaly_walk(
            graph.weights,
            anomaly,
            change,
            damping=self.damping,
            precedence_steps=self.precedence_steps,
            kappa=self.hold_kappa,
        )
        owners = attributed_services(names, anomaly)
        services = service_shares(names, owners, share)
        # Ties in the walk (e.g. nothing anomalous) fall back to the strongest series.
        tiebreak = scores.strength.groupby(owners).max()
        order = sorted(services.index, key=lambda s: (-services[s], -tiebreak[s], s))
        causes = _causes(names, owners, order, share, scores, graph.weights)
        return Ranking(causes, {s: float(services[s]) for s in order})


def _causes(
    names: list[str],
    owners: list[str],
    service_order: list[str],
    share: np.ndarray,
    scores: AnomalyScores,
    weights: np.ndarray,
) -> list[RankedCause]:
    """Series grouped by the rank of the service they count for (``owners``), the most
    anomalous first within a service; ``score`` is that order (higher first), the walk share
    is in the evidence."""
    strength, changed_at = scores.strength, scores.changed_at
    position = {service: k for k, service in enumerate(service_order)}
    order = sorted(
        range(len(names)),
        key=lambda i: (position[owners[i]], -strength.iloc[i], names[i]),
    )
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
