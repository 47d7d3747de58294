"""The ingest consumer inside ``rca serve``: a :class:`~rca.ingest.kafka_source.KafkaIngest`
on a thread, filling a :class:`~rca.store.window_store.WindowStore` that the analyses read.

Kafka may be down when the server starts: the thread keeps trying to join the group (every
``retry_seconds``) while the API already answers; ``/readyz`` says ``consumer: false`` until
partitions are assigned. Meanwhile the operator gets one line saying what to do, repeated every
``notice_seconds``, and kafka-python's own log (two errors per attempt) stays quiet.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

from rca.ingest.kafka_source import IngestConfig, KafkaIngest
from rca.store.window_store import WindowStore

log = logging.getLogger(__name__)


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a Kafka bootstrap list (IPv6 hosts in brackets).

    >>> bootstrap_addresses("kafka-0:9092, [::1]:9093")
    [('kafka-0', 9092), ('::1', 9093)]
    """
    pairs = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def unreachable(bootstrap: str, timeout_seconds: float = 2.0) -> str | None:
    """Why no bootstrap address takes a TCP connection, or ``None`` when one does. Checked
    before kafka-python tries, which takes half a minute to give up on a closed port."""
    reasons = []
    for host, port in bootstrap_addresses(bootstrap):
        try:
            socket.create_connection((host, port), timeout=timeout_seconds).close()
            return None
        except OSError as exc:
            reasons.append(f"{host}:{port}: {exc.strerror or exc}")
    return "; ".join(reasons)


@contextlib.contextmanager
def kafka_log_quiet() -> Iterator[None]:
    """kafka-python's loggers silent (but for critical records) inside the block."""
    kafka = logging.getLogger("kafka")
    level = kafka.level
    kafka.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        kafka.setLevel(level)


class EmbeddedIngest:
    def __init__(
        self,
        config: IngestConfig,
        step_seconds: float,
        retention_seconds: float,
        max_series: int,
        retry_seconds: float = 2.0,
        notice_seconds: float = 300.0,
    ) -> None:
        self.config = config
        self.store = WindowStore(step_seconds, retention_seconds, max_series)
        self.retry_seconds = retry_seconds
        self.notice_seconds = notice_seconds
        self._last_notice: float | None = None
        self.ingest: KafkaIngest | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rca-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ingest = self._connect()
            except Exception as exc:  # kafka-python raises several types when Kafka is away
                probed = isinstance(exc, ConnectionError)  # the probe's reason says it all
                self._notice(str(exc) if probed else f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.retry_seconds)
                continue
            if self._last_notice is not None:
                log.info("ingest reached Kafka at %s", self.config.bootstrap)
                self._last_notice = None
            try:
                self.ingest.run(self._stop)
            except Exception:
                log.exception("the ingest consumer stopped; starting it again")
                self._stop.wait(self.retry_seconds)

    def _connect(self) -> KafkaIngest:
        reason = unreachable(self.config.bootstrap)
        if reason is not None:
            raise ConnectionError(reason)
        with kafka_log_quiet():
            return KafkaIngest(self.config, self.store)

    def _notice(self, reason: str) -> None:
        """The one line an operator needs while Kafka is away, at most every
        ``notice_seconds``."""
        now = time.monotonic()
        if self._last_notice is not None and now - self._last_notice < self.notice_seconds:
            return
        self._last_notice = now
        log.warning(
            "ingest cannot reach Kafka at %s (%s): start one with `rca broker` and pass the "
            "address it prints with `rca serve --bootstrap HOST:PORT` (or RCA_KAFKA_BOOTSTRAP), "
            "or run `rca serve --no-ingest` for an API-only server. Retrying every %.0f s; "
            "this line repeats every %.0f min while Kafka stays unreachable.",
            self.config.bootstrap,
            reason,
            self.retry_seconds,
            self.notice_seconds / 60,
        )

    def assigned(self) -> bool:
        """Whether the consumer holds partitions (readiness)."""
        return self.ingest is not None and bool(self.ingest.health.assigned)

    def stop(self, timeout_seconds: float = 15.0) -> None:
        """Stop polling, commit what is stored, leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
