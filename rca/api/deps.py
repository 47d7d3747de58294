"""Dependencies: the incident service and authentication.

- Incident data and every write need ``Authorization: Bearer <token>`` when a token is
  configured (``RCA_API_TOKEN`` / ``RCA_API_TOKEN_FILE``). Without a token the server only
  listens on loopback (``rca serve`` refuses otherwise) and asks for nothing.
- Webhooks take what Grafana and Alertmanager can send: a bearer token, basic auth whose
  password is the token (any user name), or, when ``RCA_WEBHOOK_HMAC_SECRET`` is set, Grafana's
  HMAC-SHA256 signature of the body (hex, header ``X-Grafana-Alerting-Signature``; with a
  timestamp header ``X-Grafana-Alerting-Timestamp`` the signed message is
  ``timestamp:body`` and the timestamp must be within the allowed skew). Grafana's own default
  header name, ``X-Grafana-Alert-Signature``, is accepted too.
- A report also opens with ``?key=`` (a per-incident HMAC of the token), because a browser
  following a link from a Grafana annotation sends no header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPBasic, HTTPBearer

from rca.incidents.service import IncidentService

SIGNATURE_HEADERS = ("x-grafana-alerting-signature", "x-grafana-alert-signature")
TIMESTAMP_HEADERS = ("x-grafana-alerting-timestamp", "x-grafana-alert-timestamp")

# Declared for the OpenAPI document (security schemes); the checks below read the header.
_bearer = HTTPBearer(auto_error=False, description="RCA_API_TOKEN")
_basic = HTTPBasic(auto_error=False, description="any user, password RCA_API_TOKEN")


@dataclass(frozen=True)
class AuthConfig:
    token: str | None
    hmac_secret: bytes | None = None
    max_skew_seconds: float = 300.0


def get_service(request: Request) -> IncidentService:
    return request.app.state.service


def get_auth(request: Request) -> AuthConfig:
    return request.app.state.auth


ServiceDep = Annotated[IncidentService, Depends(get_service)]
AuthDep = Annotated[AuthConfig, Depends(get_auth)]
_BearerDep = Annotated[object, Depends(_bearer)]
_BasicDep = Annotated[object, Depends(_basic)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="rca"'})


def _credential(request: Request) -> str | None:
    """The token from ``Bearer <token>`` or from basic auth's password."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def _token_ok(request: Request, auth: AuthConfig) -> bool:
    given = _credential(request)
    return auth.token is not None and given is not None and _same(auth.token, given)


def require_token(
    request: Request,
    auth: AuthDep,
    _scheme: _BearerDep,
) -> None:
    """Bearer token (or basic auth with the token as password) when one is configured."""
    if auth.token is None or _token_ok(request, auth):
        return
    raise _unauthorized("a valid bearer token is required")


def signature_ok(body: bytes, headers: dict[str, str], secret: bytes, max_skew: float) -> bool:
    """Grafana's webhook HMAC: hex SHA-256 of ``body`` or of ``timestamp:body``."""
    signature = next((headers[h] for h in SIGNATURE_HEADERS if h in headers), None)
    if signature is None:
        return False
    timestamp = next((headers[h] for h in TIMESTAMP_HEADERS if h in headers), None)
    message = body
    if timestamp is not None:
        try:
            sent = float(timestamp)
        except ValueError:
            return False
        if not math.isfinite(sent) or abs(time.time() - sent) > max_skew:
            return False
        message = timestamp.encode("latin-1") + b":" + body
    expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return _same(expected, signature.strip().lower())


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret with what a client sent, as bytes:
    ``compare_digest`` refuses ``str`` that is not ASCII, and clients send anything."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


async def require_webhook_auth(
    request: Request,
    auth: AuthDep,
    _bearer_scheme: _BearerDep,
    _basic_scheme: _BasicDep,
) -> None:
    """Bearer, basic (password = token) or a valid HMAC signature; open when neither a token
    nor a secret is configured (loopback only)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    signed = any(h in headers for h in SIGNATURE_HEADERS)
    if auth.hmac_secret is not None and signed:
        body = await request.body()
        if signature_ok(body, headers, auth.hmac_secret, auth.max_skew_seconds):
            return
        raise _unauthorized("the webhook signature does not match")
    if auth.token is None and auth.hmac_secret is None:
        return
    if _token_ok(request, auth):
        return
    raise _unauthorized("a valid bearer token, basic auth or webhook signature is required")


def require_report_access(
    request: Request,
    incident_id: str,
    auth: AuthDep,
    service: ServiceDep,
    _scheme: _BearerDep,
    key: str | None = Query(None, max_length=128, description="the report link's key"),
) -> None:
    """The bearer token, or the key of a report link."""
    if auth.token is None or _token_ok(request, auth):
        return
    expected = service.report_signature(incident_id)
    if key is not None and expected is not None and _same(expected, key):
        return
    raise _unauthorized("a valid bearer token or report key is required")
