"""The consumer protocol's structures (ConsumerProtocolSubscription, ConsumerProtocolAssignment): opaque bytes
to the group coordinator, read by the embedded brokers' wire and by the exporter's group reader."""
from __future__ import annotations

import struct
from typing import Any

from kio.index import load_entity_schema
from kio.serial import entity_reader
from kio.static.constants import EntityType


def read_structure(name: str, payload: bytes) -> Any:
    """A consumer protocol structure ("consumer_protocol_assignment"): its int16 version, then that version's
    fields (a newer version than kio knows is read as the newest it knows: fields are only added at the end)."""
    (version,) = struct.unpack_from(">h", payload, 0)
    schema = load_entity_schema(name, min(version, 3), EntityType.data)
    return entity_reader(schema)(memoryview(payload), 2)[0]


def assigned_partitions(payload: bytes) -> tuple[tuple[str, int], ...]:
    """(topic, partition) of a member's ConsumerProtocolAssignment; none for an empty one."""
    if not payload:
        return ()
    data = read_structure("consumer_protocol_assignment", payload)
    return tuple((str(t.topic), int(p)) for t in data.assigned_partitions for p in t.partitions)
