"""A small in-process stand-in for the Grafana HTTP API (no Grafana server can run here).

It implements only the documented endpoints the platform calls, with Grafana's documented
answers, and records every request (method, path, query, the headers that matter, JSON body)
so that tests assert exactly what was sent:

- ``GET /api/frontend/settings`` (grafana-client's version probe)
- ``GET /api/folders/{uid}``, ``POST /api/folders``
- ``GET /api/datasources/uid/{uid}``, ``POST /api/datasources``, ``PUT /api/datasources/uid/{uid}``
- ``POST /api/dashboards/db``
- ``GET /api/v1/provisioning/contact-points``, ``POST`` it, ``PUT .../contact-points/{uid}``
- ``POST /api/annotations``, ``PATCH /api/annotations/{id}``

Anything else answers 404 (and is recorded, so an unexpected call fails the assertions).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    org_id: str | None
    body: Any


@dataclass
class FakeGrafana:
    folders: dict[str, dict] = field(default_factory=dict)
    datasources: dict[str, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)
    contact_points: dict[str, dict] = field(default_factory=dict)
    annotations: list[dict] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    down: bool = False

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def handle(self, request: Request) -> tuple[int, Any]:
        self.requests.append(request)
        if self.down:
            return 500, {"message": "internal error"}
        parts = request.path.strip("/").split("/")
        route = (request.method, *parts)
        body = request.body
        match route:
            case ("GET", "api", "frontend", "settings"):
                return 200, {"buildInfo": {"version": "12.4.0", "edition": "Open Source"}}
            case ("GET", "api", "folders", uid):
                return (200, self.folders[uid]) if uid in self.folders else (404, _nf("folder"))
            case ("POST", "api", "folders"):
                self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                return 200, self.folders[body["uid"]]
            case ("GET", "api", "datasources", "uid", uid):
                found = self.datasources.get(uid)
                return (200, found) if found else (404, _nf("data source"))
            case ("POST", "api", "datasources"):
                self.datasources[body["uid"]] = body
                return 200, {"message": "Datasource added", "datasource": body}
            case ("PUT", "api", "datasources", "uid", uid):
                self.datasources[uid] = body
                return 200, {"message": "Datasource updated", "datasource": body}
            case ("POST", "api", "dashboards", "db"):
                uid = body["dashboard"]["uid"]
                self.dashboards[uid] = body
                return 200, {"status": "success", "uid": uid, "version": len(self.dashboards)}
            case ("GET", "api", "v1", "provisioning", "contact-points"):
                names = request.query.get("name")
                points = [
                    p for p in self.contact_points.values() if not names or p["name"] in names
                ]
                return 200, points
            case ("POST", "api", "v1", "provisioning", "contact-points"):
                self.contact_points[body["uid"]] = body
                return 202, body
            case ("PUT", "api", "v1", "provisioning", "contact-points", uid):
                self.contact_points[uid] = body
                return 202, {"message": "contactpoint updated"}
            case ("POST", "api", "annotations"):
                self.annotations.append(body)
                return 200, {"message": "Annotation added", "id": len(self.annotations)}
            case ("PATCH", "api", "annotations", number) if number.isdigit():
                if not 1 <= int(number) <= len(self.annotations):
                    return 404, _nf("annotation")
                self.annotations[int(number) - 1].update(body)
                return 200, {"message": "Annotation patched"}
        return 404, _nf("route")


def _nf(what: str) -> dict[str, str]:
    return {"message": f"{what} not found"}


def start(fake: FakeGrafana) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``fake`` on a free loopback port; returns the server and its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                authorization=self.headers.get("Authorization"),
                org_id=self.headers.get("X-Grafana-Org-Id"),
                body=json.loads(raw) if raw else None,
            )
            status, reply = fake.handle(request)
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"
