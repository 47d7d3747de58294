"""Series that stop reporting: a crashed or killed process is at zero, not unknown.

A pod that dies takes its series with it: from the crash on, the window holds nothing for
them while the rest of the system keeps reporting. Left as missing values, the strongest sign
of the incident is dropped ("empty after the onset") and the crashed service ranks last. A
series *went silent* when it reported in nearly every row and then misses more than
``max_gap_steps`` rows in a row, counting only rows where three quarters of the series
reporting by then have a value (so a late scrape or a lagging ingest partition silences
nobody). Its silent rows read 0: a dead process serves no request, counts no event and uses no
CPU or memory.
Pure functions on frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# A series "reported regularly" before the onset when at most this share of the live rows
# there miss it: sparse series (an error counter that reports now and then) are not crashes.
REGULAR_MISSING_SHARE = 0.1
# A row is live when at least this share of the series reporting by then have a value in it:
# rows that many series miss are a late scrape or a lagging ingest partition, not crashes. A
# crashed service holding more than a quarter of those series is not seen as silent.
LIVE_SHARE = 0.75


def live_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows where at least ``LIVE_SHARE`` of the series that have reported by then have a
    value (a series that never reports, or first reports later, does not count against a
    row)."""
    present = frame.notna()
    started = present.cummax().sum(axis=1)
    return (present.sum(axis=1) >= LIVE_SHARE * started) & (started > 0)


def silent_rows(
    frame: pd.DataFrame, max_gap_steps: int, since: pd.Timestamp | None = None
) -> pd.DataFrame:
    """``True`` where a series is missing from a live row, in a run of more than
    ``max_gap_steps`` live rows that starts at or after ``since``, having reported in at least
    two and all but ``REGULAR_MISSING_SHARE`` of the live rows before that run. A run that
    began before ``since`` is older than the incident (a series that stopped long ago, an
    older crash): it stays missing. The detect stage passes the onset less its guard band, so
    an onset given up to that many steps after the crash still sees it; without a given onset
    the onset detector sees the silence itself."""
    live = live_rows(frame)
    silent = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    missing = frame.loc[live].isna().to_numpy()
    if missing.size == 0:
        return silent
    forward, length = run_lengths(missing)
    # The first row of the run each missing cell is in.
    start = np.arange(len(missing))[:, None] - forward + 1
    reported = np.vstack([np.zeros((1, missing.shape[1]), int), np.cumsum(~missing, axis=0)])
    reported_before = np.take_along_axis(reported, np.clip(start, 0, None), axis=0)
    regular = (reported_before >= 2) & (
        start - reported_before <= REGULAR_MISSING_SHARE * np.clip(start, 1, None)
    )
    first = 0 if since is None else int(frame.index[live.to_numpy()].searchsorted(since))
    long = missing & (length > max_gap_steps) & regular & (start >= first)
    silent.loc[live.to_numpy()] = long
    return silent


def fill_silence(
    frame: pd.DataFrame, max_gap_steps: int, since: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with the rows of :func:`silent_rows` at 0, and the series that went silent."""
    silent = silent_rows(frame, max_gap_steps, since)
    names = [str(c) for c in frame.columns[silent.any().to_numpy()]]
    return (frame.mask(silent, 0.0), names) if names else (frame, [])


def run_lengths(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a ``(rows, columns)`` boolean array, each cell's place in its run of ``True`` down
    its column (1 on the run's first row) and the run's length (both 0 where ``False``).

    >>> forward, length = run_lengths(np.array([[1, 0], [1, 1], [0, 1], [1, 1]], dtype=bool))
    >>> forward[:, 1].tolist(), length[:, 1].tolist()
    ([0, 1, 2, 3], [0, 3, 3, 3])
    """
    forward = np.zeros(mask.shape, dtype=int)
    backward = np.zeros(mask.shape, dtype=int)
    for row in range(len(mask)):
        previous = forward[row - 1] if row else 0
        forward[row] = np.where(mask[row], previous + 1, 0)
    for row in range(len(mask) - 1, -1, -1):
        following = backward[row + 1] if row + 1 < len(mask) else 0
        backward[row] = np.where(mask[row], following + 1, 0)
    return forward, np.where(mask, forward + backward - 1, 0)
