"""Request and response schemas (``…Create`` in, ``…Public`` out, lists as ``{data, count}``).

The webhook payloads are the senders' contracts and live with the code that reads them
(:mod:`rca.incidents.alerts`); they are re-exported here for the routes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from rca.incidents.alerts import AlertmanagerWebhook, CleanModel, GrafanaWebhook

__all__ = [
    "AlertOutcomePublic",
    "AlertmanagerWebhook",
    "AlertsPublic",
    "ErrorPublic",
    "GrafanaWebhook",
    "GraphEdgePublic",
    "GraphNodePublic",
    "GraphPublic",
    "HealthPublic",
    "IncidentPublic",
    "IncidentsPublic",
    "RCACreate",
    "RankingPublic",
    "ReadyPublic",
    "SeriesRankPublic",
    "ServiceRankPublic",
]

_EARLIEST = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC; a time without an offset is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class RCACreate(CleanModel):
    """An analysis of ``[start, end]``. Times: ISO 8601 (no offset = UTC) or unix seconds.
    Strings are cleaned and non-finite numbers read as ``null`` (see ``CleanModel``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-11-26T14:00:00Z",
                    "end": "2026-11-26T14:20:00Z",
                    "onset": "2026-11-26T14:15:00Z",
                    "services": ["frontend", "carts"],
                    "method": "run",
                }
            ]
        },
    )

    start: dt.datetime
    end: dt.datetime
    onset: dt.datetime | None = Field(
        None, description="incident start; default: found by the onset detector"
    )
    services: list[ServiceName] | None = Field(
        None, max_length=1000, description="services to analyse (default: all)"
    )
    method: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="a registered method (GET /v1/methods); default: the server's"
    )

    @field_validator("start", "end", "onset")
    @classmethod
    def _in_range(cls, value: dt.datetime | None) -> dt.datetime | None:
        value = utc(value)
        if value is not None and not _EARLIEST <= value <= _LATEST:
            raise ValueError("time out of range (1970-01-02 .. 2200-01-01)")
        return value


class TopCausePublic(BaseModel):
    service: str
    score: float | None
    series: str | None


class IncidentPublic(BaseModel):
    """An incident: where it came from, its analysis status and timings, its top causes."""

    id: str
    source: Literal["api", "grafana", "alertmanager"]
    status: Literal["queued", "running", "done", "failed"]
    state: Literal["open", "resolved"]
    title: str | None
    method: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    onset: dt.datetime | None
    services: list[str] | None
    symptoms: list[str]
    fingerprint: str | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    deliveries: int
    attempts: int
    error: str | None
    timings_seconds: dict[str, float]
    top_service: str | None
    top: list[TopCausePublic]
    dashboard_uid: str | None
    panel_id: int | None
    annotation_id: int | None
    writeback_error: str | None
    report_url: str

    @classmethod
    def from_row(cls, row: dict[str, Any], report_url: str) -> IncidentPublic:
        top = row.get("top") or []
        return cls(
            **{k: row.get(k) for k in cls.model_fields if k in row and k != "top"},
            timings_seconds=row.get("timings") or {},
            top_service=top[0]["service"] if top else None,
            top=[TopCausePublic(**t) for t in top],
            report_url=report_url,
        )


class IncidentsPublic(BaseModel):
    data: list[IncidentPublic]
    count: int = Field(description="incidents matching the filters (all pages)")


class ServiceRankPublic(BaseModel):
    rank: int
    service: str
    score: float | None
    series: str | None = Field(description="the service's strongest series (the evidence)")
    anomaly: float | None


class SeriesRankPublic(BaseModel):
    rank: int
    series: str
    service: str
    score: float | None
    anomaly: float | None
    onset: str | None = Field(description="when the series changed (ISO 8601)")
    walk_share: float | None


class RankingPublic(BaseModel):
    """Services best first (``data``), the best series with their evidence, what was dropped."""

    incident_id: str
    method: str
    data: list[ServiceRankPublic]
    count: int
    series: list[SeriesRankPublic]
    dropped: list[str]
    confidence: float | None = Field(
        None, description="how much the evidence supports the first place, 0..1"
    )
    onset: str | None = Field(None, description="the onset analysed (ISO 8601)")
    onset_method: str | None = Field(
        None, description="'given', or how the onset detector found it"
    )
    verdict: dict[str, Any] | None = Field(
        None,
        description="the report's answer: title, headline, confidence in words, the evidence "
        "per top cause (change with units, change time, walk edges)",
    )


class GraphNodePublic(BaseModel):
    """A node-graph node (Grafana ``NodeGraphDataFrameFieldNames``): a series."""

    id: str
    title: str
    subTitle: str
    mainStat: float | None


class GraphEdgePublic(BaseModel):
    """A node-graph edge from cause (``source``) to effect (``target``), weight as mainStat."""

    id: str
    source: str
    target: str
    mainStat: float


class LearnedEdgePublic(GraphEdgePublic):
    secondaryStat: float | None = Field(
        None, description="the estimated lag in steps (series level; null where none)"
    )


class GraphPublic(BaseModel):
    nodes: list[GraphNodePublic]
    edges: list[GraphEdgePublic]


class LearnedGraphPublic(GraphPublic):
    """The newest causal graph learned from history in the background, in node-graph shape:
    services (or series) as nodes, the heaviest learned cause -> effect edges."""

    edges: list[LearnedEdgePublic]
    version: int
    fitted_at: dt.datetime
    history_start: dt.datetime
    history_end: dt.datetime
    fit_seconds: float
    series: int = Field(description="series the graph was learned over")
    learned_edges: int = Field(description="learned series edges in all (the top are shown)")
    level: Literal["service", "series"]


class AlertOutcomePublic(BaseModel):
    id: str | None = Field(description="the incident (none for a resolved alert never seen)")
    fingerprint: str
    status: Literal["firing", "resolved"]
    action: Literal["opened", "duplicate", "resolved", "ignored"]


class AlertsPublic(BaseModel):
    data: list[AlertOutcomePublic]
    count: int


class MethodPublic(BaseModel):
    name: str
    summary: str
    default: bool


class MethodsPublic(BaseModel):
    data: list[MethodPublic]
    count: int


class HealthPublic(BaseModel):
    status: Literal["ok"]


class ReadyPublic(BaseModel):
    ready: bool
    checks: dict[str, bool]
    queued: int | None = None
    newest_sample: dt.datetime | None = None
    series: int | None = Field(None, description="series in the window store (with ingest)")


class ErrorPublic(BaseModel):
    detail: str
