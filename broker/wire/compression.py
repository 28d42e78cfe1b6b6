"""Compressed record batches, as clients send them (compression.type gzip, snappy, lz4, zstd;
kafka_common/record_batches.py decompresses them). The records section after the batch header is
compressed; the broker's view of a batch is its uncompressed form (the simulation stores records, not
bytes)."""
from __future__ import annotations

import struct

from crc32c import crc32c

from kafka_common.record_batches import HEADER, decompressed


def uncompressed(data: memoryview, offset: int) -> tuple[bytes, int]:
    """The batch at offset with its records decompressed (and its CRC made again), and its size in data."""
    (batch_length,) = struct.unpack_from(">i", data, offset + 8)
    size = 12 + batch_length
    (attributes,) = struct.unpack_from(">h", data, offset + 21)
    codec = attributes & 0x07
    batch = bytes(data[offset: offset + size])
    if codec == 0:
        return batch, size
    records = decompressed(codec, batch[HEADER:])
    body = bytearray(batch[21:HEADER] + records)           # attributes .. records
    struct.pack_into(">h", body, 0, attributes & ~0x07)
    head = bytearray(batch[:21])
    struct.pack_into(">i", head, 8, 9 + len(body))         # leader epoch, magic, crc + body
    struct.pack_into(">I", head, 17, crc32c(bytes(body)))
    return bytes(head + body), size
