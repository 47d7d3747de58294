"""Rates from cumulative counters, with resets (OTLP ``Sum``, monotonic, cumulative).

A cumulative point says "``value`` was counted over ``[start, time]``". The rate between two
points of the same series is ``(value - previous value) / (time - previous time)``. A reset
(a new ``start``, or a value that went down) means counting restarted: the rate is then
``value / (time - start)`` when the restart time is known and later than the previous point,
else ``value / (time - previous time)`` (Prometheus' rule: the counter restarted from zero).
The first point of a series gives ``value / (time - start)`` when ``start`` is known and
before ``time``.
"""

from __future__ import annotations

import numpy as np

NANOS = 1e9


def counter_rate(
    start_ns: int, time_ns: int, value: float, previous: tuple[int, int, float] | None
) -> float:
    """Per-second rate of the point ``(start_ns, time_ns, value)`` given the series' previous
    point ``(start_ns, time_ns, value)``; NaN when no rate can be told (a re-delivered or
    out-of-order point, or a first point without a start time).

    >>> counter_rate(0, 20 * 10**9, 30.0, (0, 10 * 10**9, 10.0))
    2.0
    >>> counter_rate(15 * 10**9, 20 * 10**9, 5.0, (0, 10 * 10**9, 10.0))  # reset at 15 s
    1.0
    """
    if previous is not None:
        prev_start, prev_time, prev_value = previous
        if time_ns <= prev_time:
            return np.nan
        restarted = (start_ns > 0 and start_ns != prev_start) or value < prev_value
        if not restarted:
            return (value - prev_value) * NANOS / (time_ns - prev_time)
        if prev_time < start_ns < time_ns:
            return value * NANOS / (time_ns - start_ns)
        # A restart not stamped between the two points: counting restarted from zero after
        # the previous point.
        return value * NANOS / (time_ns - prev_time)
    if 0 < start_ns < time_ns:
        return value * NANOS / (time_ns - start_ns)
    return np.nan
