"""A layered, left-to-right layout of the service-level causal graph whose labels never overlap.

Series fold into services (:func:`service_graph`); cycles are broken by reversing the edges a
depth-first search meets going back (:func:`back_edges`); each service's column is its longest
path from a source (causes on the left, effects on the right); a few barycentre sweeps order
each column to cut crossings (Sugiyama et al. 1981, "Methods for visual understanding of
hierarchical system structures"); an edge that spans columns takes a slot in each column it
crosses, so it runs between the boxes there. Every service is drawn as a box around its label,
measured with the label's font, and the columns are spaced by their widest box, so no two boxes
intersect; :func:`overlapping` checks it. Coordinates are typographic points, y upwards.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import networkx as nx
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from rca.types import CausalGraph, service_of

FONT_SIZE = 9.0
_PAD_X = 5.0  # points between a label and its box, sideways
_PAD_Y = 3.5  # and above and below
_ROW_GAP = 9.0  # points between two boxes of a column
_VIA_ROW = 2.0  # points of height an edge takes in a column it crosses
_COLUMN_GAP = 54.0  # points between two columns (room for the arrows)
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


Edge = tuple[str, str, float]  # cause, effect, weight


@dataclass(frozen=True)
class GraphLayout:
    """Where each service's label box lies and the x-extent of its column, the edges to draw
    (cause -> effect, weight), which of them run against the columns (reversed to break a
    cycle), and the waypoints of every edge that crosses columns (from cause to effect, two per
    column crossed)."""

    boxes: dict[str, Box]
    columns: dict[str, tuple[float, float]]
    edges: tuple[Edge, ...]
    backward: frozenset[tuple[str, str]]
    routes: dict[tuple[str, str], tuple[tuple[float, float], ...]]
    width: float
    height: float

    def path(self, cause: str, effect: str) -> list[tuple[float, float]]:
        """The polyline of an edge: out of the cause's box sideways to its column's edge,
        through the waypoints, into the effect's box (backwards: out left, in right)."""
        a, b = self.boxes[cause], self.boxes[effect]
        (a0, a1), (b0, b1) = self.columns[cause], self.columns[effect]
        ya, yb = a.center[1], b.center[1]
        if (cause, effect) in self.backward:
            out, into = [(a.x0, ya), (a0, ya)], [(b1, yb), (b.x1, yb)]
        else:
            out, into = [(a.x1, ya), (a1, ya)], [(b0, yb), (b.x0, yb)]
        points = [*out, *self.routes.get((cause, effect), ()), *into]
        return [p for k, p in enumerate(points) if k == 0 or p != points[k - 1]]


@dataclass(frozen=True)
class _Via:
    """A slot an edge takes in a column it crosses (the layout's virtual node), so that long
    edges run between boxes, never through them."""

    cause: str
    effect: str
    step: int


_Node = str | _Via


def service_graph(
    graph: CausalGraph, keep: Collection[str] = (), max_edges: int = 120
) -> nx.DiGraph:
    """Series edges folded into service edges (weight: the heaviest series edge between the
    two; edges within a service dropped): every edge touching a service in ``keep``, then the
    heaviest others up to ``max_edges`` in all."""
    folded: dict[tuple[str, str], float] = {}
    for edge in graph.edges():
        a, b = service_or_self(edge.cause), service_or_self(edge.effect)
        if a != b:
            folded[a, b] = max(folded.get((a, b), 0.0), edge.weight)
    ordered = sorted(folded.items(), key=lambda item: (-item[1], item[0]))
    touches = [a in keep or b in keep for (a, b), _ in ordered]
    touching = [item for item, t in zip(ordered, touches, strict=True) if t]
    others = [item for item, t in zip(ordered, touches, strict=True) if not t]
    services = nx.DiGraph()
    services.add_nodes_from(sorted({service_or_self(n) for n in graph.nodes}))
    for (a, b), weight in (touching + others)[: max(max_edges, len(touching))]:
        services.add_edge(a, b, weight=weight)
    return services


def service_or_self(series: str) -> str:
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
) -> list[list[_Node]]:
    """Services by column: the longest path from a source once the ``flipped`` edges are
    reversed, a :class:`_Via` in every column an edge crosses; services with no edge in
    trailing columns. ``order`` lists every node."""
    position = {n: k for k, n in enumerate(order)}
    dag = nx.DiGraph()
    dag.add_nodes_from(n for n in order if graph.degree(n) > 0)
    dag.add_edges_from((v, u) if (u, v) in flipped else (u, v) for u, v in graph.edges)
    result: list[list[_Node]] = [
        sorted(layer, key=position.__getitem__) for layer in nx.topological_generations(dag)
    ]
    level = {n: k for k, layer in enumerate(result) for n in layer}
    for u, v in sorted(dag.edges, key=lambda e: (position[e[0]], position[e[1]])):
        if level[v] - level[u] > 1:
            vias = [_Via(u, v, k) for k in range(1, level[v] - level[u])]
            for via in vias:
                result[level[u] + via.step].append(via)
            dag.remove_edge(u, v)
            nx.add_path(dag, [u, *vias, v])
    isolated: list[_Node] = [n for n in order if graph.degree(n) == 0]
    dag.add_nodes_from(isolated)  # the sweep asks every node of a column for its neighbours
    rows = max([_MIN_ISOLATED_ROWS, *(len(layer) for layer in result)])
    result += [isolated[i : i + rows] for i in range(0, len(isolated), rows)]
    return _sweep(result, dag)


def _sweep(layers: list[list[_Node]], dag: nx.DiGraph) -> list[list[_Node]]:
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


def _barycentre(neighbours: Iterable[_Node], positions: dict[_Node, int], own: int) -> float:
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

    def slot(node: _Node) -> float:
        return _VIA_ROW if isinstance(node, _Via) else row

    heights = [sum(slot(n) + _ROW_GAP for n in layer) - _ROW_GAP for layer in layers]
    height = max(heights, default=0.0)
    boxes: dict[str, Box] = {}
    spans: dict[str, tuple[float, float]] = {}
    vias: dict[_Via, Box] = {}
    x = 0.0
    for layer, used in zip(layers, heights, strict=True):
        column = max([sizes[n][0] + 2 * _PAD_X for n in layer if isinstance(n, str)] or [0.0])
        top = height - (height - used) / 2
        for node in layer:
            if isinstance(node, _Via):
                vias[node] = Box(x, top - _VIA_ROW, x + column, top)
            else:
                width = sizes[node][0] + 2 * _PAD_X
                left = x + (column - width) / 2
                boxes[node] = Box(left, top - row, left + width, top)
                spans[node] = (x, x + column)
            top -= slot(node) + _ROW_GAP
        x += column + _COLUMN_GAP
    edges = tuple(
        (str(u), str(v), float(d.get("weight", 1.0))) for u, v, d in graph.edges(data=True)
    )
    routes = _routes(vias, edges, flipped)
    width = max(x - _COLUMN_GAP, 0.0)
    return GraphLayout(boxes, spans, edges, frozenset(flipped), routes, width, height)


def _routes(
    vias: dict[_Via, Box],
    edges: Iterable[tuple[str, str, float]],
    flipped: Collection[tuple[str, str]],
) -> dict[tuple[str, str], tuple[tuple[float, float], ...]]:
    """Each long edge's waypoints from cause to effect: across each column it crosses, along
    the middle of its slot (right to left for an edge drawn backwards)."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for via, box in sorted(vias.items(), key=lambda item: item[0].step):
        y = box.center[1]
        points.setdefault((via.cause, via.effect), []).extend([(box.x0, y), (box.x1, y)])
    routes = {}
    for u, v, _ in edges:
        backward = (u, v) in flipped
        path = points.get((v, u) if backward else (u, v))
        if path:
            routes[u, v] = tuple(path[::-1] if backward else path)
    return routes


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
