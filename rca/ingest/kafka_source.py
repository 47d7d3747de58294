"""The ingest consumer: a Kafka consumer-group member that fills the window store.

At-least-once: a batch of records is decoded, stored, its dead records (malformed, or any
record whose handling raised: :mod:`rca.ingest.batch`) are acknowledged by the DLQ topic, and
only then are its offsets committed. A crash before the commit means the records are read
again, which changes nothing (same key and time overwrite the same slot).

The store lives in memory, so whenever this process is given a partition it first rebuilds the
partition's last ``retention`` by seeking by time (:class:`rca.transport.offsets.TimeSeeker`,
which copes with brokers whose ListOffsets is wrong); the committed offset is kept for lag and
never moves backwards.

A dead record before the committed offset is not sent to the DLQ again when the rebuild reads
it: the DLQ acknowledged it before that offset was committed (``dlq_already_sent`` counts
these). Only a crash or a rebalance between the DLQ send and the commit can send one twice;
the ``rca.source.*`` headers tell duplicates apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from rca.ingest.batch import store_records
from rca.ingest.otlp_decode import DECODER, DecodeState
from rca.store.window_store import WindowStore
from rca.transport.offsets import TimeSeeker

log = logging.getLogger(__name__)

DLQ_REASON_HEADER = "rca.dlq.reason"
# A reason can quote the record (an exception's message); headers stay small.
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class IngestConfig:
    bootstrap: str
    topic: str = "otlp_metrics"
    dlq_topic: str = "otlp_metrics.dlq"
    group: str = "rca-ingest"
    session_timeout_ms: int = 6000
    max_poll_interval_ms: int = 10000
    max_poll_records: int = 500
    # Points stamped further ahead of this host's clock are dropped (a bad clock must not
    # push the whole ring out of retention).
    future_tolerance_seconds: float = 300.0


@dataclass
class IngestHealth:
    """What ``/health`` reports: counters since start, lag per partition (``None`` where the
    broker has not told its high watermark yet), rate over the last second or more.

    Every data point read is in ``points`` (valid), ``invalid_points`` (dropped with a reason,
    the last in ``last_invalid_reason``) or ``dlq_points`` (in a dead record). The samples of
    valid points are in ``samples_stored``, ``too_old``, ``too_new``, ``non_finite`` or
    ``series_refused`` (over ``max_series``). Dead records: ``dlq`` sent, ``dlq_already_sent``
    (read again below the committed offset), ``handler_errors`` of them for an exception other
    than a malformed record."""

    records: int = 0
    points: int = 0
    samples_stored: int = 0
    invalid_points: int = 0
    last_invalid_reason: str | None = None
    too_old: int = 0
    too_new: int = 0
    non_finite: int = 0
    series_refused: int = 0
    series: int = 0
    max_series: int | None = None
    skipped_before_retention: int = 0
    dlq: int = 0
    dlq_already_sent: int = 0
    dlq_points: int = 0
    handler_errors: int = 0
    last_dlq_reason: str | None = None
    commits: int = 0
    last_commit_unix: float | None = None
    points_per_s: float = 0.0
    assigned: list[str] = field(default_factory=list)
    lag: dict[str, int | None] = field(default_factory=dict)
    list_offsets_trusted: bool | None = None
    decoder: str = DECODER  # "compiled", or "python" where the extension was not built

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


class _Assignments(ConsumerRebalanceListener):
    """Notes new partitions; the consumer's IO thread runs these callbacks, where no blocking
    call is allowed (kafka-python 3 raises), so the seeking happens after ``poll`` returns."""

    def __init__(self) -> None:
        self.new: set[TopicPartition] = set()
        self.owned: set[TopicPartition] = set()

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.new |= set(assigned)
        self.owned |= set(assigned)

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing to flush: every batch is committed before the next poll.
        self.new -= set(revoked)
        self.owned -= set(revoked)


class KafkaIngest:
    """Consume ``config.topic`` in ``config.group`` into ``store``; run with :meth:`run`."""

    def __init__(
        self,
        config: IngestConfig,
        store: WindowStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.health = IngestHealth()
        self.state = DecodeState()
        self._seeker = TimeSeeker(config.bootstrap)
        self._assignments = _Assignments()
        self._min_timestamp_ms: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._next_offset: dict[TopicPartition, int] = {}
        self._rate_mark = (time.monotonic(), 0)
        self._consumer = KafkaConsumer(
            bootstrap_servers=config.bootstrap,
            group_id=config.group,
            client_id="rca-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=max(100, config.session_timeout_ms // 6),
            max_poll_interval_ms=config.max_poll_interval_ms,
            max_poll_records=config.max_poll_records,
        )
        self._dlq = KafkaProducer(
            bootstrap_servers=config.bootstrap, acks="all", client_id="rca-ingest-dlq"
        )
        self._consumer.subscribe([config.topic], listener=self._assignments)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, then leave the group cleanly."""
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self, timeout_ms: int = 200) -> int:
        """One poll: store, dead-letter, commit. Returns the number of records handled."""
        batch = self._consumer.poll(timeout_ms=timeout_ms)
        if self._assignments.new:
            new = set(self._assignments.new)
            self._assignments.new.clear()
            # Records fetched from the committed offsets of new partitions are dropped: the
            # rebuild below reads them again from the start of the retention.
            batch = {tp: records for tp, records in batch.items() if tp not in new}
            self._rebuild_from_retention(new)
        handled = sum(len(records) for records in batch.values())
        if handled:
            self._handle(batch)
        self._update_health()
        return handled

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._dlq.close(timeout=5)

    def _rebuild_from_retention(self, partitions: set[TopicPartition]) -> None:
        since_ms = int((self.clock() - self.store.retention_seconds) * 1000)
        positions = self._seeker.start_positions(partitions, since_ms)
        for tp, position in positions.items():
            if position.offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, position.offset)
            self._min_timestamp_ms[tp] = position.min_timestamp_ms
            self._committed[tp] = self._consumer.committed(tp) or 0
        self.health.list_offsets_trusted = self._seeker.list_offsets_trusted
        log.info("rebuilding %s from %d ms", sorted(map(_name, partitions)), since_ms)

    def _handle(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        records: list[ConsumerRecord] = []
        for tp, partition_records in batch.items():
            cutoff = self._min_timestamp_ms.get(tp, 0)
            for record in partition_records:
                if record.timestamp < cutoff:
                    self.health.skipped_before_retention += 1
                else:
                    records.append(record)
            self._next_offset[tp] = partition_records[-1].offset + 1
        max_time_ns = int((self.clock() + self.config.future_tolerance_seconds) * 1e9)
        outcome = store_records([r.value for r in records], self.state, self.store, max_time_ns)
        dead = [(records[index], reason) for index, reason in outcome.dead]
        self._dead_letter(dead)
        self._commit(batch)
        health, written = self.health, outcome.written
        health.records += sum(map(len, batch.values()))
        health.points += outcome.points
        health.invalid_points += outcome.invalid_points
        health.last_invalid_reason = outcome.last_invalid_reason or health.last_invalid_reason
        health.dlq_points += outcome.dead_points
        health.handler_errors += outcome.errors
        health.samples_stored += written.stored
        health.too_old += written.too_old
        health.too_new += written.too_new
        health.non_finite += written.non_finite
        health.series_refused += written.refused

    def _dead_letter(self, dead: list[tuple[ConsumerRecord, str]]) -> None:
        """Send dead records to the DLQ and wait for the acks (before the commit, so a crash
        cannot lose them either); records below the committed offset were sent before."""
        fresh = []
        for record, reason in dead:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset < self._committed.get(tp, 0):
                self.health.dlq_already_sent += 1
            else:
                fresh.append((record, reason[:MAX_REASON_CHARS]))
        if not fresh:
            return
        futures = []
        for record, reason in fresh:
            log.warning("DLQ %s/%d@%d: %s", record.topic, record.partition, record.offset, reason)
            headers = [
                (DLQ_REASON_HEADER, reason.encode("utf-8", "backslashreplace")),
                ("rca.source.topic", record.topic.encode()),
                ("rca.source.partition", str(record.partition).encode()),
                ("rca.source.offset", str(record.offset).encode()),
            ]
            futures.append(
                self._dlq.send(
                    self.config.dlq_topic,
                    key=record.key,
                    value=record.value or b"",
                    headers=headers,
                )
            )
        self._dlq.flush()
        for future in futures:
            future.get(timeout=30)
        self.health.dlq += len(fresh)
        self.health.last_dlq_reason = fresh[-1][1]

    def _commit(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        offsets = {
            tp: OffsetAndMetadata(self._next_offset[tp], "", -1)
            for tp in batch
            if self._next_offset[tp] > self._committed.get(tp, 0)
        }
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced under us: the partitions' new owner reads these records
            # again from the last commit, which at-least-once allows (they change nothing).
            log.warning("commit refused after a rebalance: %s", exc)
            return
        for tp, meta in offsets.items():
            self._committed[tp] = meta.offset
        self.health.commits += 1
        self.health.last_commit_unix = self.clock()

    def _update_health(self) -> None:
        owned = sorted(self._assignments.owned, key=_name)
        self.health.assigned = [_name(tp) for tp in owned]
        lag: dict[str, int | None] = {}
        for tp in owned:
            high = self._consumer.highwater(tp)
            position = self._next_offset.get(tp)
            lag[_name(tp)] = None if high is None or position is None else max(0, high - position)
        self.health.lag = lag
        self.health.series = self.store.series_count
        self.health.max_series = self.store.max_series
        mark_time, mark_points = self._rate_mark
        now = time.monotonic()
        if now - mark_time >= 1.0:
            self.health.points_per_s = (self.health.points - mark_points) / (now - mark_time)
            self._rate_mark = (now, self.health.points)
