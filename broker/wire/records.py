"""The simulation's batches as the protocol's record batches (v2, CRC-32C): what Fetch and ShareFetch send."""
from __future__ import annotations

import datetime
import io
from typing import Any

from kio.records.schema import NewRecordBatch
from kio.records.schema import Record as WireRecord
from kio.records.writers import write_new_batch
from kio.static.primitive import TZAwareMicros, i8, i16, i32, i64

from broker.log import Batch
from broker.structs import Record


def wire_batches(batches: tuple[Batch, ...], wall_base_ms: float) -> bytes:
    """The simulation's batches as record batches v2 (CRC-32C); a batch without payloads (the
    workload's) carries empty records."""
    out = io.BytesIO()
    for b in batches:
        payloads = b.records or tuple(Record(None, None, b.timestamp_ms) for _ in range(b.count))
        records = tuple(WireRecord(attributes=i8(0), timestamp=micros(wall_base_ms + r.timestamp_ms),
                                   offset=i64(b.base_offset + i), key=as_bytes(r.key), value=as_bytes(r.value), headers=())
                        for i, r in enumerate(payloads))
        write_new_batch(out, NewRecordBatch(producer_id=i64(b.producer_id), producer_epoch=i16(0 if b.producer_id >= 0 else -1),
                                            partition_leader_epoch=i32(b.epoch), base_sequence=i32(b.base_sequence),
                                            records=records, attributes=i16(0)))
    return out.getvalue()


def micros(epoch_ms: float) -> TZAwareMicros:
    return TZAwareMicros.parse(datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=datetime.UTC))


def as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()
