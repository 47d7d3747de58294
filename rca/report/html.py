"""The report page: what was analysed, the ranking (table and bar chart), the causal graph
around the top causes, and the top series around the onset. Every name from telemetry is
HTML-escaped (series and service names come from whoever sends metrics)."""

from __future__ import annotations

import base64
import html
import math

import pandas as pd

from rca.report.figures import graph_png, ranking_png, series_png
from rca.types import RCAResult
from rca.window import Window

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;font-size:.9em}th{background:#f4f6f7}img{max-width:100%;display:block;
margin:1em 0}.meta{color:#555}code{font-size:.9em}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def render_report(
    incident_id: str, title: str, result: RCAResult, window: Window, onset: pd.Timestamp
) -> str:
    """The report of one finished analysis as an HTML document."""
    esc = html.escape
    best = {}
    for cause in result.causes:
        best.setdefault(cause.service, cause)
    rows = []
    for rank, (service, score) in enumerate(result.services()[:15], start=1):
        cause = best.get(service)
        rows.append(
            f"<tr><td>{rank}</td><td>{esc(service)}</td><td>{_num(score)}</td>"
            f"<td><code>{esc(cause.series) if cause else ''}</code></td>"
            f"<td>{_num(cause.evidence.anomaly) if cause else ''}</td></tr>"
        )
    timings = ", ".join(f"{esc(k)} {v:.3g} s" for k, v in result.timings_seconds.items())
    onset_text = pd.Timestamp(onset).isoformat()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>RCA {esc(incident_id)}: {esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Root causes: {esc(title)}</h1>",
        f'<p class="meta">incident <code>{esc(incident_id)}</code> · method '
        f"<code>{esc(result.method)}</code> · onset {esc(onset_text)} · window "
        f"{esc(window.index[0].isoformat())} – {esc(window.index[-1].isoformat())} "
        f"({len(window.columns)} series × {len(window.index)} steps, "
        f"{len(result.dropped)} dropped as flat or empty) · {timings}</p>",
        "<h2>Ranking</h2>",
        "<table><tr><th>#</th><th>service</th><th>score</th><th>strongest series</th>"
        "<th>anomaly</th></tr>",
        *rows,
        "</table>",
        _img(ranking_png(result), "ranking of services"),
        "<h2>Causal graph around the top causes</h2>",
        _img(graph_png(result), "causal graph"),
        "<h2>Top series around the onset</h2>",
        _img(series_png(result, window, onset), "top series around the onset"),
        "</body></html>",
    ]
    return "\n".join(parts)
