"""Flat series: no finite value, or one value throughout, on a side of the onset.

A flat side gives no scale to score the other against, so every method drops such series
(RCAEval's BARO and NSigma do the same) and says why (pure functions on frames; NaNs ignored).
"""

from __future__ import annotations

import pandas as pd


def flat_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with no value at all or a single distinct value (NaNs ignored)."""
    low, high = frame.min(), frame.max()
    flat = low.isna() | high.isna() | (low == high)
    return [str(c) for c in frame.columns[flat.to_numpy()]]


def flat_reasons(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, str]:
    """Why each flat column is flat: ``empty``/``constant`` ``before``/``after`` the onset.

    >>> import numpy as np
    >>> before = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 3.0], "c": [1.0, 2.0]})
    >>> after = pd.DataFrame({"a": [1.0, 5.0], "b": [3.0, 4.0], "c": [np.nan, np.nan]})
    >>> flat_reasons(before, after)
    {'b': 'constant before the onset', 'c': 'empty after the onset'}
    """
    reasons: dict[str, str] = {}
    for side, frame in (("before", before), ("after", after)):
        empty = frame.isna().all()
        for column in flat_columns(frame):
            state = "empty" if empty[column] else "constant"
            reasons.setdefault(column, f"{state} {side} the onset")
    return {str(c): reasons[str(c)] for c in before.columns if str(c) in reasons}


def drop_flat(before: pd.DataFrame, after: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Columns to keep and columns dropped because they are flat before or after the onset.

    RCAEval's reference BARO and NSigma do the same (``drop_constant`` on each part); without it
    an exactly constant memory series gets a zero spread and outranks every real change.
    """
    dropped = flat_reasons(before, after)
    return [str(c) for c in before.columns if str(c) not in dropped], list(dropped)
