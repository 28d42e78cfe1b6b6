"""The group coordinator on a broker: classic groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), consumer groups
of KIP-848's protocol (ConsumerGroupHeartbeat, broker/consumer_group.py) and their offsets.

A group belongs to partition abs(hash(group.id)) % offsets.topic.num.partitions of
__consumer_offsets, and its coordinator is that partition's leader. Committed offsets are
records in that partition, replicated like any other, so they survive a coordinator move: the
new leader loads them from its replica of the log before answering (COORDINATOR_LOAD_IN_PROGRESS
meanwhile). Membership lives in memory: after a move, members rejoin.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from broker import consumer_group as cg
from broker import share_group as sg
from broker.consumer_group import ConsumerGroupState, ConsumerMember
from broker.mbeans.kafka_metrics import KafkaMetricsBean, SampledStat
from broker.mbeans.yammer import INT
from broker.net import RequestFailed
from broker.protocol import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
    ConsumerGroupDescription,
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
    ConsumerMemberDescription,
    CreateTopicsRequest,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    GroupDescription,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListedGroup,
    ListGroupsRequest,
    ListGroupsResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MemberDescription,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    ShareGroupDescribeRequest,
    ShareGroupDescribeResponse,
    ShareGroupDescription,
    ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse,
    ShareGroupOffsets,
    ShareGroupOffsetsRequest,
    ShareGroupOffsetsResponse,
    ShareMemberDescription,
    SharePartitionOffset,
    SyncGroupRequest,
    SyncGroupResponse,
)
from broker.share_partition import SharePartition
from broker.structs import TopicPartition

if TYPE_CHECKING:
    from broker.config import KafkaConfig
    from broker.mbeans.registry import MBeanRegistry
    from broker.metadata import MetadataImage
    from broker.partition import Partition
    from broker.versions import KafkaLine


class GroupCoordinatorHost(Protocol):
    """All the group coordinator reaches of its broker (Kafka hands it the ReplicaManager's append
    and the metadata cache the same way)."""
    node_id: int
    cfg: KafkaConfig
    mbeans: MBeanRegistry
    image: MetadataImage                              # the broker's metadata cache
    kafka: KafkaLine                                  # which Kafka release's metrics it has

    def now(self) -> float: ...
    def after(self, delay_ms: float, fn: Callable[[], None]) -> Any: ...
    def every(self, interval_ms: float, fn: Callable[[], None]) -> Any: ...
    def request(self, dst: str, request: Any, on_reply: Callable[[Any], None], timeout_ms: float) -> None: ...
    def serve(self, request_type: type, api: str, handler: Callable[[str, Any, Callable[[Any], None]], None]) -> None: ...
    def controller_name(self) -> str | None: ...
    def address_of(self, broker_id: int) -> str: ...
    def local_partition(self, tp: TopicPartition) -> Partition | None: ...
    def append_internal(self, tp: TopicPartition, records: tuple, done: Callable[[str], None]) -> None: ...
    def share_groups_enabled(self) -> bool: ...
    def share_state_read(self, group_id: str, tp: TopicPartition, on_reply: Callable[[Any], None]) -> None: ...

OFFSETS_TOPIC = "__consumer_offsets"
LOAD_BYTES_PER_MS = 50_000.0
EMPTY, PREPARING, COMPLETING, STABLE, DEAD = "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"


def java_string_hash(text: str) -> int:
    """String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partitions: int) -> int:
    """GroupCoordinator.partitionFor: Utils.abs(groupId.hashCode) % partitions."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % partitions


@dataclass
class Member:
    member_id: str
    client: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[str, ...]
    topics: tuple[str, ...]
    last_heartbeat_ms: float
    join_reply: Callable[[Any], None] | None = None
    sync_reply: Callable[[Any], None] | None = None
    assignment: tuple[TopicPartition, ...] = ()


@dataclass
class Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol: str = ""
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    rebalance_deadline_ms: float = 0.0
    consumer: ConsumerGroupState | None = None       # a consumer group of KIP-848's protocol, not a classic one
    share: sg.ShareGroupState | None = None          # a share group (KIP-932)

    @property
    def group_type(self) -> str:
        return "share" if self.share is not None else "classic" if self.consumer is None else "consumer"

    @property
    def protocol_type(self) -> str:
        """What ListGroups says: share groups their own, every other group "consumer"."""
        return "share" if self.share is not None else "consumer"


class GroupCoordinator:
    @staticmethod
    def serve_on(broker: GroupCoordinatorHost, coordinator: Callable[[], GroupCoordinator]) -> None:
        """The group APIs on the broker's listener, answered by its current coordinator (a new one per start)."""
        for req_type, api, method in ((FindCoordinatorRequest, "FindCoordinator", "on_find"),
                                      (JoinGroupRequest, "JoinGroup", "on_join"),
                                      (SyncGroupRequest, "SyncGroup", "on_sync"),
                                      (HeartbeatRequest, "Heartbeat", "on_heartbeat"),
                                      (LeaveGroupRequest, "LeaveGroup", "on_leave"),
                                      (OffsetCommitRequest, "OffsetCommit", "on_offset_commit"),
                                      (OffsetFetchRequest, "OffsetFetch", "on_offset_fetch"),
                                      (ListGroupsRequest, "ListGroups", "on_list_groups"),
                                      (DescribeGroupsRequest, "DescribeGroups", "on_describe_groups"),
                                      (ConsumerGroupHeartbeatRequest, "ConsumerGroupHeartbeat", "on_consumer_heartbeat"),
                                      (ConsumerGroupDescribeRequest, "ConsumerGroupDescribe", "on_consumer_describe"),
                                      (ShareGroupHeartbeatRequest, "ShareGroupHeartbeat", "on_share_heartbeat"),
                                      (ShareGroupDescribeRequest, "ShareGroupDescribe", "on_share_describe"),
                                      (ShareGroupOffsetsRequest, "DescribeShareGroupOffsets", "on_share_offsets")):
            broker.serve(req_type, api, lambda src, req, reply, m=method: getattr(coordinator(), m)(src, req, reply))

    def __init__(self, broker: GroupCoordinatorHost) -> None:
        self.broker = broker
        self.groups: dict[str, Group] = {}
        self.loaded: set[int] = set()       # offsets partitions led here and loaded
        self.loading: set[int] = set()
        self._ids = itertools.count(1)
        self._commits = 0
        self._rebalances = 0
        self._assignments = 0           # consumer groups' target assignments computed
        self._share_rebalances = 0      # share groups' target assignments computed
        self._create_requested = False
        self._register_metrics()
        broker.every(1000.0, self._expire_members)

    # -- metrics ------------------------------------------------------------------------------------------
    def _register_metrics(self) -> None:
        m = self.broker.mbeans
        now = self.broker.now()
        gm = ("kafka.coordinator.group", "GroupMetadataManager")
        m.gauge(*gm, "NumGroups", lambda: len(self.groups), java_type=INT)
        for state in (PREPARING, COMPLETING, STABLE, DEAD, EMPTY):
            m.gauge(*gm, f"NumGroups{state}", lambda s=state: self._count("classic", s), java_type=INT)
        m.gauge(*gm, "NumOffsets", lambda: sum(len(g.offsets) for g in self.groups.values()), java_type=INT)
        bean = m.kafka_metrics("group-coordinator-metrics")
        self._commit_rate = SampledStat("rate", now)
        self._rebalance_rate = SampledStat("rate", now)
        bean.add_stat("offset-commit-rate", self._commit_rate)
        bean.add_value("offset-commit-count", lambda: self._commits)
        bean.add_stat("group-completed-rebalance-rate", self._rebalance_rate)
        bean.add_value("group-completed-rebalance-count", lambda: self._rebalances)
        self._load_time = (SampledStat("avg", now), SampledStat("max", now))
        bean.add_stat("partition-load-time-avg", self._load_time[0])
        bean.add_stat("partition-load-time-max", self._load_time[1])
        for state, read in (("loading", lambda: len(self.loading)), ("active", lambda: len(self.loaded)),
                            ("failed", lambda: 0)):
            m.kafka_metrics("group-coordinator-metrics", {"state": state}).add_value("num-partitions", read)
        for kind in ("classic", "consumer", "share"):
            m.kafka_metrics("group-coordinator-metrics", {"protocol": kind}).add_value(
                "group-count", lambda k=kind: self._count(k))
        for state in cg.STATES:
            m.kafka_metrics("group-coordinator-metrics", {"state": state}).add_value(
                "consumer-group-count", lambda s=state: self._count("consumer", s))
        for state in sg.STATES:
            m.kafka_metrics("group-coordinator-metrics", {"state": state}).add_value(
                "share-group-count", lambda s=state: self._count("share", s))
        self._assignment_rate = SampledStat("rate", now)
        bean.add_stat("consumer-group-rebalance-rate", self._assignment_rate)
        bean.add_value("consumer-group-rebalance-count", lambda: self._assignments)
        self._share_rebalance_rate = SampledStat("rate", now)
        bean.add_stat("share-group-rebalance-rate", self._share_rebalance_rate)
        bean.add_value("share-group-rebalance-count", lambda: self._share_rebalances)
        if self.broker.kafka.group_coordinator_44:
            self._register_metrics_44(bean)

    def _register_metrics_44(self, bean: KafkaMetricsBean) -> None:
        m = self.broker.mbeans
        for state in (PREPARING, COMPLETING, STABLE, DEAD, EMPTY):
            m.kafka_metrics("group-coordinator-metrics", {"state": state}).add_value(
                "classic-group-count", lambda s=state: self._count("classic", s))
        bean.add_value("offset-count", lambda: sum(len(g.offsets) for g in self.groups.values()))
        for op in ("cleanup-cycle", "cleanup-eligible", "delete-error", "delete-success", "get-error",
                   "get-success", "set-error", "set-success"):
            name = f"streams-group-topology-description-{op}"
            bean.add_stat(f"{name}-rate", SampledStat("rate", self.broker.now()))
            bean.add_value(f"{name}-count", lambda: 0)

    def _count(self, group_type: str, state: str | None = None) -> int:
        return sum(1 for g in self.groups.values() if g.group_type == group_type and state in (None, g.state))

    # -- ownership ---------------------------------------------------------------------------------------------
    def _num_partitions(self) -> int:
        t = self.broker.image.topics.get(OFFSETS_TOPIC)
        return len(t.partitions) if t else self.broker.cfg["offsets.topic.num.partitions"]

    def owns(self, group_id: str) -> str:
        """NONE when this broker coordinates the group now, else the error to answer."""
        idx = partition_for(group_id, self._num_partitions())
        if idx in self.loaded:
            return "NONE"
        return "COORDINATOR_LOAD_IN_PROGRESS" if idx in self.loading else "NOT_COORDINATOR"

    def on_leadership(self, tp: TopicPartition, leader: bool) -> None:
        if tp.topic != OFFSETS_TOPIC:
            return
        idx = tp.partition
        if not leader:
            self.loaded.discard(idx)
            self.loading.discard(idx)
            n = self._num_partitions()
            for gid in [g for g in self.groups if partition_for(g, n) == idx]:
                self._unload(self.groups.pop(gid))
            return
        self.loading.add(idx)
        part = self.broker.local_partition(tp)
        assert part is not None, f"{tp} is led here but has no local replica"
        started = self.broker.now()
        load_ms = part.log.size / LOAD_BYTES_PER_MS
        epoch = part.leader_epoch

        def loaded() -> None:
            if idx not in self.loading or part.leader_epoch != epoch:
                return
            self.loading.discard(idx)
            self.loaded.add(idx)
            for batch in part.log.batches():
                for rec in batch.records or ():
                    kind, gid, topic, partition, offset = rec
                    if kind == "offset" and offset is None:      # a tombstone: the topic was deleted
                        if gid in self.groups:
                            self.groups[gid].offsets.pop(TopicPartition(topic, partition), None)
                    elif kind == "offset":
                        self.groups.setdefault(gid, Group(gid)).offsets[TopicPartition(topic, partition)] = offset
            now = self.broker.now()
            for stat in self._load_time:
                stat.record(now - started, now)

        self.broker.after(load_ms, loaded)

    def on_topic_deleted(self, topic: str) -> None:
        """GroupCoordinator.onPartitionsDeleted: the committed offsets of the topic's partitions go, with
        tombstones in the offsets topic so a coordinator loading it later drops them too."""
        n = self._num_partitions()
        for group in self.groups.values():
            gone = [tp for tp in group.offsets if tp.topic == topic]
            if not gone or self.owns(group.group_id) != "NONE":
                continue
            for tp in gone:
                del group.offsets[tp]
            records = tuple(("offset", group.group_id, tp.topic, tp.partition, None) for tp in gone)
            self.broker.append_internal(TopicPartition(OFFSETS_TOPIC, partition_for(group.group_id, n)), records,
                                        lambda err: None)

    def _unload(self, group: Group) -> None:
        for member in group.members.values():
            for reply_attr in ("join_reply", "sync_reply"):
                reply = getattr(member, reply_attr)
                if reply:
                    reply((JoinGroupResponse if reply_attr == "join_reply" else SyncGroupResponse)("NOT_COORDINATOR"))

    # -- FindCoordinator -------------------------------------------------------------------------------------------
    def on_find(self, src: str, req: FindCoordinatorRequest, reply: Callable) -> None:
        image = self.broker.image
        topic = image.topics.get(OFFSETS_TOPIC)
        if topic is None:
            self._create_offsets_topic()
            reply(FindCoordinatorResponse("COORDINATOR_NOT_AVAILABLE"))
            return
        p = topic.partitions[partition_for(req.group_id, len(topic.partitions))]
        if p.leader < 0:
            reply(FindCoordinatorResponse("COORDINATOR_NOT_AVAILABLE"))
            return
        reply(FindCoordinatorResponse("NONE", p.leader, self.broker.address_of(p.leader)))

    def _create_offsets_topic(self) -> None:
        target = self.broker.controller_name()
        if self._create_requested or target is None:
            return
        self._create_requested = True
        cfg = self.broker.cfg
        req = CreateTopicsRequest(OFFSETS_TOPIC, cfg["offsets.topic.num.partitions"],
                                  cfg["offsets.topic.replication.factor"])

        def done(resp: Any) -> None:
            self._create_requested = False

        self.broker.request(target, req, done, cfg["request.timeout.ms"])

    # -- membership ---------------------------------------------------------------------------------------------------
    def on_join(self, src: str, req: JoinGroupRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        if error != "NONE":
            reply(JoinGroupResponse(error))
            return
        now = self.broker.now()
        group = self.groups.setdefault(req.group_id, Group(req.group_id))
        if group.share is not None:
            reply(JoinGroupResponse("INCONSISTENT_GROUP_PROTOCOL"))
            return
        if group.consumer is not None:
            if group.consumer.members:
                reply(JoinGroupResponse("INCONSISTENT_GROUP_PROTOCOL"))
                return
            group.consumer = None           # an empty consumer group becomes a classic one; its offsets stay
            group.state = EMPTY
        member_id = req.member_id
        if member_id and member_id not in group.members:
            reply(JoinGroupResponse("UNKNOWN_MEMBER_ID"))
            return
        if not member_id:
            member_id = f"{req.client}-{self.broker.node_id}-{next(self._ids)}"
            group.members[member_id] = Member(member_id, req.client, req.session_timeout_ms,
                                              req.rebalance_timeout_ms, req.protocols, req.topics, now)
        member = group.members[member_id]
        member.topics, member.protocols, member.last_heartbeat_ms = req.topics, req.protocols, now
        member.join_reply = reply
        if group.state != PREPARING:
            self._prepare_rebalance(group)
        self._maybe_complete_join(group)

    def _prepare_rebalance(self, group: Group) -> None:
        now = self.broker.now()
        for m in group.members.values():
            if m.sync_reply:
                m.sync_reply(SyncGroupResponse("REBALANCE_IN_PROGRESS"))
                m.sync_reply = None
        was_empty = group.state == EMPTY
        group.state = PREPARING
        timeout = max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
        gen = group.generation
        if was_empty:
            # InitialDelayedJoin: wait for more members of a new group before the first assignment
            delay = min(self.broker.cfg["group.initial.rebalance.delay.ms"], timeout)
            group.rebalance_deadline_ms = now + delay
            self.broker.after(delay, lambda: self._complete_join(group) if group.state == PREPARING
                              and group.generation == gen and self.groups.get(group.group_id) is group else None)
        else:
            group.rebalance_deadline_ms = 0.0
            self.broker.after(timeout, lambda: self._complete_join(group) if group.state == PREPARING
                              and group.generation == gen and self.groups.get(group.group_id) is group else None)

    def _maybe_complete_join(self, group: Group) -> None:
        if group.state != PREPARING or group.rebalance_deadline_ms:
            return
        if all(m.join_reply is not None for m in group.members.values()):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        group.rebalance_deadline_ms = 0.0
        for mid in [mid for mid, m in group.members.items() if m.join_reply is None]:
            del group.members[mid]          # did not rejoin within the rebalance timeout
        group.generation += 1
        if not group.members:
            group.state = EMPTY
            group.leader = ""
            return
        ids = sorted(group.members)
        if group.leader not in group.members:
            group.leader = ids[0]
        leader = group.members[group.leader]
        group.protocol = next((p for p in leader.protocols
                               if all(p in m.protocols for m in group.members.values())), leader.protocols[0])
        group.state = COMPLETING
        subscriptions = tuple((mid, group.members[mid].topics) for mid in ids)
        for mid in ids:
            m = group.members[mid]
            reply, m.join_reply = m.join_reply, None
            assert reply is not None
            reply(JoinGroupResponse("NONE", group.generation, group.protocol, group.leader, mid,
                                    subscriptions if mid == group.leader else ()))

    def on_sync(self, src: str, req: SyncGroupRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        group = self.groups.get(req.group_id)
        if error == "NONE" and (group is None or req.member_id not in group.members):
            error = "UNKNOWN_MEMBER_ID"
        if error == "NONE" and group is not None and req.generation != group.generation:
            error = "ILLEGAL_GENERATION"
        if error != "NONE":
            reply(SyncGroupResponse(error))
            return
        assert group is not None
        member = group.members[req.member_id]
        member.last_heartbeat_ms = self.broker.now()
        if group.state == PREPARING:
            reply(SyncGroupResponse("REBALANCE_IN_PROGRESS"))
        elif group.state == STABLE:
            reply(SyncGroupResponse("NONE", member.assignment))
        else:
            member.sync_reply = reply
            if req.member_id == group.leader:
                assignments = dict(req.assignments)
                for mid, m in group.members.items():
                    m.assignment = tuple(assignments.get(mid, ()))
                group.state = STABLE
                self._rebalances += 1
                self._rebalance_rate.record(1, self.broker.now())
                for m in group.members.values():
                    if m.sync_reply:
                        m.sync_reply(SyncGroupResponse("NONE", m.assignment))
                        m.sync_reply = None

    def on_heartbeat(self, src: str, req: HeartbeatRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        group = self.groups.get(req.group_id)
        if error == "NONE" and (group is None or req.member_id not in group.members):
            error = "UNKNOWN_MEMBER_ID"
        if error != "NONE":
            reply(HeartbeatResponse(error))
            return
        assert group is not None
        group.members[req.member_id].last_heartbeat_ms = self.broker.now()
        if req.generation != group.generation:
            reply(HeartbeatResponse("ILLEGAL_GENERATION" if group.state != PREPARING else "REBALANCE_IN_PROGRESS"))
        elif group.state == PREPARING:
            reply(HeartbeatResponse("REBALANCE_IN_PROGRESS"))
        else:
            reply(HeartbeatResponse())

    def on_leave(self, src: str, req: LeaveGroupRequest, reply: Callable) -> None:
        group = self.groups.get(req.group_id)
        if self.owns(req.group_id) != "NONE" or group is None or req.member_id not in group.members:
            reply(LeaveGroupResponse("UNKNOWN_MEMBER_ID"))
            return
        del group.members[req.member_id]
        self._member_gone(group)
        reply(LeaveGroupResponse())

    def _member_gone(self, group: Group) -> None:
        if group.state in (STABLE, COMPLETING):
            self._prepare_rebalance(group)
        elif group.state == PREPARING:
            self._maybe_complete_join(group)
        if not group.members and group.state != PREPARING:
            group.state = EMPTY

    def _expire_members(self) -> None:
        now = self.broker.now()
        for group in list(self.groups.values()):
            if group.consumer is not None:
                self._expire_consumers(group, now)
                continue
            if group.share is not None:
                self._expire_share_members(group, now)
                continue
            expired = [mid for mid, m in group.members.items()
                       if m.join_reply is None and now - m.last_heartbeat_ms > m.session_timeout_ms]
            for mid in expired:
                del group.members[mid]
            if expired:
                self._member_gone(group)

    # -- offsets ---------------------------------------------------------------------------------------------------------
    def on_offset_commit(self, src: str, req: OffsetCommitRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        group = self.groups.get(req.group_id)
        if error == "NONE" and req.generation >= 0 and group is not None and group.consumer is not None:
            # ConsumerGroup.validateOffsetCommit: the member's epoch, neither newer nor older
            member = group.consumer.members.get(req.member_id)
            if member is None:
                error = "UNKNOWN_MEMBER_ID"
            elif req.generation != member.epoch:
                error = "FENCED_MEMBER_EPOCH" if req.generation > member.epoch else "STALE_MEMBER_EPOCH"
        elif error == "NONE" and req.generation >= 0:
            if group is None or req.member_id not in group.members:
                error = "UNKNOWN_MEMBER_ID"
            elif req.generation != group.generation:
                error = "ILLEGAL_GENERATION"
            elif group.state == PREPARING:
                error = "REBALANCE_IN_PROGRESS"
        if error != "NONE":
            reply(OffsetCommitResponse(error))
            return
        # KafkaApis refuses offsets of topics the metadata does not have (deleted ones among them)
        known = tuple((t, off) for t, off in req.offsets if t.topic in self.broker.image.topics)
        unknown = tuple(t for t, _ in req.offsets if t.topic not in self.broker.image.topics)
        if not known:
            reply(OffsetCommitResponse("NONE", unknown))
            return
        group = self.groups.setdefault(req.group_id, Group(req.group_id))
        tp = TopicPartition(OFFSETS_TOPIC, partition_for(req.group_id, self._num_partitions()))
        records = tuple(("offset", req.group_id, t.topic, t.partition, off) for t, off in known)
        self.broker.append_internal(tp, records, lambda err: self._committed(group, known, unknown, err, reply))

    def _committed(self, group: Group, offsets: tuple[tuple[TopicPartition, int], ...],
                   unknown: tuple[TopicPartition, ...], error: str, reply: Callable) -> None:
        if error == "NONE":
            now = self.broker.now()
            for tp, off in offsets:
                group.offsets[tp] = off
            self._commits += len(offsets)
            self._commit_rate.record(len(offsets), now)
        reply(OffsetCommitResponse(error, unknown))

    def on_offset_fetch(self, src: str, req: OffsetFetchRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        if error != "NONE":
            reply(OffsetFetchResponse(error))
            return
        group = self.groups.get(req.group_id)
        if req.partitions is None:
            offsets = dict(group.offsets) if group else {}
        else:
            offsets = {tp: (group.offsets.get(tp, -1) if group else -1) for tp in req.partitions}
        reply(OffsetFetchResponse("NONE", offsets))

    # -- listing and describing ----------------------------------------------------------------------------------------
    def on_list_groups(self, src: str, req: ListGroupsRequest, reply: Callable) -> None:
        groups = tuple(ListedGroup(g.group_id, g.protocol_type, g.state, g.group_type) for g in self.groups.values()
                       if self.owns(g.group_id) == "NONE" and (not req.states or g.state in req.states))
        reply(ListGroupsResponse("NONE", groups))

    def on_describe_groups(self, src: str, req: DescribeGroupsRequest, reply: Callable) -> None:
        out = []
        for group_id in req.groups:
            error = self.owns(group_id)
            group = self.groups.get(group_id)
            if error == "NONE" and group is not None and (group.consumer is not None or group.share is not None):
                error = "GROUP_ID_NOT_FOUND"        # not a classic group: its own describe API describes it
            if error != "NONE" or group is None:
                out.append(GroupDescription(group_id, error))
                continue
            members = tuple(MemberDescription(m.member_id, m.client, m.topics, m.assignment)
                            for m in group.members.values())
            out.append(GroupDescription(group_id, "NONE", group.state, "consumer",
                                        group.protocol if group.state == STABLE else "", members))
        reply(DescribeGroupsResponse(tuple(out)))

    # -- consumer groups (KIP-848) -------------------------------------------------------------------------------------
    def on_consumer_heartbeat(self, src: str, req: ConsumerGroupHeartbeatRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        if error != "NONE":
            reply(ConsumerGroupHeartbeatResponse(error))
            return
        group = self.groups.get(req.group_id)
        if group is not None and group.consumer is None and (group.members or group.share is not None):
            reply(ConsumerGroupHeartbeatResponse("GROUP_ID_NOT_FOUND",
                                                 message=f"Group {req.group_id} is not a consumer group."))
            return
        if req.member_epoch in (cg.LEAVE_EPOCH, cg.STATIC_LEAVE_EPOCH):
            if group is not None and group.consumer is not None and req.member_id in group.consumer.members:
                del group.consumer.members[req.member_id]
                group.consumer.group_epoch += 1
                self._assign(group)
            reply(ConsumerGroupHeartbeatResponse("NONE", req.member_id, req.member_epoch))
            return
        if group is None:
            group = self.groups[req.group_id] = Group(req.group_id)
        if group.consumer is None:
            group.consumer = ConsumerGroupState()       # a new group, or a classic one with offsets only
        state = group.consumer
        now = self.broker.now()
        member = state.members.get(req.member_id)
        changed = False
        if req.member_epoch == 0:
            if not req.topics and (member is None or not member.topics):
                reply(ConsumerGroupHeartbeatResponse("INVALID_REQUEST",
                                                     message="SubscribedTopicNames must be set in first request."))
                return
            member_id = req.member_id or f"{req.client}-{self.broker.node_id}-{next(self._ids)}"
            timeout = req.rebalance_timeout_ms if req.rebalance_timeout_ms > 0 else 300_000
            member = state.members[member_id] = ConsumerMember(member_id, req.client, timeout)
            changed = True
        elif member is None:
            reply(ConsumerGroupHeartbeatResponse("UNKNOWN_MEMBER_ID", message=f"Member {req.member_id} is not a "
                                                 f"member of group {req.group_id}."))
            return
        elif req.member_epoch not in (member.epoch, member.previous_epoch):
            reply(ConsumerGroupHeartbeatResponse("FENCED_MEMBER_EPOCH", message=f"The consumer group member has a "
                                                 f"greater member epoch ({member.epoch}) than the one known by the client "
                                                 f"({req.member_epoch})." if req.member_epoch < member.epoch else
                                                 "The member epoch is not valid."))
            return
        member.last_heartbeat_ms = now
        if req.rebalance_timeout_ms > 0:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.topics is not None and tuple(sorted(set(req.topics))) != member.topics:
            member.topics = tuple(sorted(set(req.topics)))
            changed = True
        if req.assignor is not None and req.assignor != state.assignor:
            if req.assignor not in cg.ASSIGNORS:
                reply(ConsumerGroupHeartbeatResponse("UNSUPPORTED_ASSIGNOR", message=f"ServerAssignor {req.assignor} "
                                                     f"is not supported. Supported assignors: {', '.join(cg.ASSIGNORS)}."))
                return
            state.assignor = req.assignor
            changed = True
        counts = {name: len(t.partitions) for name, t in self.broker.image.topics.items()}
        if state.refresh(counts) or changed:
            state.group_epoch += 1
        self._assign(group)
        if req.owned is not None:
            state.released(member, req.owned)
        state.reconcile(member, now)
        group.state = state.state()
        told = (member.epoch, member.assigned)
        send = told != member.told or req.topics is not None
        member.told = told
        reply(ConsumerGroupHeartbeatResponse("NONE", member.member_id, member.epoch,
                                             self.broker.cfg["group.consumer.heartbeat.interval.ms"],
                                             tuple(sorted(member.assigned)) if send else None))

    def _assign(self, group: Group) -> None:
        """A new target assignment when the group epoch moved past the last one."""
        state = group.consumer
        assert state is not None
        if state.group_epoch > state.assignment_epoch:
            state.assign()
            self._assignments += 1
            self._assignment_rate.record(1, self.broker.now())
        group.state = state.state()

    def _expire_consumers(self, group: Group, now: float) -> None:
        """Members gone silent for group.consumer.session.timeout.ms, or that did not revoke within their
        rebalance timeout, are fenced: out of the group, a new epoch for the others."""
        state = group.consumer
        assert state is not None
        session = self.broker.cfg["group.consumer.session.timeout.ms"]
        gone = [mid for mid, m in state.members.items()
                if now - m.last_heartbeat_ms > session or (m.revoking and now > m.revoke_deadline_ms)]
        for mid in gone:
            del state.members[mid]
        if gone:
            state.group_epoch += 1
            self._assign(group)

    def on_consumer_describe(self, src: str, req: ConsumerGroupDescribeRequest, reply: Callable) -> None:
        out = []
        for group_id in req.groups:
            error = self.owns(group_id)
            group = self.groups.get(group_id)
            if error != "NONE" or group is None or group.consumer is None:
                out.append(ConsumerGroupDescription(group_id, "GROUP_ID_NOT_FOUND" if error == "NONE" else error))
                continue
            state = group.consumer
            members = tuple(ConsumerMemberDescription(m.member_id, m.client, m.epoch, m.topics,
                                                      tuple(sorted(m.assigned | m.revoking)),
                                                      tuple(sorted(state.target.get(mid, ()))))
                            for mid, m in state.members.items())
            out.append(ConsumerGroupDescription(group_id, "NONE", group.state, state.group_epoch,
                                                state.assignment_epoch, state.assignor, members))
        reply(ConsumerGroupDescribeResponse(tuple(out)))

    # -- share groups (KIP-932) -----------------------------------------------------------------------------------
    def on_share_heartbeat(self, src: str, req: ShareGroupHeartbeatRequest, reply: Callable) -> None:
        error = self.owns(req.group_id)
        if error != "NONE":
            reply(ShareGroupHeartbeatResponse(error))
            return
        if not self.broker.share_groups_enabled():
            reply(ShareGroupHeartbeatResponse("UNSUPPORTED_VERSION", message="Share groups are not enabled."))
            return
        if not req.member_id:
            reply(ShareGroupHeartbeatResponse("INVALID_REQUEST", message="MemberId can't be empty."))
            return
        group = self.groups.get(req.group_id)
        if group is not None and group.share is None and (group.members or group.consumer is not None or group.offsets):
            reply(ShareGroupHeartbeatResponse("GROUP_ID_NOT_FOUND", message=f"Group {req.group_id} is not a share group."))
            return
        if req.member_epoch == sg.LEAVE_EPOCH:
            if group is not None and group.share is not None and req.member_id in group.share.members:
                self._share_member_gone(group, req.member_id)
            reply(ShareGroupHeartbeatResponse("NONE", req.member_id, req.member_epoch))
            return
        if group is None:
            group = self.groups[req.group_id] = Group(req.group_id)
        if group.share is None:
            group.share = sg.ShareGroupState()
        state = group.share
        member = state.members.get(req.member_id)
        changed = False
        if req.member_epoch == 0:
            if not req.topics and (member is None or not member.topics):
                reply(ShareGroupHeartbeatResponse("INVALID_REQUEST",
                                                  message="SubscribedTopicNames must be set in first request."))
                return
            if member is None and len(state.members) >= self.broker.cfg["group.share.max.size"]:
                reply(ShareGroupHeartbeatResponse("GROUP_MAX_SIZE_REACHED", message=f"The share group has reached "
                                                  f"its maximum capacity of {self.broker.cfg['group.share.max.size']} "
                                                  "members."))
                return
            if member is None:
                member = state.members[req.member_id] = sg.ShareMember(req.member_id, req.client)
                changed = True
            member.told = None
        elif member is None:
            reply(ShareGroupHeartbeatResponse("UNKNOWN_MEMBER_ID", message=f"Member {req.member_id} is not a member "
                                              f"of group {req.group_id}."))
            return
        elif req.member_epoch not in (member.epoch, member.previous_epoch):
            # the previous epoch is accepted: the answer that moved the member on may have been lost
            reply(ShareGroupHeartbeatResponse("FENCED_MEMBER_EPOCH", message="The share group member has a "
                                              f"greater member epoch ({member.epoch}) than the one known by the client "
                                              f"({req.member_epoch})." if req.member_epoch < member.epoch else
                                              "The member epoch is not valid."))
            return
        member.last_heartbeat_ms = self.broker.now()
        if req.topics is not None and tuple(sorted(set(req.topics))) != member.topics:
            member.topics = tuple(sorted(set(req.topics)))
            changed = True
        counts = {name: len(t.partitions) for name, t in self.broker.image.topics.items()}
        if state.refresh(counts) or changed:
            state.group_epoch += 1
        self._assign_share(group)
        state.reconcile(member)
        told = (member.epoch, member.assigned)
        send = told != member.told
        member.told = told
        reply(ShareGroupHeartbeatResponse("NONE", member.member_id, member.epoch,
                                          self.broker.cfg["group.share.heartbeat.interval.ms"],
                                          tuple(sorted(member.assigned)) if send else None))

    def _assign_share(self, group: Group) -> None:
        state = group.share
        assert state is not None
        if state.group_epoch > state.assignment_epoch:
            state.assign()
            self._share_rebalances += 1
            self._share_rebalance_rate.record(1, self.broker.now())
        group.state = state.state()

    def _share_member_gone(self, group: Group, member_id: str) -> None:
        state = group.share
        assert state is not None
        del state.members[member_id]
        state.group_epoch += 1
        self._assign_share(group)

    def _expire_share_members(self, group: Group, now: float) -> None:
        state = group.share
        assert state is not None
        session = self.broker.cfg["group.share.session.timeout.ms"]
        for mid in [mid for mid, m in state.members.items() if now - m.last_heartbeat_ms > session]:
            self._share_member_gone(group, mid)

    def on_share_describe(self, src: str, req: ShareGroupDescribeRequest, reply: Callable) -> None:
        out = []
        for group_id in req.groups:
            error = self.owns(group_id)
            group = self.groups.get(group_id)
            if error != "NONE" or group is None or group.share is None:
                message = None if error != "NONE" else f"Group {group_id} not found." if group is None else \
                    f"Group {group_id} is not a share group."
                out.append(ShareGroupDescription(group_id, "GROUP_ID_NOT_FOUND" if error == "NONE" else error,
                                                 message=message))
                continue
            state = group.share
            members = tuple(ShareMemberDescription(m.member_id, m.client, m.epoch, m.topics, tuple(sorted(m.assigned)))
                            for m in state.members.values())
            out.append(ShareGroupDescription(group_id, "NONE", group.state, state.group_epoch, state.assignment_epoch,
                                             sg.ASSIGNOR, members))
        reply(ShareGroupDescribeResponse(tuple(out)))

    def on_share_offsets(self, src: str, req: ShareGroupOffsetsRequest, reply: Callable) -> None:
        """DescribeShareGroupOffsets: each partition's start offset as the share coordinator has it, and its lag:
        the records below the high watermark not yet delivered for good (Kafka 4.2's answer; -1 before a
        share partition has started)."""
        results: dict[str, ShareGroupOffsets] = {}
        asks: list[tuple[str, TopicPartition]] = []
        for group_id, topics in req.groups:
            error = self.owns(group_id)
            group = self.groups.get(group_id)
            if error != "NONE" or group is None or group.share is None:
                results[group_id] = ShareGroupOffsets(group_id, "GROUP_ID_NOT_FOUND" if error == "NONE" else error)
                continue
            names = group.share.initialized if topics is None else set(topics)
            results[group_id] = ShareGroupOffsets(group_id)
            for name in sorted(names):
                t = self.broker.image.topics.get(name)
                asks.extend((group_id, TopicPartition(name, i)) for i in range(len(t.partitions) if t else 0))
        found: dict[tuple[str, TopicPartition], SharePartitionOffset] = {}
        pending = [2 * len(asks)]
        answers: dict[tuple[str, TopicPartition], list[Any]] = {key: [None, None] for key in asks}

        def finish() -> None:
            for group_id, offsets in results.items():
                offsets.partitions.update({tp: o for (g, tp), o in sorted(found.items()) if g == group_id})
            reply(ShareGroupOffsetsResponse(tuple(results[g] for g, _ in req.groups)))

        def got(key: tuple[str, TopicPartition], slot: int, resp: Any) -> None:
            answers[key][slot] = resp
            pending[0] -= 1
            state, hw = answers[key]
            if state is not None and hw is not None:
                found[key] = _share_offset(state, hw, self.broker.image.partition(key[1].topic, key[1].partition))
            if pending[0] == 0:
                finish()

        if not asks:
            finish()
            return
        for key in asks:
            group_id, tp = key
            self.broker.share_state_read(group_id, tp, lambda resp, k=key: got(k, 0, resp))
            leader = self.broker.image.partition(tp.topic, tp.partition)
            if leader is None or leader.leader < 0:
                got(key, 1, ListOffsetsResponse("LEADER_NOT_AVAILABLE"))
                continue
            self.broker.request(self.broker.address_of(leader.leader), ListOffsetsRequest(tp, -1),
                                lambda resp, k=key: got(k, 1, resp), self.broker.cfg["request.timeout.ms"])


def _share_offset(state: Any, latest: Any, partition: Any) -> SharePartitionOffset:
    """A share partition's start offset and lag from the share coordinator's state and the high watermark."""
    epoch = partition.leader_epoch if partition is not None else -1
    if isinstance(state, RequestFailed) or state.error != "NONE" or state.state.start_offset < 0:
        return SharePartitionOffset(-1, epoch, -1)
    persisted = SharePartition(state.state.start_offset)
    persisted.restore(state.state.batches)
    if isinstance(latest, RequestFailed) or latest.error != "NONE":
        return SharePartitionOffset(persisted.start_offset, epoch, -1)
    return SharePartitionOffset(persisted.start_offset, epoch, persisted.lag(latest.offset))
