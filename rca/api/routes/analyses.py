"""``POST /v1/rca`` (queue an analysis: 202 and the incident) and ``GET /v1/methods``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from rca.api import oplog
from rca.api.deps import ServiceDep, require_token
from rca.api.routes.incidents import incident_public
from rca.api.schemas import (
    ErrorPublic,
    IncidentPublic,
    MethodPublic,
    MethodsPublic,
    RCACreate,
)
from rca.incidents.service import QueueFull
from rca.methods import METHODS

router = APIRouter(prefix="/v1", tags=["analyses"], dependencies=[Depends(require_token)])

_UNAUTHORIZED = {401: {"model": ErrorPublic, "description": "no or wrong token"}}


@router.post(
    "/rca",
    status_code=202,
    response_model=IncidentPublic,
    responses={
        **_UNAUTHORIZED,
        413: {"model": ErrorPublic, "description": "body too large"},
        429: {"model": ErrorPublic, "description": "queue full; see Retry-After"},
    },
)
def create_analysis(
    body: RCACreate,
    request: Request,
    response: Response,
    service: ServiceDep,
) -> IncidentPublic:
    try:
        row = service.submit(body.start, body.end, body.onset, body.services, body.method)
    except QueueFull as exc:
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)}
        ) from exc
    oplog.accepted(row)
    public = incident_public(row, request, service)
    response.headers["Location"] = str(request.url_for("get_incident", incident_id=public.id))
    return public


@router.get("/methods", response_model=MethodsPublic, responses=_UNAUTHORIZED)
def list_methods(service: ServiceDep) -> MethodsPublic:
    data = [
        MethodPublic(name=e.name, summary=e.summary, default=e.name == service.default_method)
        for e in METHODS
    ]
    return MethodsPublic(data=data, count=len(data))
