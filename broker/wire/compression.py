"""Compressed record batches, as clients send them (compression.type gzip, snappy, lz4, zstd), through
cramjam. The records section after the batch header is compressed; the broker's view of a batch
is its uncompressed form (the simulation stores records, not bytes)."""
from __future__ import annotations

import struct

import cramjam
from crc32c import crc32c

HEADER = 61                 # a record batch v2's fixed fields, up to and including the record count
XERIAL = b"\x82SNAPPY\x00"  # the Java client's snappy framing (xerial SnappyOutputStream)


def _snappy(data: bytes) -> bytes:
    if not data.startswith(XERIAL):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = bytearray(), 16          # magic, version, compatible version
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        out += bytes(cramjam.snappy.decompress_raw(data[pos + 4: pos + 4 + size]))
        pos += 4 + size
    return bytes(out)


CODECS = {1: lambda d: bytes(cramjam.gzip.decompress(d)), 2: _snappy,
          3: lambda d: bytes(cramjam.lz4.decompress(d)), 4: lambda d: bytes(cramjam.zstd.decompress(d))}


def uncompressed(data: memoryview, offset: int) -> tuple[bytes, int]:
    """The batch at offset with its records decompressed (and its CRC made again), and its size in data."""
    (batch_length,) = struct.unpack_from(">i", data, offset + 8)
    size = 12 + batch_length
    (attributes,) = struct.unpack_from(">h", data, offset + 21)
    codec = attributes & 0x07
    batch = bytes(data[offset: offset + size])
    if codec == 0:
        return batch, size
    if codec not in CODECS:
        raise ValueError(f"compression codec {codec}")
    records = CODECS[codec](batch[HEADER:])
    body = bytearray(batch[21:HEADER] + records)           # attributes .. records
    struct.pack_into(">h", body, 0, attributes & ~0x07)
    head = bytearray(batch[:21])
    struct.pack_into(">i", head, 8, 9 + len(body))         # leader epoch, magic, crc + body
    struct.pack_into(">I", head, 17, crc32c(bytes(body)))
    return bytes(head + body), size
