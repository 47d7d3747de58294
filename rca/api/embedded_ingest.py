"""The ingest consumer inside ``rca serve``: a :class:`~rca.ingest.kafka_source.KafkaIngest`
on a thread, filling a :class:`~rca.store.window_store.WindowStore` that the analyses read.

Kafka may be down when the server starts: the thread keeps trying to join the group (every
``retry_seconds``) while the API already answers; ``/readyz`` says ``consumer: false`` until
partitions are assigned.
"""

from __future__ import annotations

import logging
import threading

from rca.ingest.kafka_source import IngestConfig, KafkaIngest
from rca.store.window_store import WindowStore

log = logging.getLogger(__name__)


class EmbeddedIngest:
    def __init__(
        self,
        config: IngestConfig,
        step_seconds: float,
        retention_seconds: float,
        max_series: int,
        retry_seconds: float = 2.0,
    ) -> None:
        self.config = config
        self.store = WindowStore(step_seconds, retention_seconds, max_series)
        self.retry_seconds = retry_seconds
        self.ingest: KafkaIngest | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rca-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ingest = KafkaIngest(self.config, self.store)
            except Exception as exc:  # kafka-python raises several types when Kafka is away
                log.warning("ingest cannot reach Kafka at %s: %s", self.config.bootstrap, exc)
                self._stop.wait(self.retry_seconds)
                continue
            try:
                self.ingest.run(self._stop)
            except Exception:
                log.exception("the ingest consumer stopped; starting it again")
                self._stop.wait(self.retry_seconds)

    def assigned(self) -> bool:
        """Whether the consumer holds partitions (readiness)."""
        return self.ingest is not None and bool(self.ingest.health.assigned)

    def stop(self, timeout_seconds: float = 15.0) -> None:
        """Stop polling, commit what is stored, leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
