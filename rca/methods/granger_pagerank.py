"""``granger-pagerank``: linear Granger graph of the whole window + plain PageRank.

The causal-graph baseline of RCAEval's family (``granger_pagerank``, ASE'24): a pairwise
Granger test at lags 1..``max_lag`` puts an edge cause -> effect when any lag is significant;
PageRank without personalization runs on the reversed graph (effect -> cause), so mass flows
towards causes. It uses no anomaly information, which is why such pipelines score near random
in the published tables; it is here as that control.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.causal.granger import granger_pvalues
from rca.detect.flat import flat_columns
from rca.methods.base import RCAMethod, causes_from_scores
from rca.rank.pagerank import pagerank
from rca.types import Alert, CausalGraph, RCAResult
from rca.window import Window

# Fewer residual degrees of freedom than this and a lag order is not tested.
_MIN_DOF = 5


class GrangerPageRank(RCAMethod):
    name = "granger-pagerank"

    def __init__(self, max_lag: int = 3, alpha: float = 0.05, damping: float = 0.85) -> None:
        self.max_lag = max_lag
        self.alpha = alpha
        self.damping = damping

    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult:
        dropped = flat_columns(window)
        data = window.drop(columns=dropped).ffill().bfill()
        values = data.to_numpy(dtype=float)
        std = values.std(axis=0)
        values = (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)
        n = values.shape[1]
        significant = np.zeros((n, n), dtype=bool)
        for lag in range(1, self.max_lag + 1):
            if len(values) - 3 * lag - 1 < _MIN_DOF:
                break
            significant |= granger_pvalues(values, lag) < self.alpha
        names = [str(c) for c in data.columns]
        edges = significant.astype(float)
        graph = CausalGraph(tuple(names), edges, learned=edges)
        # Walk effect -> cause: transpose of the cause -> effect adjacency.
        scores = pagerank(significant.T.astype(float), damping=self.damping) if n else np.zeros(0)
        if not significant.any():
            scores = np.zeros(n)  # no graph, no information: one big tie
        return RCAResult(
            self.name,
            causes_from_scores(pd.Series(scores, index=names)),
            graph=graph,
            dropped=tuple(dropped),
        )
