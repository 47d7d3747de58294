"""Each finished analysis becomes one Grafana annotation (``POST /api/annotations``).

On the alert's dashboard and panel when the alert said which (Grafana alerts linked to a panel),
else org-wide, found by its tags. Tags: ``rca`` and the top services. Text: the top causes and a
link to the report. Times are epoch milliseconds: from the onset to the end of the analysed
window. When the alert resolves, the same annotation is patched (``PATCH
/api/annotations/{id}``): its region then ends when the alert did, tagged ``resolved``.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from grafana_client import GrafanaApi, TokenAuth


def connect(url: str, token: str, org_id: int | None = None, timeout: float = 5.0) -> GrafanaApi:
    """A ``grafana-client`` API for ``url`` (``http[s]://host[:port][/prefix]``) with a
    service-account token, in organisation ``org_id`` (header ``X-Grafana-Org-Id``)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"not a Grafana URL: {url!r}")
    return GrafanaApi(
        TokenAuth(token),
        host=parsed.hostname,
        port=parsed.port,
        url_path_prefix=parsed.path.strip("/") + "/" if parsed.path.strip("/") else "",
        protocol=parsed.scheme,
        timeout=timeout,
        organization_id=org_id,
    )


def _millis(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class Annotation:
    dashboard_uid: str | None
    panel_id: int | None
    time_ms: int
    time_end_ms: int
    tags: list[str]
    text: str


def annotation_for(incident: dict[str, Any], report_url: str | None) -> Annotation:
    """The annotation of a finished incident (a row of the incident store with its result)."""
    result = incident["result"]
    services = result["services"][:3]
    window = result["window"]
    onset = dt.datetime.fromisoformat(window["onset"])
    end = dt.datetime.fromisoformat(window["end"])
    lines = [
        f"<b>RCA</b> ({html.escape(result['method'])}) of "
        f"{html.escape(incident.get('title') or 'incident')}: likely root causes"
    ]
    for entry in services:
        score = entry["score"]
        lines.append(
            f"{entry['rank']}. {html.escape(entry['service'])}"
            + (f" ({score:.3g})" if score is not None else "")
            + (f" – {html.escape(entry['series'])}" if entry.get("series") else "")
        )
    if report_url:
        lines.append(f'<a href="{html.escape(report_url)}">report</a>')
    tags = ["rca"] + [entry["service"] for entry in services]
    time_end_ms = max(_millis(end), _millis(onset))
    if incident.get("state") == "resolved":
        tags.append("resolved")
        ends_at = incident.get("ends_at")
        if ends_at is None:
            lines.append("resolved")
        else:
            lines.append(f"resolved at {ends_at.isoformat(timespec='seconds')}")
            time_end_ms = max(time_end_ms, _millis(ends_at))
    return Annotation(
        dashboard_uid=incident.get("dashboard_uid"),
        panel_id=incident.get("panel_id") if incident.get("dashboard_uid") else None,
        time_ms=_millis(onset),
        time_end_ms=time_end_ms,
        tags=list(dict.fromkeys(tags)),
        text="<br>".join(lines),
    )


class GrafanaWriteBack:
    """Posts annotations through ``grafana-client``; ``report_url`` turns an incident id into
    the report's link."""

    def __init__(
        self,
        url: str,
        token: str,
        org_id: int = 1,
        report_url: Callable[[str], str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.token = token
        self.org_id = org_id
        self.report_url = report_url
        self.timeout = timeout

    def _note(self, incident: dict[str, Any]) -> Annotation:
        report = self.report_url(incident["id"]) if self.report_url else None
        return annotation_for(incident, report)

    def _grafana(self, incident: dict[str, Any]) -> GrafanaApi:
        return connect(self.url, self.token, incident.get("org_id") or self.org_id, self.timeout)

    def update(self, incident: dict[str, Any]) -> None:
        """Patch the incident's annotation (``annotation_id``) to what it says now: end time,
        tags and text (after the alert resolved). Raises ``grafana_client`` errors."""
        note = self._note(incident)
        # grafana-client's partial_update_annotation sends "tags": [] and "time": null for what
        # it is not given, and Grafana's PATCH replaces the tags with an empty list.
        self._grafana(incident).client.PATCH(
            f"/annotations/{int(incident['annotation_id'])}",
            json={"timeEnd": note.time_end_ms, "tags": note.tags, "text": note.text},
        )

    def annotate(self, incident: dict[str, Any]) -> int | None:
        """Post the annotation of a finished incident; returns Grafana's annotation id.
        Raises ``grafana_client`` errors (the caller records them)."""
        note = self._note(incident)
        reply = self._grafana(incident).annotations.add_annotation(
            dashboard_uid=note.dashboard_uid,
            panel_id=note.panel_id,
            time_from=note.time_ms,
            time_to=note.time_end_ms,
            tags=note.tags,
            text=note.text,
        )
        return int(reply["id"]) if isinstance(reply, dict) and "id" in reply else None
