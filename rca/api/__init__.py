"""The REST API (``rca serve``): RCA queries, incidents, alert webhooks, health.

Routes (OpenAPI at ``/openapi.json``): ``POST /v1/rca``, ``GET /v1/methods``,
``GET /v1/incidents[/{id}[/ranking|/graph|/report]]``, ``POST /v1/alerts/grafana``,
``POST /v1/alerts/alertmanager``, ``GET /healthz``, ``GET /readyz``.
"""

from rca.api.main import create_app

__all__ = ["create_app"]
