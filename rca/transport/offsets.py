"""Where to start reading a partition to rebuild the last ``retention`` of data.

On Apache Kafka ``offsets_for_times`` answers that directly. tansu 0.6.0 answers ListOffsets
wrongly (measured: offset 0 with a made-up timestamp for any time, ``end_offsets`` 1 for a
partition of 100 records), so every answer is checked by reading the record it points at; when
the check fails the partition is read from the earliest offset and records older than the cutoff
are skipped by their timestamp (slower, still correct).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


@dataclass(frozen=True)
class StartPosition:
    """``offset`` to seek to (``None``: the earliest offset); skip records older than
    ``min_timestamp_ms`` either way, since record timestamps need not be monotonic."""

    offset: int | None
    min_timestamp_ms: int


class TimeSeeker:
    """Finds start offsets by time and remembers whether the broker's ListOffsets can be
    trusted (checked once per process, on the first partition that has data)."""

    def __init__(self, bootstrap: str, probe_timeout_ms: int = 1000) -> None:
        self.bootstrap = bootstrap
        self.probe_timeout_ms = probe_timeout_ms
        self.list_offsets_trusted: bool | None = None

    def start_positions(
        self, partitions: Iterable[TopicPartition], since_ms: int
    ) -> dict[TopicPartition, StartPosition]:
        partitions = list(partitions)
        if not partitions:
            return {}
        scan = {tp: StartPosition(None, since_ms) for tp in partitions}
        if self.list_offsets_trusted is False:
            return scan
        probe = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            client_id="rca-time-seeker",
        )
        try:
            probe.assign(partitions)
            found = probe.offsets_for_times(dict.fromkeys(partitions, since_ms))
            ends = probe.end_offsets(partitions)
            positions: dict[TopicPartition, StartPosition] = {}
            for tp in partitions:
                answer = found.get(tp)
                if answer is None:
                    ok = self._is_end(probe, tp, ends[tp])
                    positions[tp] = StartPosition(ends[tp], since_ms)
                else:
                    record = self._record_at(probe, tp, answer.offset)
                    ok = (
                        record is not None
                        and record.offset == answer.offset
                        and record.timestamp == answer.timestamp
                    )
                    positions[tp] = StartPosition(answer.offset, since_ms)
                if not ok:
                    self.list_offsets_trusted = False
                    return scan
            self.list_offsets_trusted = True
            return positions
        finally:
            probe.close(autocommit=False)

    def _record_at(
        self, probe: KafkaConsumer, tp: TopicPartition, offset: int
    ) -> ConsumerRecord | None:
        probe.seek(tp, offset)
        deadline = time.monotonic() + self.probe_timeout_ms / 1000
        while time.monotonic() < deadline:
            batch = probe.poll(timeout_ms=100, max_records=1)
            if batch.get(tp):
                return batch[tp][0]
        return None

    def _is_end(self, probe: KafkaConsumer, tp: TopicPartition, end: int) -> bool:
        """``end`` is the true end offset: a record sits just before it and none at it."""
        before = self._record_at(probe, tp, end - 1) if end > 0 else None
        if end > 0 and (before is None or before.offset != end - 1):
            return False
        return self._record_at(probe, tp, end) is None
