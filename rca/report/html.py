"""The report page: the verdict first (cause, metric, change, when, confidence), the truth when
known, the onset and how it was found, the evidence per suspect, the service graph, the series
around the onset, then the whole ranking. Every name from telemetry is HTML-escaped (series and
service names come from whoever sends metrics)."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING

import pandas as pd

from rca.report.figures import graph_png, series_png
from rca.report.units import key_of, series_label
from rca.report.verdict import CauseEvidence, Verdict, seconds_text, verdict
from rca.types import Alert, RCAResult
from rca.window import Window

if TYPE_CHECKING:
    from rca.datasets.base import Truth

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;font-size:.9em;vertical-align:top}th{background:#f4f6f7}img{max-width:100%;
display:block;margin:1em 0}.meta{color:#555}code{font-size:.9em}
.verdict{font-size:1.15em;border-left:5px solid #c0392b;background:#fdf2f1;padding:.6em 1em}
.low{border-left-color:#7f8c8d;background:#f4f6f7}.truth{border-left:5px solid #2471a3;
background:#eaf2f8;padding:.4em 1em}.injected{background:#eaf2f8}ul.edges{margin:0;padding-left:1em}
"""
_EDGES_SHOWN = 3


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _series(name: str | None) -> str:
    if name is None:
        return "–"
    return f'<code title="{html.escape(name)}">{html.escape(series_label(name))}</code>'


def _edges(row: CauseEvidence) -> str:
    """The effects the walk went through, one item per service (its metrics, the heaviest
    weight)."""
    if not row.walk_edges:
        return "–"
    effects: dict[str, tuple[list[str], float]] = {}
    for _, effect, weight in row.walk_edges:
        key = key_of(effect)
        metrics, heaviest = effects.get(key.service, ([], 0.0))
        if key.metric not in metrics:
            metrics.append(key.metric)
        effects[key.service] = (metrics, max(heaviest, weight))
    items = [
        f"<li>→ {html.escape(service)}: <code>{html.escape(', '.join(metrics))}</code> "
        f"({_num(weight)})</li>"
        for service, (metrics, weight) in list(effects.items())[:_EDGES_SHOWN]
    ]
    more = len(effects) - _EDGES_SHOWN
    if more > 0:
        items.append(f"<li>and {more} more services</li>")
    return '<ul class="edges">' + "".join(items) + "</ul>"


def _evidence_row(row: CauseEvidence) -> str:
    change = row.change.text() if row.change else "–"
    mark = ' class="injected"' if row.injected else ""
    note = " (injected)" if row.injected else ""
    return (
        f"<tr{mark}><td>{row.rank}</td><td>{html.escape(row.service)}{note}</td>"
        f"<td>{_num(row.score)}</td><td>{_series(row.series)}</td>"
        f"<td>{html.escape(change)}</td><td>{_num(row.anomaly)}</td>"
        f"<td>{html.escape(row.when or '–')}</td><td>{_num(row.walk_share)}</td>"
        f"<td>{_edges(row)}</td></tr>"
    )


def _ranking(result: RCAResult, shown: int = 20) -> list[str]:
    services = result.services()
    rows = [
        f"<tr><td>{k}</td><td>{html.escape(s)}</td><td>{_num(v)}</td></tr>"
        for k, (s, v) in enumerate(services[:shown], start=1)
    ]
    rest = len(services) - shown
    tail = [f'<p class="meta">and {rest} more services</p>'] if rest > 0 else []
    return [
        "<h2>Ranking</h2>",
        '<p class="meta">score: the share of the walk that ends at the service, in (0, 1]; '
        "a service the walk gives no share scores −1/(1 + z) from its strongest robust z; "
        "−2: no series kept.</p>"
        if result.service_scores is not None
        else f'<p class="meta">score: {html.escape(result.method)}\'s, higher first.</p>',
        "<table><tr><th>#</th><th>service</th><th>score</th></tr>",
        *rows,
        "</table>",
        *tail,
    ]


def _meta(
    incident_id: str, alert_text: str, result: RCAResult, window: Window, found: Verdict
) -> str:
    esc = html.escape
    onset = f"onset {found.onset.isoformat()}"
    if found.onset_method:
        onset += f" ({found.onset_method})"
    stats = dict(result.graph.stats) if result.graph is not None else {}
    # Graph statistics are counts and settings (granger_epochs, fdr), never seconds.
    counts = "".join(f" · {k.replace('_', ' ')} {v:g}" for k, v in sorted(stats.items()))
    timings = ", ".join(f"{k} {seconds_text(v)}" for k, v in result.timings_seconds.items())
    return (
        f'<p class="meta">alert: {esc(alert_text)} · incident <code>{esc(incident_id)}</code>'
        f"<br>{esc(onset)}<br>method <code>{esc(result.method)}</code>{esc(counts)} · "
        f"window {esc(window.index[0].isoformat())} – {esc(window.index[-1].isoformat())} "
        f"({len(window.columns)} series × {len(window.index)} steps, "
        f"{len(result.dropped)} dropped as flat or empty) · time: {esc(timings)}</p>"
    )


def render_report(
    incident_id: str,
    alert_text: str,
    result: RCAResult,
    window: Window,
    onset: pd.Timestamp,
    *,
    alert: Alert | None = None,
    truth: Truth | None = None,
    onset_method: str | None = None,
) -> str:
    """The report of one finished analysis as an HTML document. ``alert`` names the alerting
    services or series (shown beside the top cause), ``truth`` the injected fault where it is
    known (demos, benchmarks), ``onset_method`` how the onset was found."""
    esc = html.escape
    found = verdict(result, window, onset, alert=alert, truth=truth, onset_method=onset_method)
    low = found.confidence is None or found.confidence_text.startswith("low")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(found.title)} · {esc(incident_id)}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{esc(found.title)}</h1>",
        f'<p id="verdict" class="verdict{" low" if low else ""}">{esc(found.headline)}</p>',
    ]
    if found.truth:
        parts.append(f'<p id="truth" class="truth">{esc(found.truth)}</p>')
    if found.miss is not None:
        parts.append(f'<p id="miss" class="truth">{esc(found.miss.text())}</p>')
    parts += [
        _meta(incident_id, alert_text, result, window, found),
        "<h2>Evidence for the top suspects</h2>",
        "<table><tr><th>#</th><th>service</th><th>score</th><th>strongest series</th>"
        "<th>change (median before → after)</th><th>robust z</th><th>changed</th>"
        "<th>walk share</th><th>edges that carried the walk (weight)</th></tr>",
        *(_evidence_row(row) for row in found.causes),
        "</table>",
        _img(graph_png(result, found), "causal graph of the services"),
        "<h2>Series around the onset</h2>",
        _img(series_png(result, window, onset, found), "series around the onset"),
        *_ranking(result),
        "</body></html>",
    ]
    return "\n".join(parts)
