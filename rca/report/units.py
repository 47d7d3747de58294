"""Display units of a series, from OpenTelemetry's naming conventions.

OpenTelemetry records durations in seconds, utilizations as ratios in ``[0, 1]`` and memory in
bytes (https://opentelemetry.io/docs/specs/semconv/general/metrics/#units); a person reads
milliseconds, percent and MiB. A histogram's ``rate`` statistic is its count per second.
Metrics the rules do not know keep their values and show no unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rca.types import SeriesKey, parse_series_name

_SECONDS_SUFFIXES = (
    ".duration",
    "_seconds",
    ".time_to_first_token",
    ".time_per_output_token",
    ".message.age",
    ".message.period",
)
_RATIO_SUFFIXES = (".utilization", "_perc")


@dataclass(frozen=True)
class Unit:
    """How to show a metric: ``shown = value * scale``, then ``symbol``."""

    symbol: str = ""
    scale: float = 1.0

    def format(self, value: float | None) -> str:
        """``value`` in this unit with 3 significant digits, e.g. ``'412 ms'``; ``'–'`` when
        missing.

        >>> Unit("ms", 1e3).format(0.41234)
        '412 ms'
        >>> Unit("%", 100).format(0.0123)
        '1.23 %'
        """
        if value is None or not math.isfinite(value):
            return "–"
        shown = f"{value * self.scale:.3g}"
        if "e" in shown:  # 3 significant digits of a large number: write it out
            shown = f"{value * self.scale:.0f}"
        return f"{shown} {self.symbol}".rstrip()


def unit_of(metric: str, stat: str | None = None) -> Unit:
    """The display unit of ``metric`` (with its statistic).

    >>> unit_of("http.server.request.duration", "p90")
    Unit(symbol='ms', scale=1000.0)
    >>> unit_of("http.server.request.duration", "rate")
    Unit(symbol='/s', scale=1.0)
    >>> unit_of("container.memory.usage").symbol, unit_of("hw.gpu.utilization").symbol
    ('MiB', '%')
    """
    if stat == "rate":
        return Unit("/s")
    if metric.endswith(_SECONDS_SUFFIXES):
        return Unit("ms", 1e3)
    if metric.endswith(_RATIO_SUFFIXES):
        return Unit("%", 100.0)
    if metric.endswith(".memory.usage"):
        return Unit("MiB", 1.0 / 2**20)
    if ".clock." in metric:
        return Unit("MHz", 1e-6)
    if metric.endswith(".power"):
        return Unit("W")
    return Unit()


def key_of(series: str) -> SeriesKey:
    """The parts of a column name; a name :func:`rca.types.series_name` did not make counts as
    a metric of no service (a report must show any window it is given)."""
    try:
        return parse_series_name(series)
    except ValueError:
        return SeriesKey("", series)


def series_unit(series: str) -> Unit:
    """The display unit of a column."""
    key = key_of(series)
    return unit_of(key.metric, key.stat)


def series_label(series: str, service: bool = True, attrs: bool = True) -> str:
    """A column as a person reads it: service, metric, statistic and the attribute values
    under their last name part (``route=/cart``), without the braces and escapes.

    >>> series_label("carts:http.server.request.duration:p90{http.route=/cart}")
    'carts · http.server.request.duration p90 (route=/cart)'
    """
    key = key_of(series)
    text = " ".join(part for part in (key.metric, key.stat) if part)
    if attrs and key.attrs:
        text += f" ({attrs_label(series)})"
    return f"{key.service} · {text}" if service and key.service else text


def attrs_label(series: str) -> str:
    """A column's attributes, each under the last part of its name: ``'route=/cart'``."""
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in key_of(series).attrs)
