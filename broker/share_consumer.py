"""A share consumer (KIP-932), as Kafka's KafkaShareConsumer behaves with implicit acknowledgement: it finds the
group coordinator and heartbeats (ShareGroupHeartbeat; the coordinator assigns, a partition may go to several
members), keeps a share session with each leader of its partitions, fetches what the leader acquires for it,
processes the records (processing_ms each) and accepts them with its next fetch from that leader. close()
leaves the group and closes its sessions, handing back what it still holds; a killed one leaves its records
locked until the acquisition lock runs out.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from broker.net import Network, RequestFailed
from broker.node import Node
from broker.protocol import (
    FindCoordinatorRequest,
    MetadataRequest,
    PartitionMetadata,
    ShareAck,
    ShareAcknowledgeRequest,
    ShareFetchRequest,
    ShareGroupHeartbeatRequest,
)
from broker.sched import Scheduler
from broker.share_partition import ACCEPT
from broker.structs import ConsumerRecord, TopicPartition

OnRecords = Callable[[TopicPartition, list[ConsumerRecord], int], None]


class ShareConsumer(Node):
    role = "client"

    def __init__(self, name: str, sched: Scheduler, net: Network, rng: random.Random, config,
                 bootstrap: list[str], group_id: str, topics: tuple[str, ...], processing_ms: float = 0.0,
                 on_records: OnRecords | None = None) -> None:
        super().__init__(name, sched, net, rng)
        self.cfg = config
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self.processing_ms = processing_ms
        self.on_records = on_records
        self.consumed = 0                   # records acquired and handed to processing, over all incarnations
        self.processed = 0
        self.redelivered = 0                # of those, records delivered before (delivery count > 1)
        self.member_id = "".join(rng.choice("0123456789abcdef") for _ in range(32))

    # -- lifecycle -------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.coordinator: str | None = None
        self.epoch = 0
        self.assignment: tuple[TopicPartition, ...] = ()
        self.metadata: dict[str, tuple[PartitionMetadata, ...]] = {}
        self.brokers: dict[int, str] = {}
        self.sessions: dict[int, int] = {}                          # leader -> the next share session epoch
        self.session_partitions: dict[int, set[TopicPartition]] = {}
        self.acks: dict[int, dict[TopicPartition, list[int]]] = {}   # leader -> offsets processed, to accept
        self._fetching: set[int] = set()
        self._queue: list[tuple[int, TopicPartition, list[ConsumerRecord], list[int]]] = []
        self._processing = False
        self._current: tuple[int, TopicPartition, list[ConsumerRecord], list[int]] | None = None
        self._token = 0
        self._beat_token = 0
        self._refreshing = False
        self._find_coordinator()

    def close(self) -> None:
        """KafkaShareConsumer.close(): accept what was processed, close each share session (the broker releases
        what the member still holds), leave the group; then stop."""
        for leader in list(self.sessions):
            acks = self._take_acks(leader)
            self.request(self.brokers[leader], ShareAcknowledgeRequest(self.group_id, self.member_id, -1, acks),
                         lambda r: None, 1000.0)
        if self.coordinator:
            self.request(self.coordinator, ShareGroupHeartbeatRequest(self.group_id, self.member_id, -1),
                         lambda r: None, 1000.0)
        self.after(1.0, self.kill)

    def set_processing_ms(self, processing_ms: float) -> None:
        """The application's pace changes: the batch being processed ends at the new pace, from now."""
        self.processing_ms = processing_ms
        if self._processing and self._current is not None:
            self._token += 1
            self._schedule(*self._current)

    # -- membership ------------------------------------------------------------------------------------------
    def _any_broker(self) -> str:
        return self.rng.choice(list(self.brokers.values()) or self.bootstrap)

    def _find_coordinator(self) -> None:
        self.coordinator = None

        def done(resp: Any) -> None:
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.after(self.cfg["retry.backoff.ms"] * 5, self._find_coordinator)
                return
            self.coordinator = resp.node
            self.epoch = 0
            self._schedule_beat(0.0)

        self.request(self._any_broker(), FindCoordinatorRequest(self.group_id), done, self.cfg["request.timeout.ms"])

    def _schedule_beat(self, delay_ms: float) -> None:
        token = self._beat_token = self._beat_token + 1
        self.after(delay_ms, lambda: self._beat() if token == self._beat_token else None)

    def _beat(self) -> None:
        if self.coordinator is None:
            return
        coordinator = self.coordinator
        req = ShareGroupHeartbeatRequest(self.group_id, self.member_id, self.epoch, self.name,
                                         self.topics if self.epoch == 0 else None)

        def done(resp: Any) -> None:
            if coordinator != self.coordinator:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"):
                self.coordinator = None
                self.after(self.cfg["retry.backoff.ms"], self._find_coordinator)
            elif resp.error in ("UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH"):
                self.epoch = 0
                self._schedule_beat(self.cfg["retry.backoff.ms"])
            elif resp.error != "NONE":
                self._schedule_beat(self.cfg["retry.backoff.ms"])
            else:
                self.epoch = resp.member_epoch
                if resp.assignment is not None and tuple(sorted(resp.assignment)) != self.assignment:
                    self.assignment = tuple(sorted(resp.assignment))
                    self._fetch_all()
                self._schedule_beat(resp.heartbeat_interval_ms)

        self.request(coordinator, req, done, self.cfg["request.timeout.ms"])

    # -- fetching --------------------------------------------------------------------------------------------
    def _leader_of(self, tp: TopicPartition) -> int:
        parts = self.metadata.get(tp.topic)
        return parts[tp.partition].leader if parts and tp.partition < len(parts) else -1

    def _fetch_all(self) -> None:
        by_leader: dict[int, set[TopicPartition]] = {}
        for tp in self.assignment:
            leader = self._leader_of(tp)
            if leader < 0 or leader not in self.brokers:
                self._refresh()
                continue
            by_leader.setdefault(leader, set()).add(tp)
        for leader in set(self.session_partitions) | set(by_leader):
            if leader in self._fetching or (self._processing and leader in {q[0] for q in self._queue}):
                continue
            self._fetch(leader, by_leader.get(leader, set()))

    def _fetch(self, leader: int, wanted: set[TopicPartition]) -> None:
        """One ShareFetch to leader: the session's partition changes and the acknowledgements ride along."""
        epoch = self.sessions.get(leader, 0)
        known = self.session_partitions.get(leader, set()) if epoch else set()
        if not wanted and not known:
            return
        acks = self._take_acks(leader)
        req = ShareFetchRequest(self.group_id, self.member_id, epoch, tuple(sorted(wanted - known)),
                                tuple(sorted(known - wanted)), acks, self.cfg["fetch.max.wait.ms"], 1,
                                self.cfg["fetch.max.bytes"], self.cfg["max.poll.records"])
        self._fetching.add(leader)
        self.sessions[leader] = epoch + 1
        self.session_partitions[leader] = set(wanted)
        self.request(self.brokers[leader], req, lambda r: self._on_fetch(leader, r),
                     self.cfg["fetch.max.wait.ms"] + self.cfg["request.timeout.ms"])

    def _take_acks(self, leader: int) -> dict[TopicPartition, tuple[ShareAck, ...]]:
        out: dict[TopicPartition, tuple[ShareAck, ...]] = {}
        for tp, offsets in self.acks.pop(leader, {}).items():
            ranges: list[ShareAck] = []
            for offset in sorted(offsets):
                if ranges and ranges[-1].last == offset - 1:
                    ranges[-1] = ShareAck(ranges[-1].first, offset, (ACCEPT,))
                else:
                    ranges.append(ShareAck(offset, offset, (ACCEPT,)))
            out[tp] = tuple(ranges)
        return out

    def _refresh(self) -> None:
        if self._refreshing:
            return
        self._refreshing = True

        def done(meta: Any) -> None:
            self._refreshing = False
            if not isinstance(meta, RequestFailed):
                if meta.brokers:
                    self.brokers = dict(meta.brokers)
                self.metadata.update(meta.topics)
            self.after(self.cfg["retry.backoff.ms"], self._fetch_all)

        topics = tuple(sorted({tp.topic for tp in self.assignment}))
        self.request(self._any_broker(), MetadataRequest(topics), done, self.cfg["request.timeout.ms"])

    def _on_fetch(self, leader: int, resp: Any) -> None:
        self._fetching.discard(leader)
        if isinstance(resp, RequestFailed) or resp.error != "NONE":
            # the session is gone with the leader, or out of step: the next fetch opens a new one
            self.sessions.pop(leader, None)
            self.session_partitions.pop(leader, None)
            self._refresh()
            return
        stale = False
        for tp, data in resp.partitions.items():
            if data.error != "NONE":
                stale = True
                continue
            acquired = [(o, count) for first, last, count in data.acquired for o in range(first, last + 1)]
            if not acquired:
                continue
            payloads = {batch.base_offset + i: r for batch in data.batches if batch.records is not None
                        for i, r in enumerate(batch.records)}
            offsets = [o for o, _ in acquired]
            records = [ConsumerRecord(tp.topic, tp.partition, o, payloads[o].key, payloads[o].value, -1, -1)
                       for o in offsets if o in payloads]
            self.consumed += len(offsets)
            self.redelivered += sum(1 for _, count in acquired if count > 1)
            self._queue.append((leader, tp, records, offsets))
        if stale:
            self._refresh()
        self._process_next()
        self._fetch_all()

    # -- processing ------------------------------------------------------------------------------------------
    def _process_next(self) -> None:
        if self._processing or not self._queue:
            return
        self._processing = True
        self._current = self._queue.pop(0)
        self._token += 1
        self._schedule(*self._current)

    def _schedule(self, leader: int, tp: TopicPartition, records: list[ConsumerRecord], offsets: list[int]) -> None:
        token = self._token

        def done() -> None:
            if token != self._token:
                return
            self._processing = False
            self._current = None
            self.processed += len(offsets)
            if self.on_records:
                self.on_records(tp, records, len(offsets))
            self.acks.setdefault(leader, {}).setdefault(tp, []).extend(offsets)
            self._process_next()
            self._fetch_all()

        if self.processing_ms:
            self.after(self.processing_ms * len(offsets), done)
        else:
            done()
