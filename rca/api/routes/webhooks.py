"""Alert webhooks: Grafana unified alerting (version "1") and Alertmanager (version "4").

A firing alert opens an incident once per episode (fingerprint + startsAt); re-deliveries are
answered with the same incident. A resolved alert closes it. A notification is stored in one
transaction. When the queue cannot take all its new episodes, those that fit are stored and
the answer is 503 with Retry-After, which both senders retry with the whole notification
(Alertmanager retries 5xx only; a 4xx would drop it): the stored ones are then duplicates.
Input no database can hold is cleaned or refused with 422 (see :mod:`rca.incidents.alerts`),
as are alerts starting more than ten minutes ahead of this server's clock.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from rca.api import oplog
from rca.api.deps import ServiceDep, require_webhook_auth
from rca.api.schemas import (
    AlertmanagerWebhook,
    AlertOutcomePublic,
    AlertsPublic,
    ErrorPublic,
    GrafanaWebhook,
)
from rca.incidents.alerts import AlertEvent, alertmanager_events, grafana_events
from rca.incidents.service import AlertOutcome, IncidentService, QueueFull

router = APIRouter(
    prefix="/v1/alerts", tags=["alerts"], dependencies=[Depends(require_webhook_auth)]
)

_RESPONSES = {
    401: {"model": ErrorPublic, "description": "no or wrong credentials or signature"},
    413: {"model": ErrorPublic, "description": "body too large"},
    503: {"model": ErrorPublic, "description": "queue full; retry after Retry-After"},
}


def _handle(service: IncidentService, events: list[AlertEvent]) -> AlertsPublic:
    try:
        outcomes: list[AlertOutcome] = service.on_alerts(events)
    except QueueFull as exc:
        raise HTTPException(
            503, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)}
        ) from exc
    for outcome in outcomes:
        if outcome.action == "opened" and outcome.id is not None:
            oplog.accepted(service.get(outcome.id))
    data = [AlertOutcomePublic(**vars(o)) for o in outcomes]
    return AlertsPublic(data=data, count=len(data))


@router.post("/grafana", status_code=202, response_model=AlertsPublic, responses=_RESPONSES)
def grafana_webhook(payload: GrafanaWebhook, service: ServiceDep) -> AlertsPublic:
    return _handle(service, grafana_events(payload, service.known_services()))


@router.post("/alertmanager", status_code=202, response_model=AlertsPublic, responses=_RESPONSES)
def alertmanager_webhook(payload: AlertmanagerWebhook, service: ServiceDep) -> AlertsPublic:
    return _handle(service, alertmanager_events(payload, service.known_services()))
