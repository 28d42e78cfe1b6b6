"""Workload generator: producers with a record rate and a key space, and consumer groups.

A producer hands its records over every batch_interval (default 100 ms: 5,000 records/s are
500 records a tick, spread over its keys); the producer client then batches them per partition
as usual. The interval sets how many produce requests (and so follower and consumer fetches) the
simulation models per second, not the record rate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.cluster import Cluster
from broker.consumer import Consumer
from broker.producer import Producer
from broker.share_consumer import ShareConsumer


@dataclass(frozen=True)
class ProducerSpec:
    name: str
    topic: str
    rate: float                      # records per second
    acks: str = "all"
    keys: int = 0                    # 0: records without a key (sticky partitioner)
    record_size: int = 100
    config: dict[str, Any] = field(default_factory=dict)
    batch_interval_ms: float = 100.0


@dataclass(frozen=True)
class ConsumerGroupSpec:
    group: str
    topic: str
    members: int = 1
    commit: str = "auto"
    processing_ms: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    share: bool = False              # a share group (KIP-932): share consumers, records acknowledged, no commits


class WorkloadProducer:
    def __init__(self, cluster: Cluster, spec: ProducerSpec) -> None:
        self.spec = spec
        self.client: Producer = cluster.producer(spec.name, {"acks": spec.acks, **spec.config})
        self._keys = [f"key-{i}".encode() for i in range(spec.keys)]
        self._carry = 0.0
        self._next_key = 0
        self.handed_over = 0
        self.client.every(spec.batch_interval_ms, self._tick)

    def _tick(self) -> None:
        due = self.spec.rate * self.spec.batch_interval_ms / 1000.0 + self._carry
        n = int(due)
        self._carry = due - n
        if n <= 0:
            return
        self.handed_over += n
        if not self._keys:
            self.client.send_bulk(self.spec.topic, {None: n}, self.spec.record_size)
            return
        # keys cycle, so every key gets its share and per-key order is well defined
        counts: dict[bytes | None, int] = {}
        k = len(self._keys)
        full, rest = divmod(n, k)
        for i in range(k if full else 0):
            counts[self._keys[i]] = full
        for j in range(rest):
            key = self._keys[(self._next_key + j) % k]
            counts[key] = counts.get(key, 0) + 1
        self._next_key = (self._next_key + rest) % k
        self.client.send_bulk(self.spec.topic, counts, self.spec.record_size)


class Workload:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.producers: list[WorkloadProducer] = []
        self.groups: dict[str, list[Consumer | ShareConsumer]] = {}

    def add_producer(self, spec: ProducerSpec) -> WorkloadProducer:
        wp = WorkloadProducer(self.cluster, spec)
        self.producers.append(wp)
        return wp

    def add_group(self, spec: ConsumerGroupSpec) -> list[Consumer | ShareConsumer]:
        members: list[Consumer | ShareConsumer] = [
            self.cluster.share_consumer(f"{spec.group}-{i + 1}", spec.group, (spec.topic,), spec.config,
                                        spec.processing_ms) if spec.share else
            self.cluster.consumer(f"{spec.group}-{i + 1}", spec.group, (spec.topic,), spec.config, spec.commit,
                                  spec.processing_ms)
            for i in range(spec.members)]
        self.groups.setdefault(spec.group, []).extend(members)
        return members

    def stop_group(self, group: str) -> int:
        """The group's application stops: its members leave the group (the group goes Empty)."""
        members = [c for c in self.groups[group] if c.alive]
        for c in members:
            c.close()
        return len(members)

    def slow_group(self, group: str, processing_ms: float) -> None:
        for c in self.groups[group]:
            c.set_processing_ms(processing_ms)

    def resume_group(self, group: str, spec: ConsumerGroupSpec) -> None:
        """Back to the workload's own pace, with every member running again."""
        for c in self.groups[group]:
            if c.alive:
                c.set_processing_ms(spec.processing_ms)
            else:
                c.processing_ms = spec.processing_ms
                c.start()

    def stats(self) -> dict[str, Any]:
        return {
            "produced": sum(p.handed_over for p in self.producers),
            "acked": sum(p.client.acked for p in self.producers),
            "failed": sum(sum(p.client.failed.values()) for p in self.producers),
            "consumed": {g: sum(c.consumed for c in cs) for g, cs in self.groups.items()},
        }
