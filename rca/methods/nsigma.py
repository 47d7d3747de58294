"""``nsigma``: mean/std z-score after the onset against before it, as in RCAEval."""

from __future__ import annotations

import pandas as pd

from rca.detect.flat import drop_flat
from rca.methods.base import RCAMethod, causes_from_scores
from rca.types import Alert, RCAResult
from rca.window import Window, split_at_onset


class NSigma(RCAMethod):
    """``score = max_t (x_t - mean_before) / std_before``; series flat on either side dropped.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2026-01-01", periods=60, freq="1s", tz="UTC")
    >>> rng = np.random.default_rng(0)
    >>> w = pd.DataFrame({"a:cpu": rng.normal(0, 1, 60), "b:cpu": rng.normal(0, 1, 60)}, idx)
    >>> w.iloc[40:, 1] += 10
    >>> NSigma().rank(w, idx[40]).causes[0].service
    'b'
    """

    name = "nsigma"

    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult:
        before, after = split_at_onset(window, onset)
        kept, dropped = drop_flat(before, after)
        scores = standard_scores(before[kept], after[kept])
        return RCAResult(self.name, causes_from_scores(scores), dropped=tuple(dropped))


def standard_scores(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """NSigma: ``max_t (x_t - mean) / std`` over the post-onset rows, mean/std from before.

    A zero std is replaced by 1, as scikit-learn's ``StandardScaler`` (used by RCAEval) does.
    """
    mean = before.mean()
    std = before.std(ddof=0).replace(0.0, 1.0)
    return ((after - mean) / std).max()
