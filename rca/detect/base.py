"""The detect stage's contract: per-series anomaly evidence in one window.

``score(window, onset) -> AnomalyScores``: higher strength = more anomalous, never NaN for a
kept series; series that cannot be scored (empty, constant on a side) are dropped with the
reason, never a crash. Deciding whether a series is anomalous enough to matter is the ranker's
business, not the detector's.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from rca.types import AnomalyScores
from rca.window import Window


class Detector(Protocol):
    def score(self, window: Window, onset: pd.Timestamp) -> AnomalyScores: ...
