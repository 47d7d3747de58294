"""One batch of records into the window store: no record can stop the batch.

A record that does not decode (``MalformedRecord``), or whose decoding or storing raises
anything at all, is set aside whole for the dead-letter queue with its reason; the samples of
every other record are stored. Kafka plays no part here: the consumer hands the record values
in and sends the dead ones on (:mod:`rca.ingest.kafka_source`).

Every data point is accounted for: valid (``points``), dropped by the decoder with a reason
(``invalid_points``), or in a dead record (``dead_points``). Every sample of the valid points is
stored or dropped and counted by the store (:class:`~rca.store.window_store.WriteResult`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field

from rca.ingest.otlp_decode import (
    DecodeState,
    MalformedRecord,
    Samples,
    data_points,
    decode_record,
)
from rca.store.window_store import WindowStore, WriteResult

log = logging.getLogger(__name__)

Decoder = Callable[[bytes | None, DecodeState, Samples], int]


@dataclass
class BatchOutcome:
    points: int = 0
    samples: int = 0  # of the valid points; the written counts add up to it
    invalid_points: int = 0
    last_invalid_reason: str | None = None
    dead: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, reason)
    dead_points: int = 0
    errors: int = 0  # dead records that raised something other than MalformedRecord
    written: WriteResult = field(default_factory=WriteResult)


def store_records(
    values: Sequence[bytes | None],
    state: DecodeState,
    store: WindowStore,
    max_time_ns: int | None,
    decode: Decoder = decode_record,
) -> BatchOutcome:
    """Decode ``values`` and write their samples to ``store`` (see the module docstring)."""
    if store.max_series is not None:
        state.bound(store.max_series)
    outcome = BatchOutcome()
    samples = Samples()
    # (index, end of its samples, its valid and its invalid points)
    decoded: list[tuple[int, int, int, int]] = []
    for index, value in enumerate(values):
        invalid = samples.invalid_points
        try:
            points = decode(value, state, samples)
        except MalformedRecord as exc:
            outcome.dead.append((index, str(exc)))
        except Exception as exc:
            log.exception("decoding record %d of the batch failed", index)
            outcome.dead.append((index, f"{type(exc).__name__} while decoding: {exc}"))
            outcome.errors += 1
        else:
            decoded.append((index, len(samples.keys), points, samples.invalid_points - invalid))
    outcome.points = samples.points
    outcome.samples = len(samples.keys)
    outcome.invalid_points = samples.invalid_points
    outcome.last_invalid_reason = samples.first_problem
    try:
        outcome.written = store.write(samples.keys, samples.times_ns, samples.values, max_time_ns)
    except Exception:
        log.exception("storing a batch failed; storing its records one by one")
        _write_one_by_one(samples, decoded, store, max_time_ns, outcome)
    outcome.dead.sort()
    outcome.dead_points = sum(data_points(values[index]) for index, _ in outcome.dead)
    return outcome


def _write_one_by_one(
    samples: Samples,
    decoded: list[tuple[int, int, int, int]],
    store: WindowStore,
    max_time_ns: int | None,
    outcome: BatchOutcome,
) -> None:
    """Write each record's samples alone; a record whose write raises is dead."""
    begin = 0
    for index, end, points, invalid in decoded:
        part = slice(begin, end)
        begin = end
        try:
            result = store.write(
                samples.keys[part], samples.times_ns[part], samples.values[part], max_time_ns
            )
        except Exception as exc:
            log.exception("storing record %d of the batch failed", index)
            outcome.dead.append((index, f"{type(exc).__name__} while storing: {exc}"))
            outcome.errors += 1
            outcome.points -= points
            outcome.invalid_points -= invalid
            continue
        total = map(sum, zip(astuple(outcome.written), astuple(result), strict=True))
        outcome.written = WriteResult(*total)
