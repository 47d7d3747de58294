"""The report's pictures as PNG bytes (matplotlib's object API with the Agg canvas: no pyplot
state, so threads and worker processes can draw at the same time).

- :func:`ranking_png`: services best first as horizontal bars.
- :func:`graph_png`: the causal graph around the top causes (cause -> effect arrows, weights
  written on the edges).
- :func:`series_png`: the top series around the onset, the onset marked.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rca.types import RCAResult

_DPI = 96
_CAUSE = "#c0392b"
_OTHER = "#5d6d7e"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ranking_png(result: RCAResult, top: int = 10) -> bytes:
    """Services best first, their score as a bar (the best at the top)."""
    services = result.services()[:top]
    figure = Figure(figsize=(7.5, 0.45 * max(len(services), 2) + 1.0))
    ax = figure.add_subplot()
    if not services:
        ax.text(0.5, 0.5, "no services ranked", ha="center", va="center")
        ax.set_axis_off()
        return _png(figure)
    names = [_short(s) for s, _ in services][::-1]
    scores = [v if math.isfinite(v) else 0.0 for _, v in services][::-1]
    colors = [_OTHER] * (len(names) - 1) + [_CAUSE]
    ax.barh(names, scores, color=colors)
    for y, value in enumerate(scores):
        ax.text(value, y, f" {value:.3g}", va="center", fontsize=8)
    ax.set_xlabel(f"score ({result.method})")
    ax.set_title("Likely root causes, by service")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def neighbourhood(graph: nx.DiGraph, seeds: Sequence[str], max_edges: int = 24) -> nx.DiGraph:
    """The heaviest edges touching ``seeds`` (in or out), with their end nodes."""
    edges = []
    for u, v, data in graph.edges(data=True):
        if u != v and (u in seeds or v in seeds):
            edges.append((float(data.get("weight", 1.0)), str(u), str(v)))
    edges.sort(key=lambda e: (-e[0], e[1], e[2]))
    sub = nx.DiGraph()
    sub.add_nodes_from(seeds)
    for weight, u, v in edges[:max_edges]:
        sub.add_edge(u, v, weight=weight)
    return sub


def graph_png(result: RCAResult, top: int = 3) -> bytes:
    """The causal graph around the ``top`` cause series: arrows cause -> effect, the edge
    weight on each arrow, the top causes in red."""
    seeds = [c.series for c in result.causes[:top]]
    figure = Figure(figsize=(9, 6.5))
    ax = figure.add_subplot()
    ax.set_axis_off()
    if result.graph is None or not seeds:
        ax.text(0.5, 0.5, f"{result.method} builds no causal graph", ha="center", va="center")
        return _png(figure)
    sub = neighbourhood(result.graph, seeds)
    if sub.number_of_edges() == 0:
        ax.text(0.5, 0.5, "no edges around the top causes", ha="center", va="center")
        return _png(figure)
    positions = nx.spring_layout(sub, seed=0, k=1.6 / math.sqrt(sub.number_of_nodes()))
    for u, v, data in sub.edges(data=True):
        (x0, y0), (x1, y1) = positions[u], positions[v]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="-|>", color="#7f8c8d", shrinkA=12, shrinkB=12, lw=1.2),
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            f"{data['weight']:.2g}",
            fontsize=7,
            color="#34495e",
            ha="center",
            va="center",
            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
        )
    for node, (x, y) in positions.items():
        is_seed = node in seeds
        ax.scatter(
            [x], [y], s=220 if is_seed else 120, color=_CAUSE if is_seed else _OTHER, zorder=3
        )
        ax.text(x, y - 0.09, _short(node, 40), fontsize=7, ha="center", va="top", zorder=4)
    ax.set_title("Causal graph around the top causes (arrow: cause → effect, label: weight)")
    xs, ys = zip(*positions.values(), strict=True)
    ax.set_xlim(min(xs) - 0.35, max(xs) + 0.35)
    ax.set_ylim(min(ys) - 0.3, max(ys) + 0.2)
    return _png(figure)


def series_png(result: RCAResult, window: pd.DataFrame, onset: pd.Timestamp, top: int = 4) -> bytes:
    """The ``top`` cause series around the onset, one panel each, the onset as a red line."""
    names = [c.series for c in result.causes if c.series in window.columns][:top]
    figure = Figure(figsize=(9, 1.9 * max(len(names), 1) + 0.4))
    if not names:
        ax = figure.add_subplot()
        ax.text(0.5, 0.5, "no series to show", ha="center", va="center")
        ax.set_axis_off()
        return _png(figure)
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    times = window.index.tz_convert("UTC").tz_localize(None)
    marker = pd.Timestamp(onset).tz_convert("UTC").tz_localize(None)
    for ax, name in zip(axes, names, strict=True):
        values = window[name].to_numpy(dtype=float)
        ax.plot(times, values, color=_OTHER if name != names[0] else _CAUSE, lw=1.1)
        ax.axvline(marker, color=_CAUSE, ls="--", lw=1.0)
        ax.set_title(_short(name, 90), fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
        if np.isfinite(values).any():
            ax.margins(y=0.15)
    axes[0].text(marker, axes[0].get_ylim()[1], " onset", color=_CAUSE, fontsize=8, va="top")
    axes[-1].set_xlabel("time (UTC)")
    figure.autofmt_xdate()
    return _png(figure)
