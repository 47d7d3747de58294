"""``rca grafana provision``: create or update, idempotently, what Grafana needs to show RCA
results and to send alerts here.

1. ``GET /api/frontend/settings``: Grafana answers (``grafana-client``'s version probe).
2. folder (``GET /api/folders/{uid}``, else ``POST /api/folders``);
3. Infinity data source pointed at this API with its bearer token (``GET
   /api/datasources/uid/{uid}``, then ``PUT`` that path, else ``POST /api/datasources``);
4. dashboard in the folder (``POST /api/dashboards/db`` with ``overwrite``);
5. webhook contact point aimed at ``/v1/alerts/grafana`` (``GET
   /api/v1/provisioning/contact-points?name=``, then ``PUT .../{uid}``, else ``POST``).

Running it again changes nothing that is already right. Routing alerts to the contact point is
left to the notification policy: provisioning a policy replaces the whole tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from rca.errors import RCAInputError
from rca.grafana.dashboard import INFINITY, dashboard

HMAC_HEADER = "X-Grafana-Alerting-Signature"
HMAC_TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp"


@dataclass(frozen=True)
class ProvisionConfig:
    """``api_url``: how Grafana reaches this API. ``api_token``: its bearer token."""

    api_url: str
    api_token: str | None = None
    hmac_secret: str | None = None
    folder_uid: str = "rca"
    folder_title: str = "RCA"
    datasource_uid: str = "rca-api"
    datasource_name: str = "RCA"
    dashboard_uid: str = "rca-incidents"
    contact_point_uid: str = "rca-platform-webhook"
    contact_point_name: str = "rca-platform"
    timeout_seconds: int = 30


def _missing(call: Any, *args: Any) -> Any | None:
    """The object, or ``None`` when Grafana answers 404."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def datasource_model(config: ProvisionConfig) -> dict[str, Any]:
    url = config.api_url.rstrip("/")
    model: dict[str, Any] = {
        "name": config.datasource_name,
        "uid": config.datasource_uid,
        "type": INFINITY,
        "access": "proxy",
        "url": url,
        "jsonData": {"allowedHosts": [url], "timeoutInSeconds": config.timeout_seconds},
    }
    if config.api_token:
        model["jsonData"]["auth_method"] = "bearerToken"
        model["secureJsonData"] = {"bearerToken": config.api_token}
    return model


def contact_point_model(config: ProvisionConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "url": config.api_url.rstrip("/") + "/v1/alerts/grafana",
        "httpMethod": "POST",
    }
    if config.api_token:
        settings["authorization_scheme"] = "Bearer"
        settings["authorization_credentials"] = config.api_token
    if config.hmac_secret:
        settings["hmacConfig"] = {
            "secret": config.hmac_secret,
            "header": HMAC_HEADER,
            "timestampHeader": HMAC_TIMESTAMP_HEADER,
        }
    return {
        "uid": config.contact_point_uid,
        "name": config.contact_point_name,
        "type": "webhook",
        "settings": settings,
        "disableResolveMessage": False,
    }


def provision(grafana: GrafanaApi, config: ProvisionConfig) -> dict[str, str]:
    """Create or update everything; returns what happened to each object. Grafana's refusals
    and connection failures become :class:`~rca.errors.RCAInputError` with Grafana's reason."""
    try:
        return _provision(grafana, config)
    except (GrafanaException, niquests.exceptions.RequestException) as exc:
        raise RCAInputError(f"Grafana at {grafana.client.url}: {exc}") from exc


def _provision(grafana: GrafanaApi, config: ProvisionConfig) -> dict[str, str]:
    done: dict[str, str] = {}
    info = grafana.connect()
    done["grafana"] = str((info or {}).get("version", "unknown version"))

    if _missing(grafana.folder.get_folder, config.folder_uid) is None:
        grafana.folder.create_folder(config.folder_title, uid=config.folder_uid)
        done["folder"] = "created"
    else:
        done["folder"] = "exists"

    model = datasource_model(config)
    if _missing(grafana.datasource.get_datasource_by_uid, config.datasource_uid) is None:
        grafana.datasource.create_datasource(model)
        done["datasource"] = "created"
    else:
        grafana.datasource.update_datasource_by_uid(config.datasource_uid, model)
        done["datasource"] = "updated"

    grafana.dashboard.update_dashboard(
        {
            "dashboard": dashboard(config.datasource_uid, config.dashboard_uid),
            "folderUid": config.folder_uid,
            "overwrite": True,
            "message": "rca grafana provision",
        }
    )
    done["dashboard"] = "saved"

    point = contact_point_model(config)
    existing = grafana.alertingprovisioning.get_contactpoints(name=config.contact_point_name)
    if any(cp.get("uid") == config.contact_point_uid for cp in existing or []):
        grafana.alertingprovisioning.update_contactpoint(config.contact_point_uid, point)
        done["contact_point"] = "updated"
    else:
        grafana.alertingprovisioning.create_contactpoint(point)
        done["contact_point"] = "created"
    return done
