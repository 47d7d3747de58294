"""The FastAPI application: :func:`create_app` wires settings, the incident store, the worker
pool, the window source and Grafana write-back in the lifespan (nothing heavy at import)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from rca.api.deps import AuthConfig
from rca.api.embedded_ingest import EmbeddedIngest
from rca.api.middleware import BodyLimit
from rca.api.oplog import after_analysis
from rca.api.routes import analyses, graph, health, incidents, webhooks
from rca.causal.call_graph import read_call_graph
from rca.errors import RCAInputError
from rca.grafana.writeback import GrafanaWriteBack
from rca.incidents.alerts import clean_json
from rca.incidents.graph_refresh import GraphRefresher
from rca.incidents.service import AlertWindow, Housekeeper, IncidentService, NotFound
from rca.incidents.sources import IngestHttpSource, WindowSource
from rca.incidents.store import IncidentStore
from rca.incidents.workers import AnalysisPool
from rca.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _writeback_hook(store: IncidentStore, grafana: GrafanaWriteBack) -> Callable[[str], None]:
    """After an analysis: post its annotation (and patch it at once when the alert resolved
    while it was being posted)."""
    patch_resolved = _resolved_hook(store, grafana)

    def after(incident_id: str) -> None:
        row = store.get(incident_id, with_result=True)
        if row is None or row["status"] != "done":
            return
        try:
            annotation_id = grafana.annotate(row)
        except Exception as exc:  # recorded on the incident; the analysis itself succeeded
            log.warning("Grafana annotation for %s failed: %s", incident_id, exc)
            store.set_writeback(incident_id, None, f"{type(exc).__name__}: {exc}"[:2000])
            return
        store.set_writeback(incident_id, annotation_id, None)
        if row["state"] != "resolved":
            patch_resolved(incident_id)

    return after


def _resolved_hook(store: IncidentStore, grafana: GrafanaWriteBack) -> Callable[[str], None]:
    """After an alert resolved: patch the incident's annotation, if it has one yet (one posted
    later is written resolved)."""

    def after(incident_id: str) -> None:
        row = store.get(incident_id, with_result=True)
        if row is None or row["state"] != "resolved" or row["annotation_id"] is None:
            return
        try:
            grafana.update(row)
        except Exception as exc:  # recorded on the incident, as a failed post is
            log.warning("Grafana annotation update for %s failed: %s", incident_id, exc)
            error = f"update: {type(exc).__name__}: {exc}"[:2000]
            store.set_writeback(incident_id, row["annotation_id"], error)

    return after


def _not_json(request: Request, exc: RequestValidationError) -> dict[str, object] | None:
    """The error for a body that was not sent as JSON (``curl -d`` sends a form's type), which
    FastAPI reports as "Input should be a valid dictionary". Such bodies stay refused: a web
    page can post a form to a server on loopback without the browser asking first, a JSON
    body it cannot."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    if not any(e.get("loc") == ("body",) for e in exc.errors()):
        return None
    sent = f"as {content_type}" if content_type else "without a Content-Type"
    return {
        "loc": ["body"],
        "msg": f"send the body as JSON with 'Content-Type: application/json' (it came {sent})",
        "type": "content_type",
    }


def create_app(
    settings: Settings | None = None,
    *,
    source: WindowSource | None = None,
    ingest: EmbeddedIngest | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """The API. Windows come from ``ingest`` (its store), else ``source``, else
    ``RCA_INGEST_URL``; with none, analyses fail with a message saying so."""
    settings = settings or get_settings()
    token = settings.resolved_api_token()
    secret = settings.webhook_hmac_secret
    auth = AuthConfig(
        token=token,
        hmac_secret=secret.get_secret_value().encode() if secret else None,
        max_skew_seconds=settings.webhook_hmac_max_skew_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IncidentStore(settings.database_url)
        ready_checks: dict[str, Callable[[], bool]] = {}
        windows = source
        if ingest is not None:
            ingest.start()
            windows = ingest.store
            ready_checks["consumer"] = ingest.assigned
        elif windows is None and settings.ingest_url:
            http_source = IngestHttpSource(settings.ingest_url, settings.resolved_api_token())
            windows = http_source
            ready_checks["ingest"] = http_source.reachable
        call_graph = read_call_graph(settings.call_graph) if settings.call_graph else None
        pool = AnalysisPool(
            store,
            windows,
            workers=settings.workers,
            processes=settings.worker_processes,
            history_seconds=settings.history_seconds,
            call_graph=call_graph,
        )
        refresher = None
        if windows is not None and settings.graph_refresh_seconds > 0:
            refresher = GraphRefresher(
                store,
                windows,
                every_seconds=settings.graph_refresh_seconds,
                history_seconds=settings.graph_history_seconds,
                min_history_seconds=settings.history_seconds,
                call_graph=call_graph,
                processes=settings.worker_processes,
            )
        service = IncidentService(
            store,
            pool,
            windows,
            default_method=settings.method,
            queue_limit=settings.queue_limit,
            alert_window=AlertWindow(
                settings.alert_before_seconds,
                settings.alert_after_seconds,
                settings.alert_settle_seconds,
            ),
            report_key=token.encode() if token else None,
            ready_checks=ready_checks,
        )
        updates: ThreadPoolExecutor | None = None
        after: list[Callable[[str], None]] = []
        if settings.grafana_url and settings.grafana_token:
            base = (public_url or settings.public_url or "").rstrip("/")

            def report_url(incident_id: str) -> str:
                key = service.report_signature(incident_id)
                url = f"{base}/v1/incidents/{incident_id}/report"
                return f"{url}?key={key}" if key else url

            grafana = GrafanaWriteBack(
                settings.grafana_url,
                settings.grafana_token.get_secret_value(),
                settings.grafana_org_id,
                report_url=report_url,
            )
            after.append(_writeback_hook(store, grafana))
            # Off the webhook's request: Grafana may be slow or down.
            updates = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grafana-update")
            resolved = _resolved_hook(store, grafana)
            service.on_resolved = lambda incident_id: updates.submit(resolved, incident_id)
        pool.on_finished = after_analysis(store, after)
        app.state.service = service
        housekeeper = Housekeeper(service, settings.incident_retention)
        housekeeper.start()
        pool.start()
        if refresher is not None:
            refresher.start()
        try:
            yield
        finally:
            housekeeper.stop()
            if refresher is not None:
                refresher.stop()
            pool.stop()
            if updates is not None:
                updates.shutdown(wait=True)
            if ingest is not None:
                ingest.stop()
            store.close()

    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package's files, not
    # from a CDN: they work where the browser cannot reach the Internet (air-gapped clusters).
    app = FastAPIOffline(
        title="rca",
        summary="Root causes of latency incidents from OpenTelemetry metrics",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.auth = auth
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(analyses.router)
    app.include_router(incidents.router)
    app.include_router(graph.router)
    app.include_router(webhooks.router)

    @app.exception_handler(RCAInputError)
    async def _input_error(request: Request, exc: RCAInputError) -> JSONResponse:
        # The shape of FastAPI's own 422, so clients and the OpenAPI schema see one format.
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        not_json = _not_json(request, exc)
        if not_json is not None:
            return JSONResponse({"detail": [not_json]}, 422)
        # FastAPI's own 422, but it echoes the input, which JSON cannot always carry back
        # (NaN, a lone surrogate): those are cleaned rather than failing with a 500.
        return JSONResponse({"detail": clean_json(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8, broken framing): that is
            # malformed input like any other, so 422 in the one validation shape.
            detail = [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": f"no incident {exc}"}, status_code=404)

    return app
