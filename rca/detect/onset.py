"""When did the incident start: change points across a window's series, aggregated.

``detect_onset(window, not_after=alert_time)`` returns the first row of the incident with a
confidence and how it was found. Pure and deterministic (no randomness, no clock). The steps:

1. **Per-series step score** ``d[k, j]``: for every row ``k``, the robust z-score of series
   ``j``'s next ``PERSIST`` rows against the ``REFERENCE_ROWS`` rows before ``k``, signed the
   same way on all of them: ``d = max(min_p z[k+p], min_p -z[k+p])`` with ``z = (x - median) /
   spread`` and ``spread = max(IQR / 1.349, 5 % |median|, half history's spread)``. The
   minimum over ``PERSIST`` rows makes a one-row spike score nothing and puts the score on the
   first changed row (the start, not when the change became large). The spread has no
   standard deviation of the recent rows: an earlier incident in the reference would inflate
   it and hide the next one (nezha's faults come minutes apart); ``history``, normal by
   contract, gives the floor.
   A quarter of the reference rows at an older level still widen the IQR: a change within
   ``REFERENCE_ROWS / 4`` rows of an earlier shift is found a few rows late.
2. **Hysteresis**: a series' run of rows with ``d >= LOW`` that reaches ``THRESHOLD``
   somewhere counts entirely, as long as ``d`` does not jump by more than ``1 / RATIO`` between
   neighbours: a ramp (a memory leak) is credited from where it left its normal band, a step
   from its first row only.
3. **Evidence per row**: ``E[k] = sum_g max_(j in g) min(log(1 + S[k, j] - THRESHOLD), CAP)``
   over signals ``g``; the cap keeps one series that leaves a flat line (z of thousands) from
   outweighing several that move: an incident shows in several metrics, a glitch in one. A
   signal is one service's metric with one set of attributes (its event rate is another): a
   histogram's percentiles and mean move together and count once, else an earlier latency
   transient weighs four times a memory ramp or a new error rate at the alert.
4. **Episodes**: runs of rows whose evidence stands out (above ``median + 3 MAD`` of all rows
   or of the rows before the run, whichever is lower, at least ``MIN_EVIDENCE``: a leak whose
   evidence lasts for most of the window would raise the first bar itself). Searching back
   from ``not_after`` (an alert fires after its rule's ``for:``, so the change came before
   it), the incident is the **latest** episode starting by then (one row of slack: a change
   sampled late) whose total evidence is at least a share of the largest one's; earlier
   episodes are past incidents or transients. Its start is its first row holding
   ``START_SHARE`` of its peak evidence.

Confidence: ``(1 - exp(-peak / 3)) * mass / (mass + largest other episode's mass)``: high when
the change is strong and nothing else in the search range competes. Nothing standing out: a
fallback (the alert time, or the start of the window's last quarter) with confidence 0.

Constants were chosen on the synthetic sets, the simulators and the tuning fifth of
rcd-sockshop, nezha-ob and petshop (``bench/onset.py --split tune``); ``bench/onset.py``
reports the holdout.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.detect.robust import impute_gaps
from rca.detect.silence import fill_silence
from rca.errors import RCAInputError
from rca.types import parse_series_name
from rca.window import Window, check_window, to_timestamp

MIN_BEFORE = 2  # rows before the onset: what the engine needs to know what is normal
MIN_AFTER = 2  # rows from the onset on: fewer leaves every series flat after it
REFERENCE_ROWS = 30
PERSIST = 3
THRESHOLD = 3.0
LOW = 1.0
RATIO = 0.3
# A signal at z >= 3 + e^3.5 - 1 (about 35) weighs as much as any. Lower caps left a
# one-signal incident (a CPU step of z 78, a new error rate) under the bar of a window busy
# with short multi-service latency bursts: 1.5 (z about 6.5) on the shared sets, 2.5 (z about
# 14) on the 45-service simulator (a tenth of its detected onsets went to an earlier burst).
CAP = 3.5
RELATIVE_FLOOR = 0.05
MIN_EVIDENCE = 0.5
OUTLIER_MADS = 3.0
GAP_ROWS = 1  # a one-row dip inside an episode does not split it
SHARE_WITH_ALERT = 0.15
SHARE_WITHOUT_ALERT = 0.3  # no alert: the latest change must be a larger share to win
START_SHARE = 0.2
SLACK_ROWS = 1
MAX_GAP_STEPS = 3
# Half of normal history's spread floors a series' spread: all of it (routine spikes
# included) hid the small shifts of synthetic-hard's roots and let older episodes win.
HISTORY_SHARE = 0.5
TOP_SERIES = 5
# IQR / 1.349 estimates the standard deviation of normal data.
_IQR_TO_SD = 1.349


@dataclass(frozen=True)
class OnsetEstimate:
    """The first row of the incident, how sure, how it was found and the series that moved."""

    onset: pd.Timestamp
    confidence: float
    method: str
    series: tuple[str, ...] = ()


def detect_onset(
    window: Window,
    *,
    not_after: pd.Timestamp | None = None,
    not_before: pd.Timestamp | None = None,
    history: pd.DataFrame | None = None,
) -> OnsetEstimate:
    """The incident's onset in ``window`` (see the module docstring).

    ``not_after``: the alert time, an upper bound (the first row at or after it may be the
    onset); ``not_before``: a lower bound; ``history``: normal data with the same columns (its
    spread floors each series' spread). The onset leaves at least ``MIN_BEFORE`` rows before it
    and ``MIN_AFTER`` from it on. Raises :class:`RCAInputError` only when no row can be the
    onset (too few rows, bounds outside the window or crossed).
    """
    check_window(window)
    lo, hi = _search_range(window.index, not_after, not_before)
    frame = _numeric(window)
    if frame.shape[1] == 0:
        return _fallback(window.index, lo, hi, not_after is not None)
    step = step_scores(frame, history)
    evidence = row_evidence(step, signals(frame.columns))
    found = _latest_episode(evidence, lo, hi, not_after is not None)
    if found is None:
        return _fallback(window.index, lo, hi, not_after is not None)
    start, end, confidence = found
    return OnsetEstimate(
        onset=window.index[start],
        confidence=confidence,
        method="change-point",
        series=_movers(frame.columns, step, start, end),
    )


def _search_range(
    index: pd.DatetimeIndex, not_after: pd.Timestamp | None, not_before: pd.Timestamp | None
) -> tuple[int, int]:
    """Rows ``lo..hi`` (inclusive) that may be the onset."""
    n = len(index)
    if n < MIN_BEFORE + MIN_AFTER:
        raise RCAInputError(
            f"a window of {n} rows is too short to find an onset: it needs at least "
            f"{MIN_BEFORE + MIN_AFTER} ({MIN_BEFORE} before the onset, {MIN_AFTER} from it on)"
        )
    lo, hi = MIN_BEFORE, n - MIN_AFTER
    if not_after is not None:
        # The first row at or after the alert: its sample may hold the change.
        hi = min(hi, int(index.searchsorted(to_timestamp(not_after), side="left")))
    if not_before is not None:
        lo = max(lo, int(index.searchsorted(to_timestamp(not_before), side="left")))
    if lo > hi:
        raise RCAInputError(
            f"no row of the window ({index[0].isoformat()} .. {index[-1].isoformat()}) can be "
            f"the onset between not_before={not_before} and not_after={not_after}: it needs "
            f"{MIN_BEFORE} rows before the onset and {MIN_AFTER} from it on"
        )
    return lo, hi


def _is_rate(name: str) -> bool:
    try:
        return parse_series_name(name).stat == "rate"
    except ValueError:
        return False


def _numeric(window: Window) -> pd.DataFrame:
    """Float values, short gaps filled, series with fewer than 3 values or one value dropped.

    An event rate is 0 before its first report: OpenTelemetry SDKs create a counter's
    attribute set at its first event, so a ``status_code=500`` series appearing is a change.
    A series that stops reporting is 0 from then on (:mod:`rca.detect.silence`).
    """
    frame = window.apply(pd.to_numeric, errors="coerce").astype(float)
    frame = frame.replace([np.inf, -np.inf], np.nan)
    rates = [c for c in frame.columns if _is_rate(str(c))]
    if rates:
        reported = frame[rates].notna().cumsum() > 0
        frame[rates] = frame[rates].mask(~reported, 0.0)
    frame = impute_gaps(fill_silence(frame, MAX_GAP_STEPS)[0], MAX_GAP_STEPS)
    varies = (frame.notna().sum() >= 3) & (frame.max() > frame.min())
    return frame.loc[:, varies.to_numpy()]


def step_scores(frame: pd.DataFrame, history: pd.DataFrame | None = None) -> np.ndarray:
    """``d[k, j] >= 0``: how far series ``j``'s rows ``k .. k+PERSIST-1`` all sit on one side
    of its median over the ``REFERENCE_ROWS`` rows before ``k``, in spreads (0 where unknown)."""
    rolling = frame.rolling(REFERENCE_ROWS, min_periods=MIN_BEFORE)
    center = rolling.median().shift(1).to_numpy()
    iqr = (rolling.quantile(0.75) - rolling.quantile(0.25)).shift(1).to_numpy() / _IQR_TO_SD
    spread = np.fmax(iqr, np.abs(center) * RELATIVE_FLOOR)
    if history is not None:
        floor = HISTORY_SHARE * _history_spread(history, frame.columns)
        spread = np.fmax(spread, floor[None, :])
    spread = np.fmax(spread, 1e-9)
    values = frame.to_numpy()
    n = len(values)
    z = np.full((PERSIST, *values.shape), np.nan)
    for offset in range(min(PERSIST, n)):
        z[offset, : n - offset] = (values[offset:] - center[: n - offset]) / spread[: n - offset]
    with warnings.catch_warnings():
        # All-NaN slices (no reference yet, long gaps) warn and give NaN: no evidence.
        warnings.simplefilter("ignore", RuntimeWarning)
        up = np.nanmin(z, axis=0)
        down = np.nanmin(-z, axis=0)
    return np.nan_to_num(np.fmax(up, down), nan=0.0).clip(min=0.0)


def _history_spread(history: pd.DataFrame, columns: pd.Index) -> np.ndarray:
    """``max(IQR / 1.349, standard deviation)`` of each series in normal history (0 where it
    has fewer than 5 values). The standard deviation belongs here: routine spikes of normal
    operation are not incidents."""
    normal = history.reindex(columns=columns).apply(pd.to_numeric, errors="coerce")
    normal = normal.astype(float)
    normal = normal.loc[:, (normal.notna().sum() >= 5).to_numpy()]
    iqr = (normal.quantile(0.75) - normal.quantile(0.25)) / _IQR_TO_SD
    spread = np.fmax(iqr, normal.std(ddof=0)).reindex(columns)
    return np.nan_to_num(spread.to_numpy(dtype=float), nan=0.0)


def _hysteresis(step: np.ndarray) -> np.ndarray:
    """Each row of a run above ``LOW`` carries the run's strongest score if it reaches
    ``THRESHOLD``, as long as neighbours keep within a factor ``1 / RATIO`` (0 elsewhere)."""
    held = np.where(step >= THRESHOLD, step, 0.0)
    low = step >= LOW
    for row in range(len(step) - 2, -1, -1):
        joined = low[row] & (step[row] >= RATIO * step[row + 1])
        held[row] = np.where(joined, np.fmax(held[row], held[row + 1]), held[row])
    for row in range(1, len(step)):
        joined = low[row] & (step[row] >= RATIO * step[row - 1])
        held[row] = np.where(joined, np.fmax(held[row], held[row - 1]), held[row])
    return held


def signals(columns: pd.Index) -> np.ndarray:
    """A signal id per column: one service's metric with one set of attributes is one signal
    (a histogram's percentiles and mean move together), its event rate another."""
    ids: dict[tuple, int] = {}
    out = []
    for name in columns:
        try:
            key = parse_series_name(str(name))
            signal: tuple = (key.service, key.metric, key.stat == "rate", key.attrs)
        except ValueError:
            signal = (str(name),)
        out.append(ids.setdefault(signal, len(ids)))
    return np.asarray(out, dtype=int)


def row_evidence(step: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """``E[k] = sum_g max_(j in g) min(log(1 + S[k, j] - THRESHOLD), CAP)`` over series in a
    run, ``g`` the signals: ``signal[j]`` is series ``j``'s (:func:`signals`)."""
    held = _hysteresis(step)
    each = np.fmin(np.log1p(np.clip(held - THRESHOLD, 0.0, None)), CAP)
    order = np.argsort(signal, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(signal[order]) != 0])
    return np.maximum.reduceat(each[:, order], starts, axis=1).sum(axis=1)


def _bar(before: np.ndarray) -> float:
    """``median + OUTLIER_MADS * MAD`` of ``before`` (at least ``MIN_EVIDENCE``)."""
    if len(before) < MIN_BEFORE:
        return MIN_EVIDENCE
    center = float(np.median(before))
    mad = float(np.median(np.abs(before - center))) * 1.4826
    return max(MIN_EVIDENCE, center + OUTLIER_MADS * mad)


def standout(evidence: np.ndarray) -> np.ndarray:
    """Whether each row's evidence stands out: above the bar of all rows, or of the rows before
    its run (a run keeps the bar of its first row, through one-row dips of ``GAP_ROWS``), once
    ``REFERENCE_ROWS`` rows precede it. Judged against all rows only, an incident that lasts
    for much of the window (a leak's plateau) raises its own bar and hides itself; against
    earlier rows only, a window that opens busy hides a later change, and a few first rows say
    too little about what is usual (a run that started there would keep their low bar)."""
    overall = _bar(evidence)
    above = np.zeros(len(evidence), dtype=bool)
    bar, last = MIN_EVIDENCE, None
    for row, value in enumerate(evidence):
        if last is None or row - last > GAP_ROWS + 1:
            earlier = _bar(evidence[:row]) if row >= REFERENCE_ROWS else overall
            bar = min(overall, earlier)
        if value > bar:
            above[row], last = True, row
    return above


def _episodes(evidence: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows whose evidence stands out, as ``(first, last)``."""
    above = standout(evidence)
    runs: list[tuple[int, int]] = []
    for row in np.flatnonzero(above):
        if runs and row - runs[-1][1] <= GAP_ROWS + 1:
            runs[-1] = (runs[-1][0], int(row))
        else:
            runs.append((int(row), int(row)))
    return runs


def _latest_episode(
    evidence: np.ndarray, lo: int, hi: int, alerted: bool
) -> tuple[int, int, float] | None:
    """``(start, end, confidence)`` of the incident's episode, or ``None``."""
    # One row of slack each side: a change sampled a row late, an episode's noisy first row.
    runs = [(a, b) for a, b in _episodes(evidence) if lo - SLACK_ROWS <= a <= hi + SLACK_ROWS]
    if not runs:
        return None
    mass = [float(evidence[a : b + 1].sum()) for a, b in runs]
    share = SHARE_WITH_ALERT if alerted else SHARE_WITHOUT_ALERT
    pick = max(i for i, m in enumerate(mass) if m >= share * max(mass))
    first, last = runs[pick]
    peak = float(evidence[first : last + 1].max())
    start = first + int(np.argmax(evidence[first : last + 1] >= START_SHARE * peak))
    rival = max((m for i, m in enumerate(mass) if i != pick), default=0.0)
    confidence = (1.0 - np.exp(-peak / 3.0)) * mass[pick] / (mass[pick] + rival)
    return min(max(start, lo), hi), last, float(confidence)


def _movers(columns: pd.Index, step: np.ndarray, start: int, end: int) -> tuple[str, ...]:
    """The series with the strongest step scores in the episode, strongest first."""
    strongest = step[start : end + 1].max(axis=0)
    order = np.argsort(-strongest, kind="stable")
    return tuple(str(columns[j]) for j in order[:TOP_SERIES] if strongest[j] >= THRESHOLD)


def _fallback(index: pd.DatetimeIndex, lo: int, hi: int, alerted: bool) -> OnsetEstimate:
    """No change stands out: the alert time, else the start of the window's last quarter."""
    if alerted:
        return OnsetEstimate(index[hi], 0.0, "fallback:alert-time")
    row = min(max(len(index) - len(index) // 4, lo), hi)
    return OnsetEstimate(index[row], 0.0, "fallback:last-quarter")
