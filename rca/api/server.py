"""``rca serve``: the API under uvicorn, with the ingest consumer in the same process unless
``--no-ingest``. Without an API token it only listens on loopback."""

from __future__ import annotations

import ipaddress
import logging
import re

import uvicorn

from rca.api.embedded_ingest import EmbeddedIngest
from rca.api.main import create_app
from rca.errors import RCAInputError
from rca.ingest.kafka_source import IngestConfig
from rca.ingest.service import tune_gc
from rca.settings import Settings


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost``.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_PROBES = ("/healthz", "/readyz")
_REPORT_KEY = re.compile(r"([?&]key=)[^&]*")


class AccessLog(logging.Filter):
    """uvicorn's access lines, less the health probes that answered 200 (a kubelet asks every
    few seconds), with report keys masked (a key opens its report)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        client, method, path, version, status = args
        if path in _PROBES and status == 200:
            return False
        record.args = (client, method, _REPORT_KEY.sub(r"\1***", str(path)), version, status)
        return True


def configure_logging() -> None:
    """One format for every line on stderr: the server's, uvicorn's (access lines at info)
    and the analyses'; kafka-python's only from warnings on."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(AccessLog())


def check_bind(host: str, settings: Settings) -> None:
    """Refuse a non-loopback address when no API token is configured."""
    if not is_loopback(host) and settings.resolved_api_token() is None:
        raise RCAInputError(
            f"refusing to listen on {host} without an API token: set RCA_API_TOKEN or "
            "RCA_API_TOKEN_FILE (or listen on 127.0.0.1)"
        )


def serve(
    host: str, port: int, settings: Settings, with_ingest: bool, bootstrap: str | None
) -> int:
    """Run until SIGINT/SIGTERM (uvicorn's handlers): then stop taking requests, let running
    analyses finish briefly, commit ingest offsets and leave the consumer group."""
    check_bind(host, settings)
    configure_logging()
    ingest = None
    if with_ingest:
        tune_gc()
        ingest = EmbeddedIngest(
            IngestConfig(
                bootstrap=bootstrap or settings.kafka_bootstrap,
                topic=settings.metrics_topic,
                dlq_topic=settings.dlq_topic,
                group=settings.ingest_group,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            ),
            settings.step_seconds,
            settings.retention_seconds,
            settings.max_series,
        )
    shown = f"[{host}]" if ":" in host else host
    app = create_app(
        settings, ingest=ingest, public_url=settings.public_url or f"http://{shown}:{port}"
    )
    print(
        f"rca serve: http://{shown}:{port} (OpenAPI at /openapi.json); "
        + (f"ingest from {ingest.config.bootstrap}" if ingest else "no ingest")
        + f"; incidents in {settings.database_url}",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn's loggers go to the root logger's handler (configure_logging) at info.
        log_config=None,
        log_level="info",
        timeout_graceful_shutdown=10,
        # Longer than the idle timeout of the usual load balancers and of HTTP clients' pools,
        # so the server is not the side that closes a connection a request is racing onto.
        timeout_keep_alive=75,
    )
    uvicorn.Server(config).run()
    return 0
