"""The Java client's partitioning: murmur2 of the key for keyed records, sticky or round-robin
for records without a key, and an explicit partition always honoured."""
from __future__ import annotations

import random


def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (data[i4] | data[i4 + 1] << 8 | data[i4 + 2] << 16 | data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r                      # Java's >>> on an int: k is already unsigned here
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length & ~3
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def to_positive(n: int) -> int:
    """Utils.toPositive: n & 0x7fffffff."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """BuiltInPartitioner.partitionForKey."""
    if num_partitions <= 0:
        raise ValueError(f"a topic has at least one partition, got {num_partitions}")
    return to_positive(murmur2(key)) % num_partitions


class StickyPartitioner:
    """Records without a key stay on one partition until batch.size bytes went there, then move
    to another partition picked at random (the built-in partitioner without adaptive weights)."""

    def __init__(self, rng: random.Random, batch_size: int = 16384) -> None:
        self.rng = rng
        self.batch_size = batch_size
        self._current: dict[str, int] = {}
        self._bytes: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int, size: int) -> int:
        current = self._current.get(topic)
        if current is None or current >= num_partitions or self._bytes.get(topic, 0) >= self.batch_size:
            current = self.rng.randrange(num_partitions) if num_partitions > 1 else 0
            self._current[topic] = current
            self._bytes[topic] = 0
        self._bytes[topic] += size
        return current


class RoundRobinPartitioner:
    """org.apache.kafka.clients.producer.RoundRobinPartitioner: one partition after the other."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int, size: int) -> int:
        n = self._next.get(topic, 0)
        self._next[topic] = n + 1
        return n % num_partitions
