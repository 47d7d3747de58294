"""``/healthz`` (the process answers; never touches the database) and ``/readyz`` (the store
answers, the analysis workers are warm, and, with ingest, the consumer has partitions)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from rca.api.deps import ServiceDep
from rca.api.schemas import HealthPublic, ReadyPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
async def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "not ready (see checks)"}},
)
def readyz(response: Response, service: ServiceDep) -> ReadyPublic:
    checks = service.readiness()
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return ReadyPublic(ready=ready, checks=checks, **service.window_status())
