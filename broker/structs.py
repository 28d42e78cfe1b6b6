"""Small value types shared across the cluster, named as Kafka names them."""
from __future__ import annotations

from typing import Any, NamedTuple


class TopicPartition(NamedTuple):
    """(topic, partition), e.g. TopicPartition('orders', 3)."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class Record(NamedTuple):
    """A record as a producer hands it over: key, value and the producer's timestamp."""

    key: bytes | None
    value: Any
    timestamp_ms: float


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    producer_id: int
    sequence: int


class RecordMetadata(NamedTuple):
    """What a successful send reports: where the record (first of its batch) landed."""

    topic: str
    partition: int
    offset: int
