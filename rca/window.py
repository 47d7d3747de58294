"""The window contract: the one DataFrame that crosses stage boundaries.

A window is a ``pandas.DataFrame`` with a ``DatetimeIndex`` in UTC at a fixed step, one float
column per series (named by :func:`rca.types.series_name`), and NaN where a sample is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.errors import RCAInputError

Window = pd.DataFrame

# Unix times above this are in milliseconds (1e11 s is the year 5138).
_MILLIS_THRESHOLD = 1e11


def to_timestamp(value: object) -> pd.Timestamp:
    """A UTC timestamp from unix seconds (or milliseconds), an ISO string or a datetime."""
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "tzinfo"):
        stamp = pd.Timestamp(value)
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            try:
                stamp = pd.Timestamp(str(value))
            except (ValueError, TypeError) as exc:
                raise RCAInputError(f"cannot read {value!r} as a time") from exc
        else:
            if not np.isfinite(number):
                raise RCAInputError(f"cannot read {value!r} as a time")
            unit = "ms" if abs(number) > _MILLIS_THRESHOLD else "s"
            stamp = pd.Timestamp(number, unit=unit)
    if stamp is pd.NaT:
        raise RCAInputError(f"cannot read {value!r} as a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def to_datetime_index(values: pd.Series | np.ndarray | list) -> pd.DatetimeIndex:
    """UTC index from a column of unix seconds/milliseconds or date strings."""
    series = pd.Series(values)
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all():
        unit = "ms" if numeric.abs().max() > _MILLIS_THRESHOLD else "s"
        return pd.DatetimeIndex(pd.to_datetime(numeric.to_numpy(dtype=float), unit=unit, utc=True))
    try:
        return pd.DatetimeIndex(pd.to_datetime(series, utc=True, format="mixed"))
    except (ValueError, TypeError) as exc:
        raise RCAInputError(f"the time column has values that are not times: {exc}") from exc


def infer_step_seconds(index: pd.DatetimeIndex) -> float:
    """Median spacing of distinct sample times."""
    seconds = np.unique(index.as_unit("ns").asi8) / 1e9
    if seconds.size < 2:
        raise RCAInputError("a window needs at least two distinct sample times")
    return float(np.median(np.diff(seconds)))


def align(frame: pd.DataFrame, step_seconds: float | None = None) -> Window:
    """Resample samples indexed by time onto a fixed UTC grid.

    Each sample goes to the nearest grid point; samples sharing a point are averaged; grid points
    without a sample are NaN. The grid's phase follows the samples (the median of ``t mod step``)
    so that a scraper sampling at ``:19.6`` every minute does not straddle two grid points.
    Non-numeric values become NaN, infinities too.
    """
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise RCAInputError("a window needs a DatetimeIndex")
    if frame.empty:
        raise RCAInputError("the window has no rows")
    index = frame.index.tz_localize("UTC") if frame.index.tz is None else frame.index
    index = index.tz_convert("UTC").as_unit("ns")
    step = float(step_seconds) if step_seconds else infer_step_seconds(index)
    if step <= 0:
        raise RCAInputError(f"step must be positive, got {step}")
    step_ns = round(step * 1e9)
    ns = index.asi8
    phase = int(np.median(ns % step_ns))
    if step >= 1:
        phase = round(phase / 1e9) * 10**9  # whole seconds read better and lose nothing
    bins = np.round((ns - phase) / step_ns).astype(np.int64)
    values = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    values = values.replace([np.inf, -np.inf], np.nan)
    values.index = pd.Index(bins, name="bin")
    grouped = values.groupby(level=0, sort=True).mean()
    full = np.arange(bins.min(), bins.max() + 1, dtype=np.int64)
    grouped = grouped.reindex(full)
    grid = pd.DatetimeIndex(
        pd.to_datetime(full * step_ns + phase, unit="ns", utc=True), name="time"
    )
    grouped.index = grid
    grouped.columns = [str(c) for c in grouped.columns]
    return grouped


def check_window(window: Window) -> None:
    """Raise :class:`RCAInputError` unless ``window`` honours the contract."""
    if not isinstance(window, pd.DataFrame):
        raise RCAInputError(f"a window is a pandas DataFrame, got {type(window).__name__}")
    if not isinstance(window.index, pd.DatetimeIndex) or window.index.tz is None:
        raise RCAInputError("a window is indexed by a UTC DatetimeIndex")
    if window.shape[1] == 0:
        raise RCAInputError("the window has no series")
    if len(window.index) < 2:
        raise RCAInputError("the window needs at least two rows")
    if not window.index.is_monotonic_increasing or window.index.has_duplicates:
        raise RCAInputError("the window's time index must be increasing without duplicates")
    if window.columns.has_duplicates:
        dupes = sorted(set(window.columns[window.columns.duplicated()]))
        raise RCAInputError(f"the window has duplicate series: {dupes[:5]}")


def split_at_onset(window: Window, onset: pd.Timestamp) -> tuple[Window, Window]:
    """Rows strictly before ``onset`` and rows at or after it; both must be non-empty."""
    check_window(window)
    onset = to_timestamp(onset)
    first, last = window.index[0], window.index[-1]
    if onset <= first or onset > last:
        raise RCAInputError(
            f"the onset {onset.isoformat()} is outside the window "
            f"({first.isoformat()} .. {last.isoformat()}): it needs rows before and after it"
        )
    before = window.loc[window.index < onset]
    after = window.loc[window.index >= onset]
    return before, after
