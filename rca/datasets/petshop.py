"""Amazon's PetShop data (2023): 68 issues in 4 traffic scenarios, 41 components, 5-minute rows.

Layout: ``dataset/<scenario>/{train,test}/issue_<n>/{metrics.csv,target.json}``,
``dataset/<scenario>/noissue/metrics.csv`` (normal operation) and ``dataset/<scenario>/graph.csv``
(a 0/1 adjacency matrix, row calls column). ``metrics.csv`` has four header rows (component,
metric, statistic, the ``unix_timestamp`` label) before the data rows.

What we found and did:

* Every issue file holds 5 rows (25 minutes); the onset is ``target.timestamp`` (when the
  SLO broke), which falls between rows 1-2 of 5: the pre-onset part is 1-2 rows. Both the train
  and the test issues are cases here (none of our methods is supervised).
* One to two pre-onset rows are no baseline, so, as with RCD's separate ``normal.csv``, the
  scenario's ``noissue`` recording is spliced in front of the issue: its rows keep their 5-minute
  spacing and are shifted to end one step before the issue's first row. ``noissue`` was recorded
  months after the issues, so this is "normal behaviour of the same system", not the minutes
  before the incident. (Measured: NSigma scores AC@1 0.07 with the 1-2 pre-onset rows alone and
  0.29 with the normal recording as reference, on the 52 cases that have one.) The two temporal
  scenarios' ``noissue`` files are missing (``MISSING.txt``): their windows are the issue rows
  alone, and a note on the case says so.
* The fault types in the upstream README do not match the injection commands recorded with
  each issue; we derive the type from the command (``_FAULTS``) and, from the type, the metric
  that should show it (latency, availability or requests) for metric-level scoring. The label
  itself names no metric (``root_cause.metric`` is null everywhere).
* ``target`` names the SLO that broke (``PetSite``'s mean latency in 36 issues, its mean
  availability in 32): the case's :class:`~rca.types.Alert`, the symptom an alert would name.
"""

from __future__ import annotations

import csv
import json
import re
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.base import Case, Truth
from rca.errors import DatasetLayoutError
from rca.types import Alert, series_name
from rca.window import Window, align, to_timestamp

STEP_SECONDS = 300.0

_STATS = {"Average": "mean", "Sum": "sum", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}

# Injection command -> fault type.
_FAULTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"sleep\(|delaymode|searchdelay"), "latency"),
    (re.compile(r"errormode|errorpercent|inject = true"), "error"),
    (re.compile(r"issue_dynamo_db_requests"), "request-overload"),
)
_INDICATORS = {
    "latency": frozenset({"latency"}),
    "error": frozenset({"availability"}),
    "request-overload": frozenset({"requests"}),
}


def fault_of_command(command: str) -> str | None:
    for pattern, fault in _FAULTS:
        if pattern.search(command):
            return fault
    return None


def read_metrics(path: Path) -> Window:
    """One PetShop ``metrics.csv`` (four header rows) as an aligned window."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 5 or rows[0][:1] != ["microservice"] or rows[3][:1] != ["unix_timestamp"]:
        raise DatasetLayoutError(f"{path} does not have PetShop's four header rows")
    names = []
    for node, metric, stat in zip(rows[0][1:], rows[1][1:], rows[2][1:], strict=True):
        names.append(series_name(node, metric, _STATS.get(stat, stat.lower())))
    body = np.array(
        [[float(v) if v else np.nan for v in row[1:]] for row in rows[4:] if row], dtype=float
    )
    times = pd.to_datetime([float(row[0]) for row in rows[4:] if row], unit="s", utc=True)
    frame = pd.DataFrame(body, index=pd.DatetimeIndex(times), columns=names)
    # The header repeats some components' columns; keep the first copy of each series.
    frame = frame.loc[:, ~frame.columns.duplicated()]
    return align(frame, STEP_SECONDS)


class PetShop:
    """All 68 PetShop issues (train and test splits, four scenarios)."""

    name = "petshop"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / "dataset" if (self.root / "dataset").is_dir() else self.root
        if not any(self.base.glob("*/graph.csv")):
            raise DatasetLayoutError(f"{self.root} has no <scenario>/graph.csv (PetShop layout)")

    def case_ids(self) -> list[str]:
        ids = sorted(
            str(target.parent.relative_to(self.base))
            for target in self.base.glob("*/*/issue_*/target.json")
        )
        if not ids:
            raise DatasetLayoutError(f"{self.base} has no <scenario>/<split>/issue_<n> cases")
        return ids

    @cache  # noqa: B019 - the normal data of a scenario is shared by its issues
    def _normal(self, scenario: str) -> Window | None:
        path = self.base / scenario / "noissue" / "metrics.csv"
        return read_metrics(path) if path.is_file() else None

    @cache  # noqa: B019
    def _call_graph(self, scenario: str) -> nx.DiGraph:
        matrix = pd.read_csv(self.base / scenario / "graph.csv", index_col=0)
        graph = nx.DiGraph()
        graph.add_nodes_from(str(n) for n in matrix.index)
        for caller, row in matrix.iterrows():
            for callee, value in row.items():
                if value:
                    graph.add_edge(str(caller), str(callee))
        return graph

    def load(self, case_id: str) -> Case:
        folder = self.base / case_id
        scenario = case_id.split("/")[0]
        target_path = folder / "target.json"
        if not target_path.is_file():
            raise DatasetLayoutError(f"no case {case_id!r} in {self.name}")
        target = json.loads(target_path.read_text())
        command = target.get("metadata", {}).get("reproducibility", {}).get("command", "")
        fault = fault_of_command(command)
        window = read_metrics(folder / "metrics.csv")
        normal = self._normal(scenario)
        if normal is None:
            notes: tuple[str, ...] = ("no normal recording (MISSING.txt): issue rows only",)
        else:
            shift = window.index[0] - pd.Timedelta(seconds=STEP_SECONDS) - normal.index[-1]
            normal = normal.set_axis(normal.index + shift)
            window = pd.concat([normal, window]).sort_index()
            notes = ("noissue recording spliced before the issue rows",)
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=to_timestamp(target["target"]["timestamp"]),
            truth=Truth(
                target["root_cause"]["node"], fault, _INDICATORS.get(fault or "", frozenset())
            ),
            call_graph=self._call_graph(scenario),
            alert=_alert(target["target"], window),
            notes=notes,
        )


def _alert(slo: dict[str, str], window: Window) -> Alert:
    """The broken SLO of a ``target.json`` (``node``, ``metric``, ``agg``) as an alert."""
    name = series_name(slo["node"], slo["metric"], _STATS.get(slo["agg"], slo["agg"].lower()))
    return Alert((slo["node"],), (name,) if name in window.columns else ())
