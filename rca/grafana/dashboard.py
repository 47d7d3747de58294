"""The RCA dashboard: an incidents table, a node graph of the selected incident's causal graph
and one of the graph learned in the background (services), read from this API by the Infinity
data source (``yesoreyeram-infinity-datasource``,
backend parser). ``helm/rca-platform/files/dashboard.json`` is this dashboard with
``__DATASOURCE_UID__`` and ``__DASHBOARD_UID__`` placeholders (a test keeps them equal).
"""

from __future__ import annotations

from typing import Any

INFINITY = "yesoreyeram-infinity-datasource"


def _node_graph(
    panel_id: int,
    title: str,
    datasource: dict[str, str],
    url: str,
    *,
    y: int,
    description: str | None = None,
) -> dict[str, Any]:
    """A full-width node-graph panel of the nodes and edges ``url`` serves."""
    return {
        "id": panel_id,
        "type": "nodeGraph",
        "title": title,
        **({"description": description} if description else {}),
        "gridPos": {"h": 16, "w": 24, "x": 0, "y": y},
        "datasource": datasource,
        "targets": [
            _query("nodes", datasource, url, "node-graph-nodes", "nodes"),
            _query("edges", datasource, url, "node-graph-edges", "edges"),
        ],
        "options": {},
    }


def _query(ref: str, datasource: dict[str, str], url: str, fmt: str, root: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": datasource,
        "type": "json",
        "source": "url",
        "parser": "backend",
        "format": fmt,
        "url": url,
        "url_options": {"method": "GET"},
        "root_selector": root,
        "columns": [],
    }


def dashboard(datasource_uid: str, dashboard_uid: str) -> dict[str, Any]:
    """The dashboard model (for ``POST /api/dashboards/db``)."""
    datasource = {"type": INFINITY, "uid": datasource_uid}
    graph_url = "/v1/incidents/${incident}/graph"
    learned_url = "/v1/graph?level=service&top=100"
    return {
        "uid": dashboard_uid,
        "title": "RCA: incidents and causal graph",
        "description": "Incidents opened by alerts or the REST API, and the causal graph "
        "(cause -> effect) of the selected incident, read from the RCA API through the "
        "Infinity data source.",
        "tags": ["rca"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "type": "textbox",
                    "name": "incident",
                    "label": "Incident id",
                    "description": "Click an incident in the table to select it.",
                    "query": "",
                    "current": {"text": "", "value": ""},
                }
            ]
        },
        "panels": [
            {
                "id": 1,
                "type": "table",
                "title": "Incidents",
                "gridPos": {"h": 10, "w": 24, "x": 0, "y": 0},
                "datasource": datasource,
                "targets": [_query("A", datasource, "/v1/incidents", "table", "data")],
                "fieldConfig": {
                    "defaults": {
                        "links": [
                            {
                                "title": "Show the causal graph of this incident",
                                "url": f"/d/{dashboard_uid}?var-incident=${{__data.fields.id}}"
                                "&${__url_time_range}",
                            }
                        ]
                    },
                    "overrides": [],
                },
                "options": {"showHeader": True},
            },
            _node_graph(
                2,
                "Causal graph of incident ${incident} (edge: cause -> effect)",
                datasource,
                graph_url,
                y=10,
            ),
            _node_graph(
                3,
                "Learned causal graph between services (background fit; cause -> effect)",
                datasource,
                learned_url,
                y=26,
                description="GET /v1/graph: the newest graph rca serve learned from the stored "
                "history, series edges folded into services, the heaviest 100.",
            ),
        ],
    }
