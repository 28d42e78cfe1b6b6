"""Record batches (v2) as Produce requests and Fetch responses carry them: their compressed records
(compression.type gzip, snappy, lz4, zstd, through cramjam), and where each record sits in a batch (its
offset and timestamp deltas, read at the records' starts: kio 0.6.5's read_record rounds timestamps down to
whole seconds). Read by the embedded brokers' wire and by the exporter's lag in seconds."""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import cramjam
from kio.records.readers import read_signed_varint, read_signed_varlong

HEADER = 61                 # a v2 batch's fixed fields, up to and including the record count
XERIAL = b"\x82SNAPPY\x00"  # the Java client's snappy framing (xerial SnappyOutputStream)
LOG_APPEND_TIME, CONTROL = 0x08, 0x20       # attribute bits: the broker's timestamps; a transaction marker


def _snappy(data: bytes) -> bytes:
    if not data.startswith(XERIAL):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = bytearray(), 16          # magic, version, compatible version
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        out += bytes(cramjam.snappy.decompress_raw(data[pos + 4: pos + 4 + size]))
        pos += 4 + size
    return bytes(out)


CODECS: dict[int, Callable[[bytes], bytes]] = {1: lambda d: bytes(cramjam.gzip.decompress(d)), 2: _snappy,
          3: lambda d: bytes(cramjam.lz4.decompress(d)), 4: lambda d: bytes(cramjam.zstd.decompress(d))}


def decompressed(codec: int, records: bytes) -> bytes:
    """A batch's records section, uncompressed (codec: the attributes' lowest 3 bits)."""
    if codec == 0:
        return records
    if codec not in CODECS:
        raise ValueError(f"compression codec {codec}")
    return CODECS[codec](records)


def record_deltas(records: memoryview, count: int, at: int = 0) -> Iterator[tuple[int, int]]:
    """(offset delta, timestamp delta) of each of the count uncompressed records starting at `at`."""
    for _ in range(count):
        length, size = read_signed_varint(records, at)
        body = at + size
        timestamp, used = read_signed_varlong(records, body + 1)        # after the record's attributes (int8)
        offset, _ = read_signed_varint(records, body + 1 + used)
        yield offset, timestamp
        at = body + length


def timestamp_at(data: bytes, offset: int) -> int | None:
    """The timestamp (epoch ms) of the first record at or after offset in a Fetch response's records (a
    compacted log may not have the record at offset itself; transaction markers are no records); None when
    they hold no such record (an answer cut before it)."""
    view, at = memoryview(data), 0
    while at + HEADER <= len(view):
        base, length = struct.unpack_from(">qi", view, at)
        size = 12 + length
        if at + size > len(view):
            return None                 # the answer's last batch, cut at the fetch's size limit
        magic = view[at + 16]
        attributes, last_delta, first_timestamp, max_timestamp = struct.unpack_from(">hiqq", view, at + 21)
        if magic == 2 and base + last_delta >= offset and not attributes & CONTROL:
            if attributes & LOG_APPEND_TIME:
                return int(max_timestamp)       # the broker's append time, the same for every record
            (count,) = struct.unpack_from(">i", view, at + HEADER - 4)
            records = memoryview(decompressed(attributes & 0x07, bytes(view[at + HEADER: at + size])))
            for offset_delta, timestamp_delta in record_deltas(records, count):
                if base + offset_delta >= offset:
                    return int(first_timestamp + timestamp_delta)
        at += size
    return None
