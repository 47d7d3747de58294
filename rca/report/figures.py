"""The report's pictures as PNG bytes (matplotlib's object API with the Agg canvas: no pyplot
state, so threads and worker processes can draw at the same time).

- :func:`graph_png`: the causal graph folded into services, cause -> effect left to right
  (:mod:`rca.report.layout`), the top suspects coloured by rank, the edges that carried the walk
  to them in red.
- :func:`series_png`: series around the onset, chosen across services and metrics
  (:func:`pick_panels`), in display units, the top cause beside the alerting series.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from rca.report.layout import (
    FONT_SIZE,
    Box,
    GraphLayout,
    layered_layout,
    service_graph,
)
from rca.report.units import attrs_label, key_of, series_label, series_unit
from rca.report.verdict import Verdict
from rca.types import RCAResult
from rca.window import Window

_DPI = 96
_CAUSE = "#c0392b"
_SUSPECT = "#f5b7b1"
_ANOMALOUS = "#fdebd0"
_OTHER = "#5d6d7e"
_EDGE = "#95a5a6"
_BLUE = "#2471a3"
_MARGIN = 12.0  # points around the graph
_HEADER = 26.0  # points above it for the title
_FOOTER = 30.0  # and below it for the legend
_MIN_WIDTH = 620.0  # points: the legend must fit


# Names from telemetry are drawn with parse_math=False: a "$" in a service name must not start
# mathtext (which can fail to parse, and would not match the measured label box).


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def shorten(text: str, limit: int) -> str:
    """``text`` cut in the middle to ``limit`` characters, so that names which share a prefix
    stay apart.

    >>> shorten("PetSite_AWS::ECS::Fargate", 16)
    'PetSite_…Fargate'
    """
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2 + (limit - 1) % 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _message(text: str) -> Figure:
    figure = Figure(figsize=(7.5, 1.2))
    ax = figure.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", parse_math=False)
    ax.set_axis_off()
    return figure


# ---- the causal graph ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Marks:
    """What the graph picture highlights: suspects by rank, the injected service, the
    service edges that carried the walk to the top causes."""

    rank: dict[str, int]
    suspects: int
    anomalous: frozenset[str]
    injected: str | None
    walk: frozenset[tuple[str, str]]


def _marks(result: RCAResult, verdict: Verdict) -> _Marks:
    # The suspects are the rows ranked 1, 2, 3...; the injected service may follow out of turn.
    suspects = [row for k, row in enumerate(verdict.causes, start=1) if row.rank == k]
    walk = {
        (key_of(cause).service, key_of(effect).service)
        for row in suspects
        for cause, effect, _ in row.walk_edges
    }
    return _Marks(
        rank={row.service: row.rank for row in verdict.causes},
        suspects=len(suspects),
        anomalous=frozenset(s for s, score in result.services() if score > 0),
        injected=next((row.service for row in verdict.causes if row.injected), None),
        walk=frozenset(walk),
    )


def graph_layout(result: RCAResult, verdict: Verdict) -> GraphLayout | None:
    """The layout the graph picture draws (``None`` when the method builds no graph)."""
    if result.graph is None:
        return None
    marks = _marks(result, verdict)
    order = [service for service, _ in result.services()]
    services = service_graph(result.graph, keep=set(marks.rank))
    labels = {n: _label(n, marks.rank.get(n)) for n in services.nodes}
    return layered_layout(services, labels, order)


def _label(service: str, rank: int | None) -> str:
    name = shorten(service, 32)
    return f"#{rank} {name}" if rank is not None else name


def graph_figure(result: RCAResult, verdict: Verdict) -> Figure:
    """The service graph, one box per service; 1 point of layout is 1 point of figure."""
    layout = graph_layout(result, verdict)
    if layout is None or not layout.boxes:
        return _message(f"{result.method} builds no causal graph")
    marks = _marks(result, verdict)
    width = max(layout.width + 2 * _MARGIN, _MIN_WIDTH)
    height = layout.height + 2 * _MARGIN + _HEADER + _FOOTER
    figure = Figure(figsize=(width / 72, height / 72))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    left = (width - layout.width) / 2
    ax.set_xlim(-left, width - left)
    ax.set_ylim(-_MARGIN - _FOOTER, layout.height + _MARGIN + _HEADER)
    _draw_edges(ax, layout, marks)
    for service, box in layout.boxes.items():
        _draw_box(ax, service, box, marks)
    count = len(layout.boxes)
    ax.text(
        -left + _MARGIN,
        layout.height + _MARGIN + _HEADER / 2,
        f"Causal graph of {count} services: cause → effect, left to right",
        fontsize=11,
        va="center",
        weight="bold",
    )
    legend = (
        "red: the first suspect and the edges that carried the walk to the top suspects · "
        "pink: the next suspects · cream: other anomalous services"
    )
    if layout.backward:
        legend += " · dashed arrow: part of a cycle, drawn backwards"
    if marks.injected:
        legend += " · blue dashed box: where the fault was injected"
    ax.text(-left + _MARGIN, -_MARGIN - _FOOTER / 2, legend, fontsize=7.5, va="center")
    return figure


def _draw_edges(ax: Axes, layout: GraphLayout, marks: _Marks) -> None:
    """Each edge from its cause's box through its waypoints to its effect's box, the arrow
    head on the last leg."""
    heaviest = max((w for _, _, w in layout.edges), default=1.0) or 1.0
    for u, v, weight in layout.edges:
        points = layout.path(u, v)
        walked = (u, v) in marks.walk
        style = dict(
            color=_CAUSE if walked else _EDGE,
            lw=2.0 if walked else 0.5 + 1.2 * weight / heaviest,
            alpha=1.0 if walked else 0.7,
            linestyle="--" if (u, v) in layout.backward else "-",
            shrinkA=0,
            shrinkB=1,
            mutation_scale=9,
        )
        for k, (leg_start, leg_end) in enumerate(itertools.pairwise(points), start=1):
            head = "-|>" if k == len(points) - 1 else "-"
            ax.annotate(
                "",
                xy=leg_end,
                xytext=leg_start,
                arrowprops={"arrowstyle": head, **style},
                zorder=3 if walked else 1,
            )


def _draw_box(ax: Axes, service: str, box: Box, marks: _Marks) -> None:
    rank = marks.rank.get(service)
    face = (
        _CAUSE
        if rank == 1
        else _SUSPECT
        if rank is not None and rank <= marks.suspects
        else _ANOMALOUS
        if service in marks.anomalous
        else "white"
    )
    injected = service == marks.injected
    ax.add_patch(
        FancyBboxPatch(
            (box.x0, box.y0),
            box.x1 - box.x0,
            box.y1 - box.y0,
            boxstyle="round,pad=0,rounding_size=3",
            facecolor=face,
            edgecolor=_BLUE if injected else _OTHER,
            linewidth=2.0 if injected else 0.7,
            linestyle="--" if injected else "-",
            zorder=4,
        )
    )
    x, y = box.center
    ax.text(
        x,
        y,
        _label(service, rank),
        fontsize=FONT_SIZE,
        ha="center",
        va="center",
        color="white" if rank == 1 else "#1b2631",
        zorder=5,
        parse_math=False,
        gid=f"label:{service}",
    )


def graph_png(result: RCAResult, verdict: Verdict) -> bytes:
    return _png(graph_figure(result, verdict))


# ---- the series ----------------------------------------------------------------------------


def pick_panels(
    result: RCAResult, window: Window, symptom: str | None, top: int = 6
) -> list[tuple[str, str]]:
    """Up to ``top`` series as ``(series, role)``: the first cause's, the alerting series
    beside it, then one series per further service, then further metrics; the statistics of
    one metric (p50, p90, mean...) count as one metric."""
    rank = {service: k for k, (service, _) in enumerate(result.services(), start=1)}
    causes = [c for c in result.causes if c.series in window.columns]
    chosen: dict[str, str] = {}
    metrics: set[tuple[str, str]] = set()

    def add(series: str, role: str) -> None:
        key = key_of(series)
        if len(chosen) < top and series not in chosen and (key.service, key.metric) not in metrics:
            chosen[series] = role
            metrics.add((key.service, key.metric))

    if causes:
        add(causes[0].series, f"#{rank.get(causes[0].service, 1)}")
    if symptom is not None and symptom in window.columns:
        add(symptom, "alert")
    services = {key_of(s).service for s in chosen}
    for cause in causes:
        if key_of(cause.series).service not in services:
            add(cause.series, f"#{rank.get(cause.service, '?')}")
            services.add(key_of(cause.series).service)
    for cause in causes:
        add(cause.series, f"#{rank.get(cause.service, '?')}")
    return list(chosen.items())


def series_figure(
    result: RCAResult, window: Window, onset: pd.Timestamp, verdict: Verdict
) -> Figure:
    """Two panels a row, the top cause's series first and the alerting series beside it;
    x: seconds from the onset; y: the series in its display unit."""
    panels = pick_panels(result, window, verdict.symptom)
    if not panels:
        return _message("no series to show")
    changes = {row.series: row.changed_seconds for row in verdict.causes if row.series}
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(10, 2.3 * rows + 0.5))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    onset = pd.Timestamp(onset)
    seconds = (window.index - onset).total_seconds()
    for ax, (series, role) in zip(axes, panels, strict=False):
        unit = series_unit(series)
        values = window[series].to_numpy(dtype=float) * unit.scale
        color = _CAUSE if role == "#1" else _BLUE if role == "alert" else _OTHER
        ax.plot(seconds, values, color=color, lw=1.2)
        ax.axvline(0.0, color=_CAUSE, ls="--", lw=1.0)
        changed = changes.get(series)
        if changed is not None and changed != 0:
            ax.axvline(changed, color="#d68910", ls=":", lw=1.2)
        title = f"{role} · {shorten(series_label(series, attrs=False), 80)}"
        if key_of(series).attrs:
            title += "\n" + shorten(attrs_label(series), 90)
        ax.set_title(title, fontsize=8, loc="left", parse_math=False)
        ax.set_ylabel(unit.symbol or "value", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax in axes[-columns:]:
        ax.set_xlabel(f"seconds from the onset ({onset:%H:%M:%S} UTC)", fontsize=8)
    figure.text(
        0.01,
        0.995,
        "red dashed: the onset · orange dotted: when the series changed",
        fontsize=7.5,
        va="top",
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    return figure


def series_png(result: RCAResult, window: Window, onset: pd.Timestamp, verdict: Verdict) -> bytes:
    return _png(series_figure(result, window, onset, verdict))
