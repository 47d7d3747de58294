"""Quantiles of bucketed distributions: explicit and exponential OTLP histograms.

A distribution is a set of intervals ``(lower[i], upper[i]]`` holding ``counts[i]`` values.
Inside an interval values are taken as uniformly spread, as Prometheus' ``histogram_quantile``
does: ``q = lower[i] + (upper[i] - lower[i]) · (rank - cum[i-1]) / counts[i]`` with
``rank = q · total`` and ``i`` the first interval whose cumulative count reaches ``rank``.

Plain float lists, not numpy arrays: histograms have tens of buckets, where a Python loop beats
numpy's per-call overhead several times over (ingest runs this per data point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = (0.5, 0.9, 0.99)
QUANTILE_STATS = ("p50", "p90", "p99")
Intervals = tuple[list[float], list[float], list[float]]


def explicit_intervals(
    bounds: Sequence[float], counts: Sequence[float], minimum: float | None, maximum: float | None
) -> Intervals:
    """Intervals of an explicit-bucket histogram (``len(counts) == len(bounds) + 1``).

    The open-ended first and last buckets are closed with the recorded min and max when the
    point has them; otherwise as Prometheus does: the first bucket starts at 0 (or at its upper
    bound when that is not positive) and the last collapses onto the highest bound.

    >>> explicit_intervals([1.0, 2.0], [1, 2, 3], None, None)
    ([0.0, 1.0, 2.0], [1.0, 2.0, 2.0], [1, 2, 3])
    """
    if not bounds:
        low = float("nan") if minimum is None else minimum
        high = float("nan") if maximum is None else maximum
        return [low], [high], list(counts[:1])
    first = bounds[0] if bounds[0] <= 0 else 0.0
    if minimum is not None:
        first = min(minimum, bounds[0])
    last = bounds[-1] if maximum is None else max(maximum, bounds[-1])
    return [first, *bounds], [*bounds, last], list(counts)


def exponential_intervals(
    scale: int,
    zero_count: float,
    zero_threshold: float,
    positive: tuple[int, Sequence[float]],
    negative: tuple[int, Sequence[float]],
) -> Intervals:
    """Intervals of an exponential histogram: bucket ``i`` of the positive range holds
    ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``; negative buckets mirror them;
    the zero bucket is ``[-zero_threshold, zero_threshold]`` (OTLP ``metrics.proto``).

    Edges past the largest double are infinite (valid scales and offsets reach ``2**(2**41)``),
    so the quantiles of such buckets are too, and the window store drops them.

    >>> exponential_intervals(0, 1, 0.0, (0, [2, 1]), (0, []))
    ([0.0, 1.0, 2.0], [0.0, 2.0, 4.0], [1.0, 2.0, 1.0])
    >>> exponential_intervals(-10, 0, 0.0, (-1, [1, 1]), (0, []))[1]
    [0.0, 1.0, inf]
    """
    width = 2.0**-scale  # log2 of the base: exact for every valid scale
    neg_offset, neg_counts = negative
    pos_offset, pos_counts = positive
    neg = _edges(neg_offset, len(neg_counts), width)
    pos = _edges(pos_offset, len(pos_counts), width)
    mirrored = range(len(neg_counts) - 1, -1, -1)
    lower = [-neg[k + 1] for k in mirrored] + [0.0 - zero_threshold] + pos[:-1]
    upper = [-neg[k] for k in mirrored] + [zero_threshold] + pos[1:]
    counts = [float(c) for c in reversed(neg_counts)] + [float(zero_count)]
    counts += [float(c) for c in pos_counts]
    return lower, upper, counts


def _edges(offset: int, buckets: int, width: float) -> list[float]:
    """``2**(i * width)`` for ``i`` in ``offset .. offset + buckets``: the buckets' edges,
    ``inf`` from where a double overflows (``2.0 ** x`` raises there)."""
    limit = 1024 / width
    return [
        2.0 ** (i * width) if i < limit else math.inf for i in range(offset, offset + buckets + 1)
    ]


def quantiles(
    lower: Sequence[float],
    upper: Sequence[float],
    counts: Sequence[float],
    qs: Sequence[float] = QUANTILES,
) -> list[float]:
    """Quantiles ``qs`` (ascending, each in (0, 1]) of the distribution; NaN when it holds
    no value.

    >>> quantiles([0.0, 1.0], [1.0, 2.0], [5.0, 5.0], (0.5, 0.9))
    [1.0, 1.8]
    """
    total = sum(counts)
    if not total > 0:
        return [float("nan")] * len(qs)
    out = []
    i, before, last = 0, 0.0, len(counts) - 1
    for q in qs:
        rank = q * total
        while i < last and before + counts[i] < rank:
            before += counts[i]
            i += 1
        share = (rank - before) / counts[i] if counts[i] > 0 else 1.0
        out.append(lower[i] + (upper[i] - lower[i]) * min(share, 1.0))
    return out
