"""``rca ingest``: the consumer, the window store and the status endpoint in one process."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading

from kafka.errors import KafkaError

from rca.ingest.kafka_source import IngestConfig, KafkaIngest
from rca.ingest.status_http import serve_status
from rca.settings import get_settings
from rca.store.window_store import WindowStore

# Decoding allocates a tuple per sample; with CPython's default first threshold (700) the
# collector runs every few hundred points and walks the store's ever-growing key index. A
# larger first generation costs a few MB and buys ~15 % throughput (bench/ingest.py).
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Set this process's garbage-collector thresholds for ingest (a process-wide choice, so
    it belongs to the process entry point, not to library code)."""
    gc.set_threshold(*GC_THRESHOLDS)


def run_ingest(
    config: IngestConfig,
    step_seconds: float,
    retention_seconds: float,
    http_host: str,
    http_port: int,
    max_series: int | None = None,
) -> int:
    """Consume until SIGINT or SIGTERM, then commit and leave the group. ``/window`` takes the
    API's token and limits from the settings (:mod:`rca.ingest.status_http`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is one line per fetch
    tune_gc()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    store = WindowStore(step_seconds, retention_seconds, max_series)
    try:
        ingest = KafkaIngest(config, store)
    except KafkaError as exc:
        print(f"rca ingest: cannot reach Kafka at {config.bootstrap}: {exc}", file=sys.stderr)
        return 1
    settings = get_settings()
    server = serve_status(
        http_host,
        http_port,
        store,
        ingest.health.to_json,
        token=settings.resolved_api_token(),
        max_cells=settings.window_max_cells,
        max_concurrent=settings.window_max_concurrent,
    )
    host, port = server.server_address[:2]
    print(
        f"rca ingest: {config.topic} on {config.bootstrap} in group {config.group}; "
        f"{ingest.health.decoder} OTLP decoder; status on http://{host}:{port}/health",
        flush=True,
    )
    try:
        ingest.run(stopping)
    finally:
        server.shutdown()
    return 0
