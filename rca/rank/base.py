"""The rank stage's contract: from a causal graph and the detector's evidence to causes.

``rank(graph, scores, onset, step, symptoms) -> Ranking``: every kept series once, grouped by
the service it counts for, best service first; ``service_scores`` holds every service in that
order (higher = likelier cause); ``symptoms`` are the services an alert named (may be empty);
``confidence`` in ``[0, 1]`` says how much the evidence supports the first place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from rca.types import AnomalyScores, CausalGraph, RankedCause


@dataclass(frozen=True)
class Ranking:
    causes: list[RankedCause]
    service_scores: dict[str, float]
    confidence: float


class Ranker(Protocol):
    def rank(
        self,
        graph: CausalGraph,
        scores: AnomalyScores,
        onset: pd.Timestamp,
        step: pd.Timedelta,
        symptoms: frozenset[str],
    ) -> Ranking: ...
