"""The contract of an RCA method: ``fit`` on normal behaviour (optional), ``rank`` an incident.

Every method, baselines and ours, is used the same way::

    method = METHODS.get("baro").factory(seed=0)
    method.fit(history, call_graph=None)        # optional; baselines ignore it
    result = method.rank(window, onset)         # -> RCAResult, causes best first

``rank`` validates the window and the onset once for every method (clear
:class:`~rca.errors.RCAInputError` for bad input), times the work, and leaves the window
unchanged; methods implement ``_rank`` only.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar, Self, final

import networkx as nx
import pandas as pd

from rca.types import Alert, CausalGraph, RankedCause, RCAResult, service_of
from rca.window import Window, split_at_onset, to_timestamp


class RCAMethod(ABC):
    """Base class of every registered RCA method."""

    name: ClassVar[str]

    def fit(
        self,
        history: Window | None,
        call_graph: nx.DiGraph | None = None,
        series_graph: nx.DiGraph | None = None,
        learned_graph: CausalGraph | None = None,
    ) -> Self:
        """Learn from fault-free history, a caller -> callee service graph, a known
        cause -> effect graph between series and a graph already learned from history (any
        may be ``None``); default: nothing."""
        return self

    @final
    def rank(self, window: Window, onset: object, *, alert: Alert | None = None) -> RCAResult:
        """Rank the window's series as causes of the incident that starts at ``onset``."""
        onset = to_timestamp(onset)
        split_at_onset(window, onset)  # validates the window and that the onset is inside it
        started = time.perf_counter()
        result = self._rank(window.copy(), onset, alert)
        result.timings_seconds.setdefault("total", time.perf_counter() - started)
        return result

    @abstractmethod
    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult: ...


def causes_from_scores(scores: pd.Series) -> list[RankedCause]:
    """Ranked causes from one score per series (NaN scores go last), best first.

    The sort is stable, so equal scores keep the window's column order; scoring treats such ties
    pessimistically anyway.
    """
    clean = scores.astype(float).fillna(float("-inf"))
    ordered = clean.sort_values(ascending=False, kind="stable")
    return [
        RankedCause(series=str(name), service=service_of(str(name)), score=float(value))
        for name, value in ordered.items()
    ]
