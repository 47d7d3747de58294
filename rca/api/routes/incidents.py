"""Incidents: list, one, its ranking, its causal graph (Grafana node-graph shape), its report."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from rca.api.deps import ServiceDep, require_report_access, require_token
from rca.api.schemas import (
    ErrorPublic,
    GraphEdgePublic,
    GraphNodePublic,
    GraphPublic,
    IncidentPublic,
    IncidentsPublic,
    RankingPublic,
    SeriesRankPublic,
    ServiceRankPublic,
)
from rca.incidents.service import IncidentService, NotFound

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])

IncidentId = Path(min_length=1, max_length=64)
_UNAUTHORIZED = {401: {"model": ErrorPublic, "description": "no or wrong token"}}
_MISSING = {404: {"model": ErrorPublic, "description": "no such incident"}}
_UNFINISHED = {409: {"model": ErrorPublic, "description": "the analysis has not finished"}}


def incident_public(row: dict, request: Request, service: IncidentService) -> IncidentPublic:
    url = str(request.url_for("get_report", incident_id=row["id"]))
    key = service.report_signature(row["id"])
    return IncidentPublic.from_row(row, f"{url}?key={key}" if key else url)


def _node_stat(cause: dict | None) -> float | None:
    """A node's number: the series' anomaly strength, else its score (methods without
    per-series evidence)."""
    if cause is None:
        return None
    return cause["anomaly"] if cause["anomaly"] is not None else cause["score"]


def _finished(service: IncidentService, incident_id: str) -> dict:
    try:
        row = service.get_result(incident_id)
    except NotFound:
        raise HTTPException(404, f"no incident {incident_id}") from None
    if row["status"] != "done":
        raise HTTPException(
            409,
            f"the analysis is {row['status']}" + (f": {row['error']}" if row.get("error") else ""),
        )
    return row


@router.get(
    "",
    response_model=IncidentsPublic,
    responses=_UNAUTHORIZED,
    dependencies=[Depends(require_token)],
)
def list_incidents(
    request: Request,
    service: ServiceDep,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000_000),
    status: Literal["queued", "running", "done", "failed"] | None = None,
    state: Literal["open", "resolved"] | None = None,
) -> IncidentsPublic:
    rows, count = service.list(limit, offset, status, state)
    return IncidentsPublic(data=[incident_public(r, request, service) for r in rows], count=count)


@router.get(
    "/{incident_id}",
    response_model=IncidentPublic,
    responses={**_UNAUTHORIZED, **_MISSING},
    dependencies=[Depends(require_token)],
)
def get_incident(
    request: Request,
    service: ServiceDep,
    incident_id: str = IncidentId,
) -> IncidentPublic:
    try:
        row = service.get(incident_id)
    except NotFound:
        raise HTTPException(404, f"no incident {incident_id}") from None
    return incident_public(row, request, service)


@router.get(
    "/{incident_id}/ranking",
    response_model=RankingPublic,
    responses={**_UNAUTHORIZED, **_MISSING, **_UNFINISHED},
    dependencies=[Depends(require_token)],
)
def get_ranking(service: ServiceDep, incident_id: str = IncidentId) -> RankingPublic:
    row = _finished(service, incident_id)
    result = row["result"]
    return RankingPublic(
        incident_id=incident_id,
        method=result["method"],
        data=[ServiceRankPublic(**s) for s in result["services"]],
        count=len(result["services"]),
        series=[SeriesRankPublic(**c) for c in result["causes"]],
        dropped=result["dropped"],
        confidence=result.get("confidence"),
        onset=result["window"].get("onset"),
        onset_method=result["window"].get("onset_method"),
        verdict=result.get("verdict"),
    )


@router.get(
    "/{incident_id}/graph",
    response_model=GraphPublic,
    responses={**_UNAUTHORIZED, **_MISSING, **_UNFINISHED},
    dependencies=[Depends(require_token)],
)
def get_graph(
    service: ServiceDep,
    incident_id: str = IncidentId,
    top: int = Query(30, ge=1, le=200, description="at most this many best series"),
) -> GraphPublic:
    result = _finished(service, incident_id)["result"]
    causes = {c["series"]: c for c in result["causes"]}
    names = result["graph"]["nodes"][:top]
    keep = set(names)
    nodes = [
        GraphNodePublic(
            id=name,
            title=name,
            subTitle=causes[name]["service"] if name in causes else "",
            mainStat=_node_stat(causes.get(name)),
        )
        for name in names
    ]
    edges = [
        GraphEdgePublic(id=f"{u}->{v}", source=u, target=v, mainStat=w)
        for u, v, w in result["graph"]["edges"]
        if u in keep and v in keep
    ]
    return GraphPublic(nodes=nodes, edges=edges)


@router.get(
    "/{incident_id}/report",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "the report page"},
        **{
            status: {
                "description": what["description"],
                "content": {"application/json": {"schema": ErrorPublic.model_json_schema()}},
            }
            for status, what in {**_UNAUTHORIZED, **_MISSING, **_UNFINISHED}.items()
        },
    },
    dependencies=[Depends(require_report_access)],
)
def get_report(service: ServiceDep, incident_id: str = IncidentId) -> HTMLResponse:
    try:
        html = service.report(incident_id)
    except NotFound:
        raise HTTPException(404, f"no incident {incident_id}") from None
    if html is None:
        row = service.get(incident_id)
        raise HTTPException(409, f"the analysis is {row['status']}, no report yet")
    return HTMLResponse(html)
