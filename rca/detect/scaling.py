"""Per-series anomaly scores against the pre-onset period (pure functions on frames).

Convention: a score is signed and higher means further above normal, as in RCAEval's NSigma and
BARO (``max`` of the scaled post-onset values). NaNs are ignored; a series with no finite value
on one side of the onset, or the same value throughout one side, is *flat* and not scored.
"""

from __future__ import annotations

import pandas as pd


def flat_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with no value at all or a single distinct value (NaNs ignored)."""
    low, high = frame.min(), frame.max()
    flat = low.isna() | high.isna() | (low == high)
    return [str(c) for c in frame.columns[flat.to_numpy()]]


def drop_flat(before: pd.DataFrame, after: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Columns to keep and columns dropped because they are flat before or after the onset.

    RCAEval's reference BARO and NSigma do the same (``drop_constant`` on each part); without it
    an exactly constant memory series gets a zero spread and outranks every real change.
    """
    dropped = set(flat_columns(before)) | set(flat_columns(after))
    kept = [str(c) for c in before.columns if str(c) not in dropped]
    return kept, [str(c) for c in before.columns if str(c) in dropped]


def standard_scores(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """NSigma: ``max_t (x_t - mean) / std`` over the post-onset rows, mean/std from before.

    A zero std is replaced by 1, as scikit-learn's ``StandardScaler`` (used by RCAEval) does.
    """
    mean = before.mean()
    std = before.std(ddof=0).replace(0.0, 1.0)
    return ((after - mean) / std).max()


def robust_scores(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """BARO's RobustScorer: ``max_t (x_t - median) / IQR`` over the post-onset rows.

    Median and IQR (75th - 25th percentile) come from the pre-onset rows (Pham et al., FSE'24).
    A zero IQR is replaced by 1, as scikit-learn's ``RobustScaler`` (used by BARO) does; that
    is BARO's known weak spot on near-constant series, kept here on purpose.
    """
    median = before.median()
    iqr = (before.quantile(0.75) - before.quantile(0.25)).replace(0.0, 1.0)
    return ((after - median) / iqr).max()
