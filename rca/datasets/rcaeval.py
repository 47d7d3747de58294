"""Any folder in RCAEval's case layout: ``[<suite>/]<service>_<fault>/<rep>/data.csv`` plus
``inject_time.txt`` (unix seconds), the root cause encoded in the folder name.

As in RCAEval's evaluation (``--length 20``), a case is the last ``pre_seconds`` before the
injection and the first ``post_seconds`` from it (600 s + 600 s by default).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rca.datasets.base import Case, Truth
from rca.datasets.wide_csv import FAULT_INDICATORS, frame_to_window
from rca.errors import DatasetLayoutError, RCAInputError
from rca.window import to_timestamp


class RCAEvalFolder:
    """Cases found under ``root`` in RCAEval's layout."""

    def __init__(self, root: Path, pre_seconds: float = 600.0, post_seconds: float = 600.0) -> None:
        self.root = Path(root)
        self.name = self.root.name
        self.pre_seconds = pre_seconds
        self.post_seconds = post_seconds
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.root} is not a directory")

    def case_ids(self) -> list[str]:
        ids = sorted(
            str(data.parent.relative_to(self.root))
            for data in self.root.rglob("data.csv")
            if (data.parent / "inject_time.txt").is_file()
        )
        if not ids:
            raise DatasetLayoutError(
                f"{self.root} has no cases in RCAEval's layout "
                "(<service>_<fault>/<rep>/data.csv with inject_time.txt)"
            )
        return ids

    def load(self, case_id: str) -> Case:
        folder = self.root / case_id
        label = folder.parent.name if folder.parent != self.root else folder.name
        service, sep, fault = label.rpartition("_")
        if not sep or not service:
            raise DatasetLayoutError(f"{case_id}: no <service>_<fault> folder above the case")
        try:
            onset = to_timestamp((folder / "inject_time.txt").read_text().split()[0])
        except (IndexError, RCAInputError) as exc:
            raise DatasetLayoutError(f"{case_id}: unreadable inject_time.txt ({exc})") from None
        window = frame_to_window(pd.read_csv(folder / "data.csv"))
        start = onset - pd.Timedelta(seconds=self.pre_seconds)
        end = onset + pd.Timedelta(seconds=self.post_seconds)
        window = window.loc[(window.index >= start) & (window.index < end)]
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=onset,
            truth=Truth(service, fault, FAULT_INDICATORS.get(fault, frozenset())),
        )
