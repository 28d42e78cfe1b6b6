"""Kafka's size-prefixed frames on a blocking socket: what the embedded brokers' listeners and the
exporter's own Kafka connections both read."""
from __future__ import annotations

import struct
from typing import Any

MAX_FRAME = 100 * 1024 * 1024       # socket.request.max.bytes


class FrameError(Exception):
    """A frame that cannot be read: the connection is closed, as Kafka's network layer does."""


def read_frame(sock: Any) -> bytes | None:
    """One size-prefixed frame; None when the peer closed the connection."""
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    if not 0 < size <= MAX_FRAME:
        raise FrameError(f"frame of {size} bytes (socket.request.max.bytes is {MAX_FRAME})")
    body = _read_exact(sock, size)
    if not body:
        raise FrameError(f"the peer closed the connection inside a frame of {size} bytes")
    return body


def _read_exact(sock: Any, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            return None if got == 0 else b""
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
