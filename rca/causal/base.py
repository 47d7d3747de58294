"""The causal-graph stage's contract: a cause -> effect graph over the window's kept series.

``graph(window, onset, nodes, inputs) -> CausalGraph`` over exactly ``nodes`` (the series the
detector kept, in its order). ``inputs`` is what is known beside the window: fault-free
history, the call graph (caller -> callee services), a graph already learned from history (the
server fits one in the background) and, on synthetic data, the true series graph. A source
never sees the truth of the incident it is graphing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import networkx as nx
import pandas as pd

from rca.types import CausalGraph
from rca.window import Window


@dataclass(frozen=True)
class GraphInputs:
    history: Window | None = None
    call_graph: nx.DiGraph | None = None
    series_graph: nx.DiGraph | None = None
    learned: CausalGraph | None = None


class GraphSource(Protocol):
    def graph(
        self, window: Window, onset: pd.Timestamp, nodes: list[str], inputs: GraphInputs
    ) -> CausalGraph: ...
