"""A benchmark case and the contract every dataset loader keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import networkx as nx
import pandas as pd

from rca.types import Alert
from rca.window import Window


@dataclass(frozen=True)
class Truth:
    """The injected root cause.

    ``metrics`` lists the metric names that count as the right indicator for metric-level
    scoring; it is empty where the label names none.
    """

    service: str
    fault: str | None = None
    metrics: frozenset[str] = frozenset()


@dataclass
class Case:
    """One labelled incident: an aligned window, the onset inside it, and the truth.

    ``history`` is fault-free data from outside the window when the dataset has some (methods
    that learn from normal behaviour may use it); ``call_graph`` is caller -> callee between
    services when the dataset ships one; ``true_graph`` (synthetic data only) is the generator's
    cause -> effect graph between series; ``alert`` names the symptom (the services and series
    whose SLO broke) where the dataset knows it.
    """

    dataset: str
    case_id: str
    window: Window
    onset: pd.Timestamp
    truth: Truth
    history: Window | None = None
    call_graph: nx.DiGraph | None = None
    true_graph: nx.DiGraph | None = None
    alert: Alert | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class Dataset(Protocol):
    """A set of cases that can be listed cheaply and loaded one at a time."""

    name: str

    def case_ids(self) -> list[str]: ...

    def load(self, case_id: str) -> Case: ...
