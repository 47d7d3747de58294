"""Quantiles of bucketed distributions: explicit and exponential OTLP histograms.

A distribution is a set of intervals ``(lower[i], upper[i]]`` holding ``counts[i]`` values.
Inside an interval values are taken as uniformly spread, as Prometheus' ``histogram_quantile``
does: ``q = lower[i] + (upper[i] - lower[i]) · (rank - cum[i-1]) / counts[i]`` with
``rank = q · total`` and ``i`` the first interval whose cumulative count reaches ``rank``.
"""

from __future__ import annotations

import numpy as np

QUANTILES = np.array([0.5, 0.9, 0.99])
QUANTILE_STATS = ("p50", "p90", "p99")


def explicit_intervals(
    bounds: np.ndarray, counts: np.ndarray, minimum: float | None, maximum: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals of an explicit-bucket histogram (``len(counts) == len(bounds) + 1``).

    The open-ended first and last buckets are closed with the recorded min and max when the
    point has them; otherwise as Prometheus does: the first bucket starts at 0 (or at its upper
    bound when that is not positive) and the last collapses onto the highest bound.

    >>> lo, hi, c = explicit_intervals(np.array([1.0, 2.0]), np.array([1, 2, 3]), None, None)
    >>> lo.tolist(), hi.tolist(), c.tolist()
    ([0.0, 1.0, 2.0], [1.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    """
    counts = np.asarray(counts, dtype=float)
    bounds = np.asarray(bounds, dtype=float)
    if bounds.size == 0:
        low = np.nan if minimum is None else minimum
        high = np.nan if maximum is None else maximum
        return np.array([low]), np.array([high]), counts[:1]
    first = bounds[0] if bounds[0] <= 0 else 0.0
    if minimum is not None:
        first = min(minimum, bounds[0])
    last = bounds[-1] if maximum is None else max(maximum, bounds[-1])
    lower = np.concatenate(([first], bounds))
    upper = np.concatenate((bounds, [last]))
    return lower, upper, counts


def exponential_intervals(
    scale: int,
    zero_count: float,
    zero_threshold: float,
    positive: tuple[int, np.ndarray],
    negative: tuple[int, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals of an exponential histogram: bucket ``i`` of the positive range holds
    ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``; negative buckets mirror them;
    the zero bucket is ``[-zero_threshold, zero_threshold]`` (OTLP ``metrics.proto``).

    >>> lo, hi, c = exponential_intervals(0, 1, 0.0, (0, np.array([2, 1])), (0, np.array([])))
    >>> lo.tolist(), hi.tolist(), c.tolist()
    ([0.0, 1.0, 2.0], [0.0, 2.0, 4.0], [1.0, 2.0, 1.0])
    """
    base = 2.0 ** (2.0**-scale)
    neg_offset, neg_counts = negative
    pos_offset, pos_counts = positive
    neg_index = neg_offset + np.arange(len(neg_counts))[::-1]
    pos_index = pos_offset + np.arange(len(pos_counts))
    lower = np.concatenate(
        (-(base ** (neg_index + 1.0)), [0.0 - zero_threshold], base ** pos_index.astype(float))
    )
    upper = np.concatenate(
        (-(base ** neg_index.astype(float)), [zero_threshold], base ** (pos_index + 1.0))
    )
    counts = np.concatenate(
        (np.asarray(neg_counts, float)[::-1], [zero_count], np.asarray(pos_counts, float))
    )
    return lower, upper, counts


def quantiles(
    lower: np.ndarray, upper: np.ndarray, counts: np.ndarray, qs: np.ndarray = QUANTILES
) -> np.ndarray:
    """Quantiles ``qs`` (each in (0, 1]) of the distribution; NaN when it holds no value.

    >>> quantiles(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([5.0, 5.0]),
    ...           np.array([0.5, 0.9])).tolist()
    [1.0, 1.8]
    """
    total = counts.sum()
    if not total > 0:
        return np.full(len(qs), np.nan)
    cumulative = np.cumsum(counts)
    ranks = qs * total
    index = np.minimum(np.searchsorted(cumulative, ranks, side="left"), len(counts) - 1)
    before = cumulative[index] - counts[index]
    share = (ranks - before) / counts[index]
    return lower[index] + (upper[index] - lower[index]) * share
