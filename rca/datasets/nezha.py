"""Nezha's Online Boutique data (FSE'23): two days of pod metrics at 60 s and 56 injected faults.

Layout: ``rca_data/<day>/<day>-fault_list.json`` (faults grouped by hour: ``inject_time``,
``inject_timestamp``, ``inject_pod``, ``inject_type``), ``rca_data/<day>/metric/`` with one
``<pod>_metric.csv`` per pod, ``front_service.csv`` (the frontend's SLI), ``source_50.csv`` and
``destination_50.csv`` (median call latency per caller_callee edge) and ``dependency.csv`` (the
call graph), and ``construct_data/root_cause_hipster.json`` (fault type -> indicator).

What we found and did:

* Timestamps: the epoch ``TimeStamp`` column agrees with the readable ``Time`` column to within
  a second in every file except ``adservice`` on 2022-08-22, where it is ahead by 200,000,000 s
  (median +199,999,999.6 s) and steps backwards 56 times; ``Time`` is increasing everywhere. We
  align on ``Time`` (``Go``'s ``2022-08-22 03:51:19.607 +0000 UTC m=+0.11`` form: the first two
  fields are the UTC time) and ignore ``TimeStamp``.
* Onset: the readable ``inject_time`` (UTC), not ``inject_timestamp`` (one of which, on
  2022-08-22, is 60 s off). CPU faults show 25-90 s later, i.e. on the first or second row.
* Faults come every ~8 minutes, often on the same service. A case's window ends at the next
  fault's injection (so the next label cannot leak in), or ``post_seconds`` after the onset if
  that comes first, and starts ``pre_seconds`` before its
  onset (never before the day's first row); earlier faults' after-effects may lie in the
  pre-onset part, as they would in production.
* Each day ends with hours without faults (16 h on 2022-08-22, 7 h on 2022-08-23); from
  ``quiet_seconds`` after the last fault on, that is the case's ``history`` (normal behaviour for
  methods that learn; it lies after the incidents, which only matters to methods that would use
  it as the pre-onset baseline: none do).
* Edge latencies (``source_50``: measured by the caller, ``destination_50``: by the callee)
  belong to the *callee*, with the caller as ``rpc.peer``: both describe how the callee answers
  its callers. A delay injected on the callee's network shows only on the caller's side of its
  edges (measured on the tuning fifth: the callee's own pod metrics stay flat), and a caller's
  own latency is already in its pod metrics. (OpenTelemetry's service-graph metrics, too, name
  the server of every edge.)
* Indicators: ``CpuUsageRate(%)`` maps to our CPU metrics, ``NetworkP90(ms)`` (not among the
  metric files) to the pods' latency metrics; code faults (``return``, ``exception``) are
  indicated by log templates, so they get no metric-level truth.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.base import Case, Truth
from rca.errors import DatasetLayoutError
from rca.types import series_name, workload_of
from rca.window import Window, align

STEP_SECONDS = 60.0

CPU_UTILIZATION = "container.cpu.utilization"
SERVER_DURATION = "rpc.server.duration"
CLIENT_DURATION = "rpc.client.duration"

# Nezha pod-metric column -> (OpenTelemetry-style metric, statistic, attributes).
_POD_METRICS: dict[str, tuple[str, str | None, dict[str, str]]] = {
    "CpuUsage(m)": ("container.cpu.usage", None, {}),
    "CpuUsageRate(%)": (CPU_UTILIZATION, None, {}),
    "MemoryUsage(Mi)": ("container.memory.usage", None, {}),  # scaled to bytes, OTel's unit
    "MemoryUsageRate(%)": ("container.memory.utilization", None, {}),
    "SyscallRead": ("container.syscalls", "rate", {"direction": "read"}),
    "SyscallWrite": ("container.syscalls", "rate", {"direction": "write"}),
    "NetworkReceiveBytes": ("container.network.io", "rate", {"network.io.direction": "receive"}),
    "NetworkTransmitBytes": (
        "container.network.io",
        "rate",
        {"network.io.direction": "transmit"},
    ),
    "PodClientLatencyP90(s)": (CLIENT_DURATION, "p90", {}),
    "PodServerLatencyP90(s)": (SERVER_DURATION, "p90", {}),
    "PodClientLatencyP95(s)": (CLIENT_DURATION, "p95", {}),
    "PodServerLatencyP95(s)": (SERVER_DURATION, "p95", {}),
    "PodClientLatencyP99(s)": (CLIENT_DURATION, "p99", {}),
    "PodServerLatencyP99(s)": (SERVER_DURATION, "p99", {}),
    "PodWorkload(Ops)": (SERVER_DURATION, "rate", {}),
    "PodSuccessRate(%)": ("rpc.server.success_ratio", None, {}),
    "NodeCpuUsageRate(%)": ("k8s.node.cpu.utilization", None, {}),
    "NodeMemoryUsageRate(%)": ("k8s.node.memory.utilization", None, {}),
    "NodeNetworkReceiveBytes": (
        "k8s.node.network.io",
        "rate",
        {"network.io.direction": "receive"},
    ),
}
_FRONT_METRICS: dict[str, tuple[str, str | None]] = {
    "SuccessRate(%)": ("http.server.success_ratio", None),
    "LatencyP50(s)": ("http.server.request.duration", "p50"),
    "LatencyP90(s)": ("http.server.request.duration", "p90"),
    "LatencyP95(s)": ("http.server.request.duration", "p95"),
    "LatencyP99(s)": ("http.server.request.duration", "p99"),
}
_INDICATORS: dict[str, frozenset[str]] = {
    "CpuUsageRate(%)": frozenset({CPU_UTILIZATION, "container.cpu.usage"}),
    "NetworkP90(ms)": frozenset({SERVER_DURATION, CLIENT_DURATION}),
}


def _time_index(column: pd.Series) -> pd.DatetimeIndex:
    readable = column.astype(str).str.split(" ").str[:2].str.join(" ")
    return pd.DatetimeIndex(pd.to_datetime(readable, utc=True, format="ISO8601"))


def _read_metric_file(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if "Time" not in frame.columns and "time" not in frame.columns:
        raise DatasetLayoutError(f"{path} has no Time column")
    frame.index = _time_index(frame["Time"] if "Time" in frame.columns else frame["time"])
    return frame


class NezhaOB:
    """The 56 Online Boutique faults of Nezha's two days."""

    name = "nezha-ob"

    def __init__(
        self,
        root: Path,
        pre_seconds: float = 1800.0,
        post_seconds: float = 600.0,
        quiet_seconds: float = 900.0,
    ) -> None:
        self.root = Path(root)
        self.pre_seconds = pre_seconds
        self.post_seconds = post_seconds
        self.quiet_seconds = quiet_seconds
        if not (self.root / "rca_data").is_dir():
            raise DatasetLayoutError(f"{self.root} has no rca_data/ folder (Nezha layout)")

    def _days(self) -> list[str]:
        return sorted(p.name for p in (self.root / "rca_data").iterdir() if p.is_dir())

    @cache  # noqa: B019 - one loader per dataset run; the two days are read once
    def _faults(self, day: str) -> list[dict[str, str]]:
        path = self.root / "rca_data" / day / f"{day}-fault_list.json"
        if not path.is_file():
            raise DatasetLayoutError(f"missing {path}")
        by_hour = json.loads(path.read_text())
        faults = [fault for hour in sorted(by_hour) for fault in by_hour[hour]]
        return sorted(faults, key=lambda f: f["inject_time"])

    @cache  # noqa: B019
    def _indicators(self) -> dict[str, dict[str, str]]:
        path = self.root / "construct_data" / "root_cause_hipster.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @cache  # noqa: B019
    def _day_window(self, day: str) -> Window:
        folder = self.root / "rca_data" / day / "metric"
        parts: list[pd.Series] = []
        pod_files = sorted(folder.glob("*_metric.csv"))
        if not pod_files:
            raise DatasetLayoutError(f"{folder} has no <pod>_metric.csv files")
        for path in pod_files:
            frame = _read_metric_file(path)
            service = workload_of(path.name.removesuffix("_metric.csv"))
            frame["MemoryUsage(Mi)"] = frame.get("MemoryUsage(Mi)", np.nan) * 2**20
            for column, (metric, stat, attrs) in _POD_METRICS.items():
                if column in frame.columns:
                    parts.append(frame[column].rename(series_name(service, metric, stat, attrs)))
        front = folder / "front_service.csv"
        if front.is_file():
            frame = _read_metric_file(front)
            for column, (metric, stat) in _FRONT_METRICS.items():
                if column in frame.columns:
                    parts.append(frame[column].rename(series_name("frontend", metric, stat)))
        for file_name, side in (("destination_50.csv", "server"), ("source_50.csv", "client")):
            path = folder / file_name
            if not path.is_file():
                continue
            frame = _read_metric_file(path)
            for column in frame.columns:
                caller, sep, callee = str(column).partition("_")
                if not sep or column in ("time", "timestamp", "Time", "TimeStamp"):
                    continue
                # An edge's latency, measured at either end, tells how the callee answers.
                name = series_name(callee, f"rpc.{side}.duration", "p50", {"rpc.peer": caller})
                parts.append(frame[column].rename(name))
        # Each file is sampled at its own sub-second offset; one align puts them on one grid.
        return align(pd.concat(parts, axis=1, sort=True), STEP_SECONDS)

    @cache  # noqa: B019
    def _call_graph(self, day: str) -> nx.DiGraph | None:
        path = self.root / "rca_data" / day / "metric" / "dependency.csv"
        if not path.is_file():
            return None
        edges = pd.read_csv(path)
        return nx.DiGraph(list(zip(edges["Source"], edges["Target"], strict=True)))

    def case_ids(self) -> list[str]:
        return [f"{day}/{i:02d}" for day in self._days() for i in range(len(self._faults(day)))]

    def load(self, case_id: str) -> Case:
        day, _, index = case_id.partition("/")
        faults = self._faults(day)
        try:
            fault = faults[int(index)]
        except (ValueError, IndexError):
            raise DatasetLayoutError(f"no case {case_id!r} in {self.name}") from None
        onset = pd.Timestamp(fault["inject_time"], tz="UTC")
        following = [pd.Timestamp(f["inject_time"], tz="UTC") for f in faults[int(index) + 1 :]]
        day_window = self._day_window(day)
        start = onset - pd.Timedelta(seconds=self.pre_seconds)
        end = onset + pd.Timedelta(seconds=self.post_seconds)
        if following:
            end = min(end, following[0])
        window = day_window.loc[(day_window.index >= start) & (day_window.index < end)]
        last_fault = pd.Timestamp(faults[-1]["inject_time"], tz="UTC")
        history = day_window.loc[
            day_window.index >= last_fault + pd.Timedelta(seconds=self.quiet_seconds)
        ]
        service = workload_of(fault["inject_pod"])
        indicator = self._indicators().get(service, {}).get(fault["inject_type"], "")
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=onset,
            truth=Truth(service, fault["inject_type"], _INDICATORS.get(indicator, frozenset())),
            history=history if len(history) else None,
            call_graph=self._call_graph(day),
        )
