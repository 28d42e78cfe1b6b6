"""The share coordinator on a broker (KIP-932): where a share partition's state lives between its leaders.

The state of (group, topic-partition) - its start offset and the in-flight records' delivery states and counts -
belongs to partition abs(hash("group:topicId:partition")) % share.coordinator.state.topic.num.partitions of
__share_group_state, and its coordinator is that partition's leader, as a group's is of __consumer_offsets. The
share partition's leader reads the state when it starts serving the partition (ReadShareGroupState) and writes
it after each acknowledgement (WriteShareGroupState): a new leader picks up where the old one stopped, with the
records the old one had handed out available again. The group coordinator reads the start offsets for
DescribeShareGroupOffsets (ReadShareGroupStateSummary). The topic is created on first use.
"""
from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.group import GroupCoordinatorHost, java_string_hash
from broker.mbeans.kafka_metrics import SampledStat
from broker.protocol import CreateTopicsRequest
from broker.structs import TopicPartition

SHARE_STATE_TOPIC = "__share_group_state"
LOAD_BYTES_PER_MS = 50_000.0


def java_uuid(value: uuid.UUID) -> str:
    """org.apache.kafka.common.Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def state_partition(group_id: str, topic_uuid: uuid.UUID, partition: int, partitions: int) -> int:
    """ShareCoordinatorService.partitionFor(SharePartitionKey): the key "group:topicId:partition", hashed."""
    return (java_string_hash(f"{group_id}:{java_uuid(topic_uuid)}:{partition}") & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class ShareState:
    """What is persisted of a share partition: its start offset (-1: never initialized), and the in-flight
    records past it as (first, last, state, delivery count) batches."""
    start_offset: int = -1
    state_epoch: int = 0
    batches: tuple[tuple[int, int, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ReadShareStateRequest:
    """ReadShareGroupState: the share partition's leader, when it starts serving the partition."""
    group_id: str
    tp: TopicPartition


@dataclass(frozen=True, slots=True)
class ReadShareStateSummaryRequest:
    """ReadShareGroupStateSummary: the group coordinator, for DescribeShareGroupOffsets."""
    group_id: str
    tp: TopicPartition


@dataclass(frozen=True, slots=True)
class ReadShareStateResponse:
    error: str = "NONE"
    state: ShareState = field(default_factory=ShareState)


@dataclass(frozen=True, slots=True)
class WriteShareStateRequest:
    group_id: str
    tp: TopicPartition
    state: ShareState


@dataclass(frozen=True, slots=True)
class WriteShareStateResponse:
    error: str = "NONE"


class ShareCoordinator:
    @staticmethod
    def serve_on(broker: GroupCoordinatorHost, coordinator: Callable[[], ShareCoordinator]) -> None:
        broker.serve(ReadShareStateRequest, "ReadShareGroupState",
                     lambda src, req, reply: coordinator().on_read(src, req, reply))
        broker.serve(ReadShareStateSummaryRequest, "ReadShareGroupStateSummary",
                     lambda src, req, reply: coordinator().on_read(src, req, reply))
        broker.serve(WriteShareStateRequest, "WriteShareGroupState",
                     lambda src, req, reply: coordinator().on_write(src, req, reply))

    def __init__(self, broker: GroupCoordinatorHost, topic_uuid: Callable[[str], uuid.UUID]) -> None:
        self.broker = broker
        self.topic_uuid = topic_uuid
        self.states: dict[tuple[str, TopicPartition], ShareState] = {}
        self.loaded: set[int] = set()
        self.loading: set[int] = set()
        self._create_requested = False
        self._writes = 0
        now = broker.now()
        self._write_rate = SampledStat("rate", now)
        self._write_latency = (SampledStat("avg", now), SampledStat("max", now))
        self._load_time = (SampledStat("avg", now), SampledStat("max", now))
        self._register_metrics()

    def _register_metrics(self) -> None:
        m = self.broker.mbeans
        bean = m.kafka_metrics("share-coordinator-metrics")
        bean.add_stat("write-rate", self._write_rate)
        bean.add_value("write-total", lambda: self._writes)
        bean.add_stat("write-latency-avg", self._write_latency[0])
        bean.add_stat("write-latency-max", self._write_latency[1])
        bean.add_stat("partition-load-time-avg", self._load_time[0])
        bean.add_stat("partition-load-time-max", self._load_time[1])
        for state, read in (("loading", lambda: len(self.loading)), ("active", lambda: len(self.loaded)),
                            ("failed", lambda: 0)):
            m.kafka_metrics("share-coordinator-metrics", {"state": state}).add_value("num-partitions", read)

    # -- where a state lives ----------------------------------------------------------------------------------
    def _num_partitions(self) -> int:
        t = self.broker.image.topics.get(SHARE_STATE_TOPIC)
        return len(t.partitions) if t else self.broker.cfg["share.coordinator.state.topic.num.partitions"]

    def partition_of(self, group_id: str, tp: TopicPartition) -> int:
        return state_partition(group_id, self.topic_uuid(tp.topic), tp.partition, self._num_partitions())

    def coordinator_of(self, group_id: str, tp: TopicPartition) -> str | None:
        """The broker that holds the state now (by the metadata image), or None; asks for the topic when it is
        not there yet, as Kafka's FindCoordinator with the SHARE key type does."""
        topic = self.broker.image.topics.get(SHARE_STATE_TOPIC)
        if topic is None:
            self._create_topic()
            return None
        leader = topic.partitions[self.partition_of(group_id, tp)].leader
        return self.broker.address_of(leader) if leader >= 0 else None

    def _create_topic(self) -> None:
        target = self.broker.controller_name()
        if self._create_requested or target is None:
            return
        self._create_requested = True
        cfg = self.broker.cfg
        req = CreateTopicsRequest(SHARE_STATE_TOPIC, cfg["share.coordinator.state.topic.num.partitions"],
                                  cfg["share.coordinator.state.topic.replication.factor"],
                                  (("min.insync.replicas", cfg["share.coordinator.state.topic.min.isr"]),))

        def done(resp: Any) -> None:
            self._create_requested = False

        self.broker.request(target, req, done, cfg["request.timeout.ms"])

    def _owns(self, group_id: str, tp: TopicPartition) -> str:
        idx = self.partition_of(group_id, tp)
        if idx in self.loaded:
            return "NONE"
        return "COORDINATOR_LOAD_IN_PROGRESS" if idx in self.loading else "NOT_COORDINATOR"

    def on_leadership(self, tp: TopicPartition, leader: bool) -> None:
        if tp.topic != SHARE_STATE_TOPIC:
            return
        idx = tp.partition
        if not leader:
            self.loaded.discard(idx)
            self.loading.discard(idx)
            for key in [k for k in self.states if self.partition_of(*k) == idx]:
                del self.states[key]
            return
        self.loading.add(idx)
        part = self.broker.local_partition(tp)
        assert part is not None, f"{tp} is led here but has no local replica"
        epoch = part.leader_epoch
        started = self.broker.now()

        def loaded() -> None:
            if idx not in self.loading or part.leader_epoch != epoch:
                return
            self.loading.discard(idx)
            self.loaded.add(idx)
            for batch in part.log.batches():
                for rec in batch.records or ():
                    _, group_id, topic, partition, state = rec
                    self.states[(group_id, TopicPartition(topic, partition))] = state
            now = self.broker.now()
            for stat in self._load_time:
                stat.record(now - started, now)

        self.broker.after(part.log.size / LOAD_BYTES_PER_MS, loaded)

    # -- the persister's requests -----------------------------------------------------------------------------
    def on_read(self, src: str, req: ReadShareStateRequest | ReadShareStateSummaryRequest, reply: Callable) -> None:
        error = self._owns(req.group_id, req.tp)
        if error != "NONE":
            reply(ReadShareStateResponse(error))
            return
        reply(ReadShareStateResponse("NONE", self.states.get((req.group_id, req.tp), ShareState())))

    def on_write(self, src: str, req: WriteShareStateRequest, reply: Callable) -> None:
        error = self._owns(req.group_id, req.tp)
        if error != "NONE":
            reply(WriteShareStateResponse(error))
            return
        started = self.broker.now()
        target = TopicPartition(SHARE_STATE_TOPIC, self.partition_of(req.group_id, req.tp))
        record = ("share", req.group_id, req.tp.topic, req.tp.partition, req.state)

        def written(err: str) -> None:
            now = self.broker.now()
            if err == "NONE":
                self.states[(req.group_id, req.tp)] = req.state
                self._writes += 1
                self._write_rate.record(1, now)
                for stat in self._write_latency:
                    stat.record(now - started, now)
            reply(WriteShareStateResponse(err))

        self.broker.append_internal(target, (record,), written)
