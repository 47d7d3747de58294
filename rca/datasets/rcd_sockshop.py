"""RCD's Sock Shop data (NeurIPS'22; "Sock Shop 1" in RCAEval's ASE'24 study).

Layout: ``<service>-<cpu|mem>/<rep>/{normal,anomalous}.csv`` at 1 s, columns ``<svc>_<metric>``.

Quirks handled here:

* ``normal.csv`` and ``anomalous.csv`` are separate recordings, hours to days apart (for
  ``orders-mem/5`` the normal file is even recorded *after* the anomalous one), and the fault is
  already active on the first anomalous row. We splice them: the normal rows keep their spacing
  but are shifted so that the last one lands one step before the first anomalous row, and the
  onset is the first anomalous row. The alternative, real timestamps, would put days of NaN
  between the two parts.
* Several series are exactly constant in one of the two parts (memory in bytes, ``lat_50`` of
  an idle service); that is left in the data on purpose: each method must cope (RCAEval's BARO
  and NSigma drop series that are constant before or after the onset, and ours do too).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rca.datasets.base import Case, Truth
from rca.datasets.wide_csv import FAULT_INDICATORS, frame_to_window
from rca.errors import DatasetLayoutError

STEP_SECONDS = 1.0


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetLayoutError(f"missing {path.name} in {path.parent}")
    frame = pd.read_csv(path)
    if "time" not in frame.columns:
        raise DatasetLayoutError(f"{path} has no 'time' column")
    return frame


class RCDSockShop:
    """The 50 RCD Sock Shop cases (5 services x {cpu, mem} x 5 repetitions)."""

    name = "rcd-sockshop"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.root} is not a directory")

    def case_ids(self) -> list[str]:
        ids = sorted(
            f"{fault_dir.name}/{rep.name}"
            for fault_dir in self.root.iterdir()
            if fault_dir.is_dir() and "-" in fault_dir.name
            for rep in fault_dir.iterdir()
            if (rep / "anomalous.csv").is_file()
        )
        if not ids:
            raise DatasetLayoutError(
                f"{self.root} has no <service>-<cpu|mem>/<rep>/anomalous.csv cases"
            )
        return ids

    def load(self, case_id: str) -> Case:
        folder = self.root / case_id
        service, _, fault = case_id.split("/")[0].rpartition("-")
        if fault not in ("cpu", "mem") or not service:
            raise DatasetLayoutError(f"{case_id}: folder name is not <service>-<cpu|mem>")
        normal = _read(folder / "normal.csv")
        anomalous = _read(folder / "anomalous.csv")
        if list(normal.columns) != list(anomalous.columns):
            raise DatasetLayoutError(f"{case_id}: normal.csv and anomalous.csv differ in columns")
        normal = normal.sort_values("time")
        anomalous = anomalous.sort_values("time")
        shift = anomalous["time"].iloc[0] - STEP_SECONDS - normal["time"].iloc[-1]
        normal = normal.assign(time=normal["time"] + shift)
        window = frame_to_window(pd.concat([normal, anomalous], ignore_index=True), STEP_SECONDS)
        onset = pd.Timestamp(anomalous["time"].iloc[0], unit="s", tz="UTC")
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=onset,
            truth=Truth(service=service, fault=fault, metrics=FAULT_INDICATORS[fault]),
            notes=("normal.csv shifted to end one step before anomalous.csv",),
        )
