"""Alert webhooks -> alert events (pure: payload in, events out).

Two senders, one shape (see ``../shared/reference/ecosystem.md`` §5.1 and the fixtures):

- Grafana unified alerting, webhook contact point, ``version: "1"``: Alertmanager's fields plus
  ``orgId``, ``state``, ``title``, ``message`` and per alert ``values``, ``dashboardURL``,
  ``panelURL``, ``silenceURL``, ``ruleUID``.
- Prometheus Alertmanager webhook receiver, ``version: "4"``.

Unknown fields are kept and ignored (both senders add fields over time). An alert episode is
identified by ``(fingerprint, startsAt)``: the fingerprint names the label set, not the episode,
and senders re-deliver (at least once; Alertmanager repeats a firing alert every
``repeat_interval``), so that pair is the dedupe key.

Labels choose what to analyse:

- **symptoms** (the services where the alert fired, given to the method as
  :class:`rca.types.Alert`): the first of the labels ``service_name``, ``service``, ``job``,
  ``app``, ``k8s_deployment_name``, ``deployment``, ``container``, with ``service_namespace``
  (or ``namespace``) prefixed as ``namespace/name`` when the store knows that name;
- **scope** (the services whose series are analysed): ``rca_services`` (comma separated) when
  present, else every service, because a root cause is usually somewhere else than the symptom;
- **onset**: ``rca_onset`` (label or annotation; ISO 8601 or unix seconds) when present, else
  ``startsAt``;
- **method**: ``rca_method`` when present, else the server's default.

Hostile input is bounded here, at the schema boundary, never by a database error: every string
of a payload has NUL and lone surrogates (which JSON allows and no database or UTF-8 encoder
takes) replaced by U+FFFD, so the alert is kept rather than dropped; non-finite numbers become
``null``; ids must fit a 32-bit column (else 422); what is derived for a column is cut to it
(the title) or dropped when it cannot be what it claims (a dashboard uid longer than any
Grafana uid, a panel id beyond 32 bits).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import ParseResult, parse_qs, urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rca.errors import RCAInputError
from rca.types import workload_of
from rca.window import to_timestamp

SERVICE_LABELS = (
    "service_name",
    "service",
    "job",
    "app",
    "k8s_deployment_name",
    "deployment",
    "container",
    # A pod-level alert (KubePodCrashLooping) names the pod; its Deployment is the service.
    "k8s_pod_name",
    "pod",
)
_POD_LABELS = frozenset({"k8s_pod_name", "pod"})
NAMESPACE_LABELS = ("service_namespace", "namespace")

_Labels = dict[str, str]

# Columns of the incident store (rca.incidents.store) that derived values must fit.
INT32_MAX = 2**31 - 1
TITLE_MAX = 512
DASHBOARD_UID_MAX = 128

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    r"""``text`` with NUL and lone surrogates replaced by U+FFFD.

    >>> clean_text("a\x00b\ud800") == "a\ufffdb\ufffd"
    True
    """
    return text if text.isascii() and "\x00" not in text else _UNSTORABLE.sub("\ufffd", text)


def clean_json(value: Any) -> Any:
    """Parsed JSON with every string (keys too) cleaned by :func:`clean_text` and every
    non-finite number made ``None``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


class CleanModel(BaseModel):
    """A request body whose strings and numbers are made storable before validation."""

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return clean_json(data)


class WebhookAlert(BaseModel):
    """One alert of a webhook notification (Alertmanager's fields; Grafana adds more)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: _Labels = Field(default_factory=dict, max_length=200)
    annotations: _Labels = Field(default_factory=dict, max_length=200)
    startsAt: dt.datetime
    endsAt: dt.datetime | None = None
    generatorURL: str | None = None
    fingerprint: str = Field(min_length=1, max_length=128)


class GrafanaAlert(WebhookAlert):
    values: dict[str, float | None] | None = None
    valueString: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    silenceURL: str | None = None
    ruleUID: str | None = None
    orgId: int | None = Field(None, ge=0, le=INT32_MAX)


class _Notification(CleanModel):
    model_config = ConfigDict(extra="allow")

    receiver: str = ""
    status: Literal["firing", "resolved"]
    groupLabels: _Labels = Field(default_factory=dict)
    commonLabels: _Labels = Field(default_factory=dict)
    commonAnnotations: _Labels = Field(default_factory=dict)
    externalURL: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0


class GrafanaWebhook(_Notification):
    """Grafana unified alerting's webhook notification (``version: "1"``)."""

    version: Literal["1"]
    alerts: list[GrafanaAlert] = Field(max_length=1000)
    orgId: int | None = Field(None, ge=0, le=INT32_MAX)
    title: str | None = None
    state: str | None = None
    message: str | None = None


class AlertmanagerWebhook(_Notification):
    """Prometheus Alertmanager's webhook notification (``version: "4"``)."""

    version: Literal["4"]
    alerts: list[WebhookAlert] = Field(max_length=1000)


@dataclass(frozen=True)
class AlertEvent:
    """One alert of a notification, read: what the incident store and the analysis need."""

    source: Literal["grafana", "alertmanager"]
    status: Literal["firing", "resolved"]
    fingerprint: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    # rca_onset when the alert gives one (exact), else startsAt: an upper bound, since the rule's
    # `for:` elapsed after the change; the analysis then finds the onset before it.
    onset: dt.datetime
    title: str
    labels: dict[str, str]
    symptoms: tuple[str, ...]
    scope: tuple[str, ...] | None
    method: str | None
    org_id: int | None = None
    dashboard_uid: str | None = None
    panel_id: int | None = None
    onset_given: bool = False

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.source, self.fingerprint, self.starts_at)


def dedupe_key(source: str, fingerprint: str, starts_at: dt.datetime) -> str:
    """``source:fingerprint:startsAt`` with startsAt in UTC to the microsecond, so the same
    instant written with another offset is the same episode.

    >>> import datetime as dt
    >>> a = dt.datetime.fromisoformat("2026-10-12T09:51:03.157076+02:00")
    >>> dedupe_key("grafana", "c6eadffa33fcdf37", a)
    'grafana:c6eadffa33fcdf37:2026-10-12T07:51:03.157076Z'
    """
    utc = _utc(starts_at)
    return f"{source}:{fingerprint}:{utc.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


_ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_EARLIEST = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _ends_at(value: dt.datetime | None) -> dt.datetime | None:
    """``endsAt`` is ``0001-01-01T00:00:00Z`` while firing: no end."""
    if value is None:
        return None
    utc = _utc(value)
    return None if utc <= _ZERO_TIME or utc < _EARLIEST else utc


def _symptoms(labels: dict[str, str], known: set[str] | None) -> tuple[str, ...]:
    for key in SERVICE_LABELS:
        name = labels.get(key)
        if not name:
            continue
        if key in _POD_LABELS:
            name = workload_of(name)
        namespace = next((labels[k] for k in NAMESPACE_LABELS if labels.get(k)), None)
        if namespace and known is not None and f"{namespace}/{name}" in known:
            return (f"{namespace}/{name}",)
        if known is not None and name not in known:
            # A store service named namespace/name with this name, when exactly one exists.
            matches = [s for s in known if s.rsplit("/", 1)[-1] == name]
            if len(matches) == 1:
                return (matches[0],)
        return (name,)
    return ()


def _onset(alert: WebhookAlert) -> dt.datetime:
    text = alert.labels.get("rca_onset") or alert.annotations.get("rca_onset")
    if not text:
        return _utc(alert.startsAt)
    try:
        return to_timestamp(text).to_pydatetime()
    except (RCAInputError, ValueError, OverflowError) as exc:  # pandas: out of its range
        raise RCAInputError(f"alert {alert.fingerprint}: rca_onset {text!r} is not a time") from exc


_PANEL = re.compile(r"^(?:panel-)?(\d{1,10})$")


def _url(text: str | None) -> ParseResult | None:
    """``text`` parsed as a URL; ``None`` when empty or not one (``http://[`` raises)."""
    if not text:
        return None
    try:
        return urlparse(text)
    except ValueError:
        return None


def _dashboard(alert: GrafanaAlert) -> tuple[str | None, int | None]:
    """Dashboard UID and panel id of a Grafana alert: the ``__dashboardUid__`` and
    ``__panelId__`` annotations Grafana sets for rules linked to a panel, else read from
    ``dashboardURL`` (``/d/<uid>/...``) and ``panelURL`` (``viewPanel=<id>``)."""
    uid = alert.annotations.get("__dashboardUid__")
    panel = alert.annotations.get("__panelId__")
    dashboard_url, panel_url = _url(alert.dashboardURL), _url(alert.panelURL)
    if not uid and dashboard_url:
        parts = [p for p in dashboard_url.path.split("/") if p]
        if "d" in parts and parts.index("d") + 1 < len(parts):
            uid = parts[parts.index("d") + 1]
    if not panel and panel_url:
        panel = (parse_qs(panel_url.query).get("viewPanel") or [None])[0]
    match = _PANEL.match(panel or "")
    panel_id = int(match.group(1)) if match else None
    if uid and len(uid) > DASHBOARD_UID_MAX:
        uid = None
    return uid or None, panel_id if panel_id is not None and panel_id <= INT32_MAX else None


def _event(
    source: Literal["grafana", "alertmanager"],
    alert: WebhookAlert,
    common: dict[str, str],
    known: set[str] | None,
    org_id: int | None,
) -> AlertEvent:
    labels = {**common, **alert.labels}
    starts_at = _utc(alert.startsAt)
    onset = _onset(alert)
    onset_given = bool(alert.labels.get("rca_onset") or alert.annotations.get("rca_onset"))
    for name, value in (("startsAt", starts_at), ("rca_onset", onset)):
        if not _EARLIEST <= value <= _LATEST:
            raise RCAInputError(
                f"alert {alert.fingerprint}: {name} {value.isoformat()} is out of range"
            )
    scope_text = labels.get("rca_services", "")
    scope = tuple(s.strip() for s in scope_text.split(",") if s.strip()) or None
    dashboard_uid, panel_id = None, None
    if isinstance(alert, GrafanaAlert):
        dashboard_uid, panel_id = _dashboard(alert)
        org_id = alert.orgId if alert.orgId is not None else org_id
    return AlertEvent(
        source=source,
        status=alert.status,
        fingerprint=alert.fingerprint,
        starts_at=starts_at,
        ends_at=_ends_at(alert.endsAt),
        onset=onset,
        onset_given=onset_given,
        title=(labels.get("alertname") or alert.annotations.get("summary") or "alert")[:TITLE_MAX],
        labels=labels,
        symptoms=_symptoms(labels, known),
        scope=scope,
        method=labels.get("rca_method") or None,
        org_id=org_id,
        dashboard_uid=dashboard_uid,
        panel_id=panel_id,
    )


def grafana_events(payload: GrafanaWebhook, known: Iterable[str] | None = None) -> list[AlertEvent]:
    """Events of a Grafana notification; ``known`` are the services the store holds (used to
    match label values to service names), ``None`` when unknown."""
    services = set(known) if known is not None else None
    return [
        _event("grafana", alert, payload.commonLabels, services, payload.orgId)
        for alert in payload.alerts
    ]


def alertmanager_events(
    payload: AlertmanagerWebhook, known: Iterable[str] | None = None
) -> list[AlertEvent]:
    """Events of an Alertmanager notification (see :func:`grafana_events`)."""
    services = set(known) if known is not None else None
    return [
        _event("alertmanager", alert, payload.commonLabels, services, None)
        for alert in payload.alerts
    ]
