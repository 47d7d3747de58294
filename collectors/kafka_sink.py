"""The one Kafka producer path every collector uses: send records, wait for the acks."""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaProducer


class KafkaSink:
    """Sends ``(key, value)`` records to one topic and returns once the broker acknowledged
    all of them (``acks=all``), or raises a ``kafka.errors.KafkaError``.

    The producer is made on first use so that a collector can start before Kafka does; a
    producer that cannot reach Kafka raises and is made again on the next call.
    """

    def __init__(self, bootstrap: str, topic: str, timeout_seconds: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_seconds = timeout_seconds
        self._producer: KafkaProducer | None = None

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            timeout_ms = int(self.timeout_seconds * 1000)
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=5,
                # Bounded waits: a send to an unreachable Kafka must fail, not block a minute.
                max_block_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=timeout_ms + 5,
                bootstrap_timeout_ms=timeout_ms,
                client_id="rca-collector",
            )
        return self._producer

    def send(
        self, records: Sequence[tuple[bytes | None, bytes]], timeout_seconds: float | None = None
    ) -> None:
        timeout = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        producer = self._get_producer()
        futures = [producer.send(self.topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)

    def close(self, timeout_seconds: float = 5.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout_seconds)
            self._producer = None
