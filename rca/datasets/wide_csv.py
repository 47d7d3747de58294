"""Wide CSV files (a time column plus one column per series) into windows.

Columns are named either by :func:`rca.types.series_name` (``carts:container.cpu.utilization``)
or in the research datasets' ``<service>_<metric>`` style (``carts_cpu``, ``carts-db_mem``,
``carts_lat_90``), which is split at the first ``_``; a Deployment's pod name there counts as
its Deployment (``carts-5f6585d649-fnmft_cpu`` is ``carts``'s CPU, the pod an attribute).
Legacy metric names with a clear OpenTelemetry equivalent are renamed to it; the others keep
their name.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from rca.errors import RCAInputError
from rca.types import parse_series_name, series_name, workload_of
from rca.window import Window, align, to_datetime_index

TIME_COLUMNS = ("time", "timestamp", "Time", "TimeStamp")

CPU = "container.cpu.utilization"
MEMORY = "container.memory.usage"
DISK = "container.disk.io"
REQUEST_DURATION = "http.server.request.duration"

_LEGACY: dict[str, tuple[str, str | None]] = {
    "cpu": (CPU, None),
    "mem": (MEMORY, None),
    "memory": (MEMORY, None),
    "diskio": (DISK, None),
    "disk": (DISK, None),
    # RCD's "lod" and RCAEval's "workload" are request rates: the rate of the duration histogram.
    "lod": (REQUEST_DURATION, "rate"),
    "workload": (REQUEST_DURATION, "rate"),
    # RCAEval renames its 90th-percentile latency to plain "latency".
    "latency": (REQUEST_DURATION, "p90"),
}
_PERCENTILE = re.compile(r"^(?:lat|latency)[_-](\d{2})$")

# Fault type -> the metric that indicates it, for metric-level scoring of RCAEval-style labels.
FAULT_INDICATORS: dict[str, frozenset[str]] = {
    "cpu": frozenset({CPU}),
    "mem": frozenset({MEMORY}),
    "disk": frozenset({DISK}),
    "delay": frozenset({REQUEST_DURATION}),
    "loss": frozenset({REQUEST_DURATION}),
}


def legacy_column_name(column: str) -> str:
    """Series name for a ``<service>_<metric>`` column (or the column itself if already one)."""
    if ":" in column:
        return parse_series_name(column).name
    service, sep, metric = column.partition("_")
    if not sep or not service or not metric:
        service, metric = column, "value"
    workload = workload_of(service)
    # Replicas of one Deployment stay apart, as OpenTelemetry keeps them: by their pod.
    pod = {"k8s.pod.name": service} if workload != service else None
    match = _PERCENTILE.match(metric)
    if match:
        return series_name(workload, REQUEST_DURATION, f"p{match.group(1)}", pod)
    otel, stat = _LEGACY.get(metric, (metric, None))
    return series_name(workload, otel, stat, pod)


def find_time_column(columns: list[str]) -> str:
    for name in TIME_COLUMNS:
        if name in columns:
            return name
    raise RCAInputError(
        f"no time column: expected one of {', '.join(TIME_COLUMNS)}, found {columns[:8]}"
    )


def frame_to_window(frame: pd.DataFrame, step_seconds: float | None = None) -> Window:
    """A raw wide frame (time column + series columns) as an aligned window."""
    columns = [str(c) for c in frame.columns]
    time_column = find_time_column(columns)
    series = [c for c in columns if c not in TIME_COLUMNS and not c.startswith("time.")]
    if not series:
        raise RCAInputError("the CSV has a time column but no series columns")
    names = [legacy_column_name(c) for c in series]
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise RCAInputError(f"columns map to the same series twice: {dupes[:5]}")
    data = frame[series].copy()
    data.columns = names
    data.index = to_datetime_index(frame[time_column])
    return align(data, step_seconds)


def read_wide_csv(path: Path, step_seconds: float | None = None) -> Window:
    """Read a wide CSV into an aligned window; clear errors for files that are not one."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise RCAInputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise RCAInputError(f"{path} is a folder; name a CSV file") from None
    except OSError as exc:
        raise RCAInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RCAInputError(f"{path} is not a readable CSV: {exc}") from None
    try:
        return frame_to_window(frame, step_seconds)
    except RCAInputError as exc:
        raise RCAInputError(f"{path}: {exc}") from None
