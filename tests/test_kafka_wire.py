"""The Kafka wire format pieces the embedded brokers use, without a cluster: compressed batches and the
consumer protocol's subscription and assignment."""
import datetime
import io
import struct

import cramjam
import pytest
from crc32c import crc32c
from kio.records.readers import read_batch
from kio.records.schema import NewRecordBatch, Record
from kio.records.writers import write_new_batch
from kio.static.primitive import TZAwareMicros, i8, i16, i32, i64

from broker.structs import TopicPartition
from broker.wire import groups
from broker.wire.compression import uncompressed
from kafka_common.record_batches import HEADER, XERIAL


def plain_batch() -> bytes:
    now = TZAwareMicros.parse(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))
    records = tuple(Record(attributes=i8(0), timestamp=now, offset=i64(i), key=b"k", value=f"value-{i}".encode() * 5,
                           headers=()) for i in range(10))
    out = io.BytesIO()
    write_new_batch(out, NewRecordBatch(producer_id=i64(7), producer_epoch=i16(0), base_sequence=i32(0),
                                        records=records, attributes=i16(0)))
    return out.getvalue()


def compress(batch: bytes, codec: int, packed: bytes) -> bytes:
    """The batch with its records section replaced by `packed` and the codec bits set, as a client sends it."""
    body = bytearray(batch[21:HEADER] + packed)
    struct.pack_into(">h", body, 0, codec)
    head = bytearray(batch[:21])
    struct.pack_into(">i", head, 8, 9 + len(body))
    struct.pack_into(">I", head, 17, crc32c(bytes(body)))
    return bytes(head + body)


def xerial(raw: bytes) -> bytes:
    block = bytes(cramjam.snappy.compress_raw(raw))
    return XERIAL + struct.pack(">ii", 1, 1) + struct.pack(">i", len(block)) + block


@pytest.mark.parametrize("codec, pack", [
    (1, lambda r: bytes(cramjam.gzip.compress(r))), (2, lambda r: bytes(cramjam.snappy.compress_raw(r))),
    (2, xerial), (3, lambda r: bytes(cramjam.lz4.compress(r))), (4, lambda r: bytes(cramjam.zstd.compress(r)))])
def test_a_compressed_batch_reads_as_its_uncompressed_records(codec, pack):
    plain = plain_batch()
    sent = compress(plain, codec, pack(plain[HEADER:]))
    assert len(sent) < len(plain)
    again, size = uncompressed(memoryview(sent + b"next batch"), 0)
    assert size == len(sent) and again == plain
    assert [r.value for r in read_batch(memoryview(again), 0)[0].records] == \
        [f"value-{i}".encode() * 5 for i in range(10)]


def test_an_unknown_codec_is_refused():
    plain = plain_batch()
    with pytest.raises(ValueError, match="compression codec 5"):
        uncompressed(memoryview(compress(plain, 5, plain[HEADER:])), 0)


def test_subscription_and_assignment_carry_topics_and_partitions():
    assert groups.subscription_topics(groups.subscription(("orders", "billing"))) == ("orders", "billing")
    parts = (TopicPartition("orders", 2), TopicPartition("billing", 0), TopicPartition("orders", 0))
    assert sorted(groups.assignment_partitions(groups.assignment(parts))) == sorted(parts)
    assert groups.assignment_partitions(b"") == ()


def test_record_timestamps_keep_their_milliseconds():
    from broker.wire.apis import _to_batches
    stamps = [1796133304534, 1796133304535, 1796133305999]
    records = tuple(Record(attributes=i8(0), offset=i64(i), key=None, value=b"v", headers=(),
                               timestamp=TZAwareMicros.parse(datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)))
                    for i, ms in enumerate(stamps))
    out = io.BytesIO()
    write_new_batch(out, NewRecordBatch(producer_id=i64(-1), producer_epoch=i16(-1), partition_leader_epoch=i32(0),
                                        base_sequence=i32(-1), records=records, attributes=i16(0)))
    [batch], error = _to_batches(out.getvalue(), 1796133300000.0)
    assert error == "NONE"
    assert [r.timestamp_ms for r in batch.records] == [4534.0, 4535.0, 5999.0]


def batch_at(base: int, times_ms: list[int], attributes: int = 0, gap: int = 1) -> bytes:
    """A batch of records at base, base + gap, ... written at times_ms (epoch ms)."""
    records = tuple(Record(attributes=i8(0), timestamp=TZAwareMicros.parse(
        datetime.datetime.fromtimestamp(t / 1000.0, tz=datetime.UTC)), offset=i64(base + i * gap), key=None,
        value=b"v", headers=()) for i, t in enumerate(times_ms))
    out = io.BytesIO()
    write_new_batch(out, NewRecordBatch(producer_id=i64(-1), producer_epoch=i16(-1), base_sequence=i32(-1),
                                        records=records, attributes=i16(attributes)))
    data = bytearray(out.getvalue())
    struct.pack_into(">q", data, 0, base)
    return bytes(data)


def test_the_timestamp_at_an_offset_is_its_records_to_the_millisecond_also_compressed():
    from kafka_common.record_batches import timestamp_at
    first = batch_at(100, [1_796_000_000_123, 1_796_000_000_456, 1_796_000_001_789])
    second = batch_at(103, [1_796_000_002_001, 1_796_000_002_002])
    answer = first + second
    assert [timestamp_at(answer, o) for o in (99, 100, 101, 102, 103, 104, 105)] == [
        1_796_000_000_123, 1_796_000_000_123, 1_796_000_000_456, 1_796_000_001_789, 1_796_000_002_001,
        1_796_000_002_002, None]
    assert timestamp_at(answer[:-5], 104) is None           # the answer's last batch cut at its size limit
    zstd = compress(second, 4, bytes(cramjam.zstd.compress(second[HEADER:])))
    assert timestamp_at(first + zstd, 104) == 1_796_000_002_002
    # a compacted log: the record at the offset is gone, the next one is what a consumer reads
    assert timestamp_at(batch_at(10, [1_000, 2_000, 3_000], gap=2), 13) == 3_000


def test_log_append_time_is_the_brokers_and_transaction_markers_are_no_records():
    from kafka_common.record_batches import timestamp_at
    appended = bytearray(batch_at(5, [1_000, 2_000]))
    struct.pack_into(">h", appended, 21, 0x08)
    struct.pack_into(">q", appended, 35, 9_999)         # maxTimestamp: the broker's append time
    assert timestamp_at(bytes(appended), 6) == 9_999
    marker = batch_at(7, [3_000], attributes=0x20)
    assert timestamp_at(marker + batch_at(8, [4_000]), 7) == 4_000
