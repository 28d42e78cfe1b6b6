"""A producer client: partitioner, per-partition batches, acks, retries and idempotence.

As in the Java client (4.x defaults): acks=all with enable.idempotence=true, so a retried batch
keeps its sequence numbers and the leader drops the duplicate; one batch in flight per
partition keeps records in order; retriable errors are retried after retry.backoff.ms until
delivery.timeout.ms has passed since the record was handed over.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.log import Batch
from broker.net import Network, RequestFailed
from broker.node import Node
from broker.partitioner import (
    RoundRobinPartitioner,
    StickyPartitioner,
    partition_for_key,
)
from broker.protocol import (
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    ProduceRequest,
)
from broker.sched import Scheduler
from broker.structs import Record, RecordMetadata, TopicPartition

RECORD_OVERHEAD = 70
RETRIABLE = {"NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
             "REQUEST_TIMED_OUT", "UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NETWORK_EXCEPTION",
             "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH", "KAFKA_STORAGE_ERROR"}
_producer_ids = itertools.count(1000)
Callback = Callable[[RecordMetadata | None, str], None]


def next_producer_id() -> int:
    return next(_producer_ids)


@dataclass
class _Pending:
    count: int
    size: int
    created_ms: float
    records: list[Record] | None                 # None for bulk workload records
    callbacks: list[Callback] = field(default_factory=list)
    key: bytes | None = None                     # kept only while the topic's metadata is unknown
    partition: int | None = None


@dataclass
class _InFlight:
    batch: Batch
    pending: list[_Pending]
    first_created_ms: float


class Producer(Node):
    role = "client"

    def __init__(self, name: str, sched: Scheduler, net: Network, rng: random.Random, config,
                 bootstrap: list[str], partitioner: str = "sticky") -> None:
        super().__init__(name, sched, net, rng)
        self.cfg = config
        self.bootstrap = bootstrap
        acks = str(config["acks"])
        self.acks = -1 if acks in ("all", "-1") else int(acks)
        self.idempotent = bool(config["enable.idempotence"]) and self.acks == -1
        self.producer_id = next_producer_id() if self.idempotent else -1
        self._no_key = RoundRobinPartitioner() if partitioner == "roundrobin" else StickyPartitioner(rng)
        self._key_cache: dict[tuple[str, bytes], int] = {}
        self.metadata: dict[str, tuple[PartitionMetadata, ...]] = {}
        self.brokers: dict[int, str] = {}
        self._queues: dict[TopicPartition, list[_Pending]] = {}
        self._unrouted: dict[str, list[_Pending]] = {}      # records waiting for their topic's metadata
        self._in_flight: dict[TopicPartition, _InFlight] = {}
        self._sequence: dict[TopicPartition, int] = {}
        self._metadata_wanted: set[str] = set()
        self._metadata_inflight = False
        self._drain_scheduled = False
        self.acked = 0
        self.failed: dict[str, int] = {}
        self.errors_seen: dict[str, int] = {}
        self.acked_batches: list[tuple[TopicPartition, int, int, int]] = []   # (tp, offset, seq, count)
        self.track_acks = False

    def on_start(self) -> None:
        self._metadata_inflight = False
        self._drain_scheduled = False
        self._in_flight = {}
        self.every(300_000.0, lambda: self._refresh_metadata(set(self.metadata)))

    # -- the API ------------------------------------------------------------------------------------------
    def send(self, topic: str, value: Any = None, key: bytes | None = None, partition: int | None = None,
             callback: Callback | None = None) -> None:
        """Hand one record over; callback(metadata, error) runs when it is acknowledged or fails."""
        size = RECORD_OVERHEAD + len(key or b"") + len(str(value))
        record = Record(key, value, self.now())
        self._enqueue(topic, key, partition, size, 1, [record], callback)

    def send_bulk(self, topic: str, key_counts: dict[bytes | None, int], record_size: int) -> None:
        """Hand over many records by key (workload generator); payloads are not kept."""
        for key, count in key_counts.items():
            self._enqueue(topic, key, None, record_size * count, count, None, None)

    def _enqueue(self, topic: str, key: bytes | None, partition: int | None, size: int, count: int,
                 records: list[Record] | None, callback: Callback | None) -> None:
        parts = self.metadata.get(topic)
        if parts is None:
            self._metadata_wanted.add(topic)
            self._refresh_metadata({topic})
            waiting = self._unrouted.setdefault(topic, [])
            waiting.append(_Pending(count, size, self.now(), records, [callback] if callback else [], key, partition))
            if len(waiting) == 1:
                self.after(self.cfg["max.block.ms"], lambda: self._metadata_timeout(topic))
            return
        if partition is None:
            partition = self._partition(topic, key, len(parts), size)
        elif not 0 <= partition < len(parts):
            raise ValueError(f"partition {partition} does not exist: topic {topic!r} has {len(parts)} partitions")
        tp = TopicPartition(topic, partition)
        queue = self._queues.setdefault(tp, [])
        if records is None and not callback and queue and queue[-1].records is None and not queue[-1].callbacks:
            queue[-1].count += count
            queue[-1].size += size
        else:
            queue.append(_Pending(count, size, self.now(), records, [callback] if callback else []))
        self._schedule_drain()

    def _metadata_timeout(self, topic: str) -> None:
        """send() blocks at most max.block.ms for a topic's metadata, then fails its records."""
        now = self.now()
        waiting = self._unrouted.get(topic, [])
        expired = [p for p in waiting if now - p.created_ms >= self.cfg["max.block.ms"]]
        self._unrouted[topic] = [p for p in waiting if p not in expired]
        error = f"TIMEOUT: Topic {topic} not present in metadata after {self.cfg['max.block.ms']} ms."
        for pending in expired:
            self.failed[error] = self.failed.get(error, 0) + pending.count
            for cb in pending.callbacks:
                cb(None, error)
        if self._unrouted[topic]:
            self.after(self.cfg["max.block.ms"], lambda: self._metadata_timeout(topic))
        else:
            del self._unrouted[topic]
            self._metadata_wanted.discard(topic)

    def _partition(self, topic: str, key: bytes | None, n: int, size: int) -> int:
        if key is None or self.cfg["partitioner.ignore.keys"]:
            return self._no_key.partition(topic, n, size)
        cached = self._key_cache.get((topic, key))
        if cached is None:
            cached = self._key_cache[(topic, key)] = partition_for_key(key, n)
        return cached

    # -- metadata -----------------------------------------------------------------------------------------
    def _refresh_metadata(self, topics: set[str]) -> None:
        self._metadata_wanted |= topics
        if self._metadata_inflight or not self._metadata_wanted:
            return
        self._metadata_inflight = True
        live = list(self.brokers.values()) or self.bootstrap
        target = self.rng.choice(live)
        wanted = tuple(sorted(self._metadata_wanted))

        def done(resp: Any) -> None:
            self._metadata_inflight = False
            if isinstance(resp, RequestFailed):
                self.brokers.pop(next((b for b, n in self.brokers.items() if n == target), -1), None)
                self.after(self.cfg["retry.backoff.ms"], lambda: self._refresh_metadata(set()))
                return
            self._on_metadata(resp)

        self.request(target, MetadataRequest(wanted), done, self.cfg["request.timeout.ms"])

    def _on_metadata(self, resp: MetadataResponse) -> None:
        if resp.brokers:
            self.brokers = dict(resp.brokers)
        for topic, parts in resp.topics.items():
            self.metadata[topic] = parts
            self._metadata_wanted.discard(topic)
            for pending in self._unrouted.pop(topic, []):
                cb = pending.callbacks[0] if pending.callbacks else None
                self._enqueue(topic, pending.key, pending.partition, pending.size, pending.count, pending.records, cb)
        if self._metadata_wanted:
            self.after(self.cfg["retry.backoff.ms"], lambda: self._refresh_metadata(set()))
        self._schedule_drain()

    # -- sending ------------------------------------------------------------------------------------------
    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.after(self.cfg["linger.ms"], self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        by_leader: dict[int, list[tuple[TopicPartition, _InFlight]]] = {}
        now = self.now()
        for tp, queue in self._queues.items():
            if not queue or tp in self._in_flight:
                continue
            leader = self.metadata[tp.topic][tp.partition].leader
            if leader < 0 or leader not in self.brokers:
                self._refresh_metadata({tp.topic})
                continue
            explicit = queue[0].records is not None
            take: list[_Pending] = []
            while queue and (queue[0].records is not None) == explicit:
                take.append(queue.pop(0))
            count = sum(p.count for p in take)
            seq = self._sequence.get(tp, 0)
            records = tuple(r for p in take for r in (p.records or ())) if explicit else None
            batch = Batch(-1, count, -1, sum(p.size for p in take), now,
                          self.producer_id, seq if self.idempotent else -1, records)
            self._sequence[tp] = seq + count
            flight = _InFlight(batch, take, min(p.created_ms for p in take))
            self._in_flight[tp] = flight
            by_leader.setdefault(leader, []).append((tp, flight))
        for leader, flights in by_leader.items():
            self._send(leader, flights)
        if any(q for tp, q in self._queues.items() if tp not in self._in_flight):
            self.after(self.cfg["retry.backoff.ms"], self._schedule_drain)

    def _send(self, leader: int, flights: list[tuple[TopicPartition, _InFlight]]) -> None:
        req = ProduceRequest(self.acks, tuple((tp, f.batch) for tp, f in flights), self.cfg["request.timeout.ms"])
        target = self.brokers[leader]
        if self.acks == 0:
            self.request(target, req, lambda r: None, self.cfg["request.timeout.ms"])
            for tp, flight in flights:
                self._complete(tp, flight, None, "NONE")
            return
        self.request(target, req, lambda r: self._on_response(flights, r), self.cfg["request.timeout.ms"])

    def _on_response(self, flights: list[tuple[TopicPartition, _InFlight]], resp: Any) -> None:
        retry = []
        for tp, flight in flights:
            if self._in_flight.get(tp) is not flight:
                continue
            if isinstance(resp, RequestFailed):
                error, offset = "REQUEST_TIMED_OUT", -1
            else:
                result = resp.results[tp]
                error, offset = result.error, result.base_offset
            if error == "NONE":
                self._complete(tp, flight, offset, "NONE")
                continue
            self.errors_seen[error] = self.errors_seen.get(error, 0) + 1
            expired = self.now() - flight.first_created_ms >= self.cfg["delivery.timeout.ms"]
            if error in RETRIABLE and not expired:
                retry.append((tp, flight))
            else:
                self._complete(tp, flight, None, "DELIVERY_TIMEOUT" if expired else error)
        if retry:
            self._refresh_metadata({tp.topic for tp, _ in retry})
            self.after(self.cfg["retry.backoff.ms"], lambda: self._resend(retry))

    def _resend(self, flights: list[tuple[TopicPartition, _InFlight]]) -> None:
        by_leader: dict[int, list[tuple[TopicPartition, _InFlight]]] = {}
        for tp, flight in flights:
            if self._in_flight.get(tp) is not flight:
                continue
            leader = self.metadata[tp.topic][tp.partition].leader
            if leader < 0 or leader not in self.brokers:
                self._on_response([(tp, flight)], RequestFailed("", None, "no leader"))
                continue
            by_leader.setdefault(leader, []).append((tp, flight))
        for leader, group in by_leader.items():
            self._send(leader, group)

    def _complete(self, tp: TopicPartition, flight: _InFlight, offset: int | None, error: str) -> None:
        del self._in_flight[tp]
        if error == "NONE":
            self.acked += flight.batch.count
            if self.track_acks and offset is not None:
                self.acked_batches.append((tp, offset, flight.batch.base_sequence, flight.batch.count))
        else:
            self.failed[error] = self.failed.get(error, 0) + flight.batch.count
        position = offset if offset is not None and offset >= 0 else -1
        for pending in flight.pending:
            for cb in pending.callbacks:
                cb(RecordMetadata(tp.topic, tp.partition, position) if error == "NONE" else None, error)
            if position >= 0:
                position += pending.count
        if self._queues.get(tp):
            self._schedule_drain()
