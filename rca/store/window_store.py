"""Bounded, aligned storage of recent samples, sliced into windows (``rca.window`` contract).

Time is cut into steps of ``step_seconds`` (a sample at ``t`` belongs to step
``floor(t / step)``, shown at the step's start). The store keeps the last ``retention / step``
steps as a ring: one float64 row per series, one column per ring slot, and one shared array
saying which step each slot holds. Memory is 8 bytes per series per step plus per-series
bookkeeping; nothing grows with time. A sample for a step already held overwrites it (the same
key and time always give the same value, so re-delivered records change nothing); samples older
than the ring are dropped and counted.

Every sample written is stored or dropped and counted (:class:`WriteResult`): NaN or infinite
values (a window holds levels; NaN means "no sample"), times after the caller's clock or past
int64 nanoseconds, steps older than the ring, and series the store refuses: beyond
``max_series``, or named in more than :data:`MAX_NAME_CHARS` characters. Memory is thus bounded
by ``max_series`` whatever arrives.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.errors import RCAInputError
from rca.types import SeriesTuple, series_name
from rca.window import Window, check_window, to_timestamp

_MIN_ROWS = 64
_GROWTH = 1.25  # grow rows by a quarter: at most 25 % idle memory, amortised copies
# Longer series names are refused: a megabyte attribute value must not become a megabyte key.
MAX_NAME_CHARS = 4096
_INT64_END = 2**63


class WindowTooLarge(RCAInputError):
    """A window request over the store's cap on series x steps."""


@dataclass(frozen=True)
class WriteResult:
    """What became of the samples of one write; the fields add up to the samples given."""

    stored: int = 0
    too_old: int = 0
    too_new: int = 0
    non_finite: int = 0
    refused: int = 0  # series beyond max_series, or with too long a name


class WindowStore:
    """Recent samples of every series; thread-safe (one writer, any number of readers)."""

    def __init__(
        self,
        step_seconds: float = 1.0,
        retention_seconds: float = 3600.0,
        max_series: int | None = None,
    ) -> None:
        if step_seconds <= 0 or retention_seconds < step_seconds:
            raise ValueError("need 0 < step_seconds <= retention_seconds")
        self.step_seconds = step_seconds
        self.max_series = max_series
        self.step_ns = round(step_seconds * 1e9)
        self.slots = math.ceil(retention_seconds / step_seconds)
        self._rows: dict[SeriesTuple, int] = {}
        self._names: list[str] = []
        self._services: list[str] = []
        self._values = np.full((0, self.slots), np.nan)
        self._slot_step = np.full(self.slots, -1, dtype=np.int64)
        self._head = -1  # newest step held; -1 before the first sample
        self._lock = threading.Lock()

    @property
    def retention_seconds(self) -> float:
        return self.slots * self.step_seconds

    @property
    def nbytes(self) -> int:
        """Bytes of the sample arrays (the part that scales with series x retention)."""
        return int(self._values.nbytes + self._slot_step.nbytes)

    @property
    def series_count(self) -> int:
        return len(self._names)

    def series(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def services(self) -> list[str]:
        with self._lock:
            return sorted(set(self._services))

    def newest(self) -> pd.Timestamp | None:
        """Start of the newest step held, or ``None`` when empty."""
        with self._lock:
            return None if self._head < 0 else pd.Timestamp(self._head * self.step_ns, tz="UTC")

    def write(
        self,
        keys: Sequence[SeriesTuple],
        times_ns: Sequence[int],
        values: Sequence[float],
        max_time_ns: int | None = None,
    ) -> WriteResult:
        """Store samples; samples after ``max_time_ns`` (a clock the caller trusts) are dropped
        so that one point stamped far in the future cannot wipe the ring."""
        if not keys:
            return WriteResult()
        data = np.asarray(values, dtype=np.float64)
        times, fits = _nanoseconds(times_ns)
        finite = np.isfinite(data)
        fresh = fits if max_time_ns is None else fits & (times <= max_time_ns)
        keep = finite & fresh
        non_finite = len(keys) - int(finite.sum())
        too_new = int((finite & ~fresh).sum())
        if not keep.all():
            taken = np.flatnonzero(keep)
            keys = [keys[i] for i in taken]
            times, data = times[taken], data[taken]
        with self._lock:
            known = self._rows.get
            found = [known(key, -1) for key in keys]
            if -1 in found:
                found = [self._row(k) if r < 0 else r for r, k in zip(found, keys, strict=True)]
            self._reserve()  # also after a write that raised part-way through naming rows
            rows = np.array(found, dtype=np.int64)
            placed = rows >= 0
            refused = len(rows) - int(placed.sum())
            if refused:
                rows, times, data = rows[placed], times[placed], data[placed]
            steps = times // self.step_ns
            if len(steps):
                self._advance(int(steps.max()))
            keep = steps > self._head - self.slots
            self._values[rows[keep], steps[keep] % self.slots] = data[keep]
            stored = int(keep.sum())
            return WriteResult(stored, len(steps) - stored, too_new, non_finite, refused)

    def window(
        self,
        start: object,
        end: object,
        services: Iterable[str] | None = None,
        max_cells: int | None = None,
    ) -> Window:
        """Samples in ``[start, end]`` of ``services`` (all when ``None``) as a window: one
        column per series that has a sample there, NaN where a step has none.

        Raises ``RCAInputError`` (via :func:`rca.window.check_window`) when fewer than two
        steps or no series fall in the range, :class:`WindowTooLarge` when the series asked
        for times the steps in the range exceed ``max_cells``.
        """
        start_ns = to_timestamp(start).value
        end_ns = to_timestamp(end).value
        wanted = None if services is None else set(services)
        with self._lock:
            first = max(-(-start_ns // self.step_ns), self._head - self.slots + 1)
            last = min(end_ns // self.step_ns, self._head)
            steps = np.arange(first, last + 1, dtype=np.int64) if last >= first else np.arange(0)
            rows = [
                row
                for row, service in enumerate(self._services)
                if wanted is None or service in wanted
            ]
            if max_cells is not None and len(rows) * len(steps) > max_cells:
                raise WindowTooLarge(
                    f"{len(rows)} series x {len(steps)} steps is over the cap of {max_cells} "
                    "cells: ask for fewer services or a shorter range"
                )
            names = [self._names[row] for row in rows]
            slots = steps % self.slots
            block = self._values[np.ix_(rows, slots)] if rows else np.empty((0, len(steps)))
            stale = self._slot_step[slots] != steps
            block[:, stale] = np.nan
        index = pd.DatetimeIndex(pd.to_datetime(steps * self.step_ns, unit="ns", utc=True))
        frame = pd.DataFrame(block.T, index=index.rename("time"), columns=names)
        frame = frame.loc[:, frame.notna().any(axis=0)]
        check_window(frame)
        return frame

    def _row(self, key: SeriesTuple) -> int:
        """The row of ``key``, made when new; -1 when the store refuses the series."""
        row = self._rows.get(key)
        if row is None:
            if self.max_series is not None and len(self._names) >= self.max_series:
                return -1
            service, metric, stat, attrs = key
            name = series_name(service, metric, stat, dict(attrs))
            if len(name) > MAX_NAME_CHARS:
                return -1
            row = len(self._names)
            self._rows[key] = row
            self._names.append(name)
            self._services.append(service)
        return row

    def _reserve(self) -> None:
        """Rows for every series named: grown once per write, however many are new (one copy
        of the array, not one per quarter of growth), never past ``max_series``."""
        have, need = self._values.shape[0], len(self._names)
        if need <= have:
            return
        grown = max(_MIN_ROWS, need, math.ceil(have * _GROWTH))
        if self.max_series is not None:
            grown = min(grown, max(need, self.max_series))
        values = np.full((grown, self.slots), np.nan)
        values[:have] = self._values
        self._values = values

    def _advance(self, step: int) -> None:
        """Make ``step`` the newest step: slots of steps that fall out of the ring are
        cleared and given their new step."""
        if step <= self._head:
            return
        oldest_new = max(self._head + 1, step - self.slots + 1)
        new_steps = np.arange(oldest_new, step + 1, dtype=np.int64)
        slots = new_steps % self.slots
        if self._head < 0:
            pass  # the first sample: every slot is still NaN
        elif len(slots) == self.slots:
            self._values.fill(np.nan)  # a contiguous write, not a column at a time
        else:
            self._values[:, slots] = np.nan
        self._slot_step[slots] = new_steps
        self._head = step


def _nanoseconds(times_ns: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Times as int64 and which of them fit (a time past 2**63 ns fits no int64)."""
    try:
        times = np.asarray(times_ns, dtype=np.int64)
    except OverflowError:
        fits = np.array([-_INT64_END <= t < _INT64_END for t in times_ns])
        times = np.array([t if ok else 0 for t, ok in zip(times_ns, fits, strict=True)])
        return times.astype(np.int64), fits
    return times, np.ones(len(times), dtype=bool)
