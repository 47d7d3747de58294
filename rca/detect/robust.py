"""The detect stage of ``run``: robust anomaly evidence per series (pure functions on frames).

Contract (:class:`rca.detect.base.Detector`): the input is a window (see :mod:`rca.window`)
and the onset; the output is :class:`rca.types.AnomalyScores`, higher = more anomalous, never
NaN for a kept series. Series that are empty, or constant before or after the onset, are
dropped with the reason, not scored, with two exceptions, both the clearest sign of a change:
- an event rate (stat ``rate``) that counted nothing before the onset (no value, or only 0) and
  something after it. OpenTelemetry SDKs create a counter's attribute set at its first event,
  so a ``status_code=500`` series that appears with the fault had a rate of 0 before it;
- a series that reported one non-zero value in nearly every row before the onset and left it
  (a success ratio at 100 % that falls, a memory limit that steps): with no noise to measure,
  its own size sets its scale (the relative floor), so 5 % of its level is one unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.detect.flat import flat_reasons
from rca.detect.silence import REGULAR_MISSING_SHARE, fill_silence
from rca.errors import RCAInputError
from rca.types import AnomalyScores, parse_series_name
from rca.window import Window

# 1.4826 * MAD and IQR / 1.349 estimate the standard deviation of normal data.
_MAD_TO_SD = 1.4826
_IQR_TO_SD = 1.349
# Routine spikes may widen a series' scale to this many robust scales, no further (chosen on
# the tuning splits: 2 and 3 lost PetShop cases, 3 and 5 gained the same Nezha ones).
STD_CAP = 5.0


def impute_gaps(frame: pd.DataFrame, max_gap_steps: int) -> pd.DataFrame:
    """Linear interpolation inside gaps of at most ``max_gap_steps`` rows, then carry the
    edge values over as many rows; longer gaps stay NaN (a missing scrape is not a zero)."""
    filled = frame.interpolate(limit=max_gap_steps, limit_area="inside")
    return filled.ffill(limit=max_gap_steps).bfill(limit=max_gap_steps)


def robust_spread(before: pd.DataFrame, relative_floor: float) -> tuple[pd.Series, pd.Series]:
    """Center (median) and spread of the pre-onset rows, with floors.

    ``spread = max(r, min(std, STD_CAP * r), relative_floor * |median|, 1e-9)`` with the robust
    scale ``r = max(1.4826 MAD, IQR / 1.349)``; where the MAD is 0 (most rows sit on one value)
    the standard deviation counts whole. The robust estimates ignore the rare spikes of a
    series that mostly sits on one value (bytes of memory, a request count that is mostly 0,
    an error rate mostly 0 with some small chatter), so alone they turn any later step into an
    enormous score: BARO's IQR = 0 failure. The standard deviation keeps routine spikes in
    the spread (a series that often jumps is not alarming when it jumps again), but at most
    ``STD_CAP`` robust scales: beyond that it is a few extreme rows (an earlier incident in
    the reference, a scrape glitch), which would blind the series to the next change. The
    relative floor keeps a flat series' own size as its smallest scale.
    """
    center = before.median()
    mad = (before - center).abs().median() * _MAD_TO_SD
    iqr = (before.quantile(0.75) - before.quantile(0.25)) / _IQR_TO_SD
    robust = pd.concat([mad, iqr], axis=1).max(axis=1)
    std = before.std(ddof=0).fillna(0.0)
    # "Zero" up to rounding: the median of a column of one repeated value is off by ~1e-18.
    flat_bulk = mad <= 1e-9 * center.abs().clip(lower=1.0)
    spiky = std.where(flat_bulk, pd.concat([std, STD_CAP * robust], axis=1).min(axis=1))
    floor = (center.abs() * relative_floor).clip(lower=1e-9)
    spread = pd.concat([robust, spiky, floor], axis=1).max(axis=1)
    return center, spread


def floored(noise: pd.Series, center: pd.Series, relative_floor: float) -> pd.Series:
    """A spread from :func:`robust_spread` with ``relative_floor=0`` raised to another relative
    floor: the same as asking :func:`robust_spread` for that floor, without the statistics
    again."""
    return pd.concat([noise, center.abs() * relative_floor], axis=1).max(axis=1)


def sustained(abs_z: pd.DataFrame, persist: int) -> pd.DataFrame:
    """``min`` of ``|z|`` over each run of ``persist`` rows starting at that row."""
    if persist <= 1:
        return abs_z
    return abs_z[::-1].rolling(persist, min_periods=1).min()[::-1]


def _rate_family(name: str) -> tuple[str, str] | None:
    """``(service, metric)`` of an event-rate series name; ``None`` for any other series."""
    try:
        key = parse_series_name(name)
    except ValueError:
        return None
    return (key.service, key.metric) if key.stat == "rate" else None


def appeared_rates(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """Event-rate series with no value or only 0 before the onset and a non-zero one after it."""
    idle_before = before.columns[(before.fillna(0.0) == 0).all().to_numpy()]
    return [
        str(c)
        for c in idle_before
        if _rate_family(str(c)) is not None and (after[c].abs() > 0).any()
    ]


def left_constant(
    before: pd.DataFrame, after: pd.DataFrame, dropped: dict[str, str], min_rows: int = 8
) -> list[str]:
    """Series ``dropped`` as constant before the onset that held their one value, not 0, in
    nearly every row before it and in at least ``min_rows`` rows, and take another value after
    it. A constant 0 has no size to scale a change by; a value reported once, now and then or
    in two rows is a sample, not a level.

    >>> before = pd.DataFrame({"ok": [100.0] * 4, "up": [1.0] * 4, "once": [7, None, None, None]})
    >>> after = pd.DataFrame({"ok": [97.0, 100.0], "up": [1.0, 1.0], "once": [9.0, 3.0]})
    >>> left_constant(before, after, flat_reasons(before, after), min_rows=4)
    ['ok']
    >>> left_constant(before, after, flat_reasons(before, after))
    []
    """
    reported = before.notna().sum()
    regular = max(float(min_rows), (1.0 - REGULAR_MISSING_SHARE) * len(before))
    moved = []
    for name, why in dropped.items():
        if why != "constant before the onset" or reported[name] < regular:
            continue
        value = before[name].dropna().iloc[0]
        if value != 0 and ((after[name] - value).abs() > 0).any():
            moved.append(name)
    return moved


def appeared_spread(
    appeared: list[str], before: pd.DataFrame, relative_floor: float, step_seconds: float
) -> pd.Series:
    """The scale of a rate that was 0: ``relative_floor`` times the pre-onset rate of the same
    metric at the same service under its other attributes (the traffic the new series is a
    share of, e.g. the ``status_code=200`` requests beside a new ``500`` series), so 5 % of the
    traffic failing is one unit; one event per step where the service had no such traffic."""
    traffic: dict[tuple[str, str], float] = {}
    for column in before.columns:
        family = _rate_family(str(column))
        if family is not None and str(column) not in appeared:
            median = before[column].median()
            if median == median:  # not NaN
                traffic[family] = traffic.get(family, 0.0) + abs(float(median))
    spread = {}
    for name in appeared:
        share = relative_floor * traffic.get(_rate_family(name), 0.0)  # type: ignore[arg-type]
        spread[name] = share if share > 0 else 1.0 / step_seconds
    return pd.Series(spread, dtype=float)


@dataclass(frozen=True)
class RobustDetector:
    """Robust z-scores against the pre-onset rows (:func:`robust_spread`), the sustained
    strength ``max_t min(|z_t|, ..., |z_{t+persist-1}|)`` after the onset, and the first row
    at or after ``onset - lookback_steps`` from which ``|z|`` stays at or above
    ``change_threshold`` for ``persist`` rows (the change time)."""

    max_gap_steps: int = 3
    relative_floor: float = 0.05
    persist: int = 2
    change_threshold: float = 4.0
    lookback_steps: int = 2
    guard: bool = True

    def score(self, window: Window, onset: pd.Timestamp) -> AnomalyScores:
        return gather_evidence(
            window,
            onset,
            max_gap_steps=self.max_gap_steps,
            relative_floor=self.relative_floor,
            persist=self.persist,
            threshold=self.change_threshold,
            lookback_steps=self.lookback_steps,
            guard=self.guard,
        )


def gather_evidence(
    window: Window,
    onset: pd.Timestamp,
    *,
    max_gap_steps: int = 3,
    relative_floor: float = 0.05,
    persist: int = 2,
    threshold: float = 4.0,
    lookback_steps: int = 2,
    guard: bool = True,
) -> AnomalyScores:
    """Robust z-scores against the pre-onset rows, sustained strength and change times."""
    # Silences from the guard band on: an older crash, restarted, stays out of "normal".
    step = window.index[1] - window.index[0] if len(window.index) > 1 else pd.Timedelta(0)
    window, silenced = fill_silence(window, max_gap_steps, onset - lookback_steps * step)
    before = window.loc[window.index < onset]
    after = window.loc[window.index >= onset]
    appeared = appeared_rates(before, after)
    if appeared:
        # Nothing was counted before the first report: 0, on both sides of the onset.
        before, after = before.copy(), after.copy()
        before[appeared] = 0.0
        after[appeared] = after[appeared].where(after[appeared].notna().cumsum() > 0, 0.0)
    # Each side is imputed on its own: a value after the onset must not fill a gap before it.
    before = impute_gaps(before, max_gap_steps)
    after = impute_gaps(after, max_gap_steps)
    filled = pd.concat([before, after])
    if len(before) < 2:
        raise RCAInputError(
            f"only {len(before)} row(s) before the onset: need at least 2 to know what is normal"
        )
    dropped = flat_reasons(before.drop(columns=appeared), after.drop(columns=appeared))
    for name in silenced:  # at 0 from the crash on: that is the change, not a flat line
        if dropped.get(name) == "constant after the onset":
            del dropped[name]
    # The fewest rows that define normal: what the guard band must leave, and what makes a level.
    normal_rows = max(2, lookback_steps * 4)
    moved = left_constant(before, after, dropped, normal_rows)
    for name in moved:
        del dropped[name]
    kept = [str(c) for c in before.columns if str(c) not in dropped and str(c) not in appeared]
    kept += appeared
    if not kept:
        raise RCAInputError("every series is empty or constant on one side of the onset")
    step = after.index[0] - before.index[-1]
    start = after.index[0] - lookback_steps * step
    # An onset is known to a few steps at best (an alert's detector, a late scrape): the rows
    # just before it neither define normal nor hide a change, if enough rows remain without them.
    reference = before.loc[before.index < start]
    if len(reference) < normal_rows or not guard:
        reference, start_strength = before, after.index[0]
    else:
        start_strength = start
    center, noise = robust_spread(reference[kept], 0.0)
    spread = floored(noise, center, relative_floor)
    if appeared:
        spread[appeared] = appeared_spread(appeared, before, relative_floor, step.total_seconds())
        noise[appeared] = spread[appeared]
    # No noise was seen: its surprise is its floored strength, not a division by ~0.
    noise[moved] = spread[moved]
    persist = min(persist, len(after))

    def sustained_after(scale: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        z = (filled[kept] - center) / scale
        hold = sustained(z.abs(), persist)
        return z, hold, hold.loc[hold.index >= start_strength].max().fillna(0.0)

    z, hold, strength = sustained_after(spread)
    surprise = sustained_after(noise)[2]
    candidates = hold.loc[hold.index >= start] >= threshold
    first = candidates.idxmax().where(candidates.any())
    return AnomalyScores(
        z=z, strength=strength, changed_at=first, dropped=dropped, surprise=surprise
    )


def service_onsets(changed_at: pd.Series, service_of_series: pd.Series) -> pd.Series:
    """A service changed when its earliest series changed (NaT if none did)."""
    return changed_at.groupby(service_of_series).min()


def as_unit_interval(strength: pd.Series, scale: float) -> pd.Series:
    """Map a non-negative strength to ``[0, 1)``: ``1 - exp(-s / scale)``."""
    return 1.0 - np.exp(-strength.clip(lower=0.0) / scale)
