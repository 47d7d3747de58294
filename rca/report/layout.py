"""A layered, left-to-right layout of the service-level causal graph whose labels never overlap.

Series fold into services (:func:`service_graph`); cycles are broken by reversing the edges a
depth-first search meets going back (:func:`back_edges`); each service's column is its longest
path from a source (causes on the left, effects on the right); a few barycentre sweeps order
each column to cut crossings (Sugiyama et al. 1981, "Methods for visual understanding of
hierarchical system structures"). Every service is drawn as a box around its label, measured
with the label's font, and the columns are spaced by their widest box, so no two boxes
intersect; :func:`overlapping` checks it. Coordinates are typographic points, y upwards.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import networkx as nx
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from rca.types import service_of

FONT_SIZE = 9.0
_PAD_X = 5.0  # points between a label and its box, sideways
_PAD_Y = 3.5  # and above and below
_ROW_GAP = 9.0  # points between two boxes of a column
COLUMN_GAP = 54.0  # points between two columns (room for the arrows)
_SWEEPS = 4
# Services without a drawn edge go to trailing columns at least this tall.
_MIN_ISOLATED_ROWS = 8


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in points."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def intersects(self, other: Box) -> bool:
        """Whether the two share any area (touching edges do not count)."""
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )


@dataclass(frozen=True)
class GraphLayout:
    """Where each service's label box lies, the edges to draw (cause -> effect, weight) and
    which of them run against the columns (reversed to break a cycle)."""

    boxes: dict[str, Box]
    edges: tuple[tuple[str, str, float], ...]
    backward: frozenset[tuple[str, str]]
    width: float
    height: float


def service_graph(
    graph: nx.DiGraph, keep: Collection[str] = (), max_edges: int = 120
) -> nx.DiGraph:
    """Series edges folded into service edges (weight: the heaviest series edge between the
    two; edges within a service dropped): every edge touching a service in ``keep``, then the
    heaviest others up to ``max_edges`` in all."""
    folded: dict[tuple[str, str], float] = {}
    for u, v, data in graph.edges(data=True):
        a, b = _service(str(u)), _service(str(v))
        if a != b:
            folded[a, b] = max(folded.get((a, b), 0.0), float(data.get("weight", 1.0)))
    ordered = sorted(folded.items(), key=lambda item: (-item[1], item[0]))
    touching = [item for item in ordered if item[0][0] in keep or item[0][1] in keep]
    others = [item for item in ordered if item not in touching]
    services = nx.DiGraph()
    services.add_nodes_from(sorted({_service(str(n)) for n in graph.nodes}))
    for (a, b), weight in (touching + others)[: max(max_edges, len(touching))]:
        services.add_edge(a, b, weight=weight)
    return services


def _service(series: str) -> str:
    try:
        return service_of(series)
    except ValueError:  # a column the report did not name: it is its own service
        return series


def back_edges(graph: nx.DiGraph, order: Sequence[str]) -> set[tuple[str, str]]:
    """The edges a depth-first search, started from the nodes in ``order``, meets going back
    to a node on its path: reversing them leaves the graph acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: set[tuple[str, str]] = set()
    for root in order:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(graph.successors(root))))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                found.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph.successors(child)))))
    return found


def columns(
    graph: nx.DiGraph, order: Sequence[str], flipped: Collection[tuple[str, str]]
) -> list[list[str]]:
    """Services by column: the longest path from a source once the ``flipped`` edges are
    reversed; services with no edge in trailing columns. ``order`` lists every node."""
    position = {n: k for k, n in enumerate(order)}
    dag = nx.DiGraph()
    dag.add_nodes_from(n for n in order if graph.degree(n) > 0)
    dag.add_edges_from((v, u) if (u, v) in flipped else (u, v) for u, v in graph.edges)
    result = [sorted(layer, key=position.__getitem__) for layer in nx.topological_generations(dag)]
    isolated = [n for n in order if graph.degree(n) == 0]
    rows = max([_MIN_ISOLATED_ROWS, *(len(layer) for layer in result)])
    result += [isolated[i : i + rows] for i in range(0, len(isolated), rows)]
    return _sweep(result, dag)


def _sweep(layers: list[list[str]], dag: nx.DiGraph) -> list[list[str]]:
    """Each column ordered by the mean position of its neighbours in the column before
    (then after), alternately, a few times."""
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        span = range(1, len(layers)) if forward else range(len(layers) - 2, -1, -1)
        for i in span:
            fixed = {n: k for k, n in enumerate(layers[i - 1 if forward else i + 1])}
            layers[i] = sorted(
                layers[i],
                key=lambda n, f=fixed, k=layers[i]: _barycentre(
                    dag.predecessors(n) if forward else dag.successors(n), f, k.index(n)
                ),
            )
    return layers


def _barycentre(neighbours: Iterable[str], positions: dict[str, int], own: int) -> float:
    placed = [positions[n] for n in neighbours if n in positions]
    return sum(placed) / len(placed) if placed else float(own)


@cache
def label_size(text: str, font_size: float = FONT_SIZE) -> tuple[float, float]:
    """Width and height in points of ``text`` drawn in matplotlib's default font."""
    width, height, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=font_size), ismath=False
    )
    return width, max(height, font_size)


def layered_layout(
    graph: nx.DiGraph, labels: dict[str, str], order: Sequence[str], font_size: float = FONT_SIZE
) -> GraphLayout:
    """The layout of ``graph`` (services, cause -> effect), each node boxed around its label;
    ``order`` (most likely cause first) decides which edges of a cycle run backwards and
    breaks ties."""
    order = [n for n in order if n in graph] + sorted(set(graph.nodes).difference(order))
    flipped = back_edges(graph, order)
    layers = columns(graph, order, flipped)
    sizes = {n: label_size(labels[n], font_size) for n in graph.nodes}
    row = max((h for _, h in sizes.values()), default=font_size) + 2 * _PAD_Y
    height = max((len(layer) for layer in layers), default=0) * (row + _ROW_GAP) - _ROW_GAP
    boxes: dict[str, Box] = {}
    x = 0.0
    for layer in layers:
        column = max(sizes[n][0] for n in layer) + 2 * _PAD_X
        top = height - (height - len(layer) * (row + _ROW_GAP) + _ROW_GAP) / 2
        for k, node in enumerate(layer):
            width = sizes[node][0] + 2 * _PAD_X
            y1 = top - k * (row + _ROW_GAP)
            left = x + (column - width) / 2
            boxes[node] = Box(left, y1 - row, left + width, y1)
        x += column + COLUMN_GAP
    edges = tuple(
        (str(u), str(v), float(d.get("weight", 1.0))) for u, v, d in graph.edges(data=True)
    )
    return GraphLayout(boxes, edges, frozenset(flipped), max(x - COLUMN_GAP, 0.0), height)


def overlapping(boxes: dict[str, Box]) -> list[tuple[str, str]]:
    """Every pair of boxes that share area (a sweep along x)."""
    ordered = sorted(boxes.items(), key=lambda item: item[1].x0)
    pairs = []
    for i, (name, box) in enumerate(ordered):
        for other, candidate in ordered[i + 1 :]:
            if candidate.x0 >= box.x1:
                break
            if box.intersects(candidate):
                pairs.append((name, other))
    return pairs
