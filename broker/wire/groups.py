"""The group protocols on the wire: the classic one (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups),
KIP-848's (ConsumerGroupHeartbeat, ConsumerGroupDescribe: partitions by topic id), and what both use
(OffsetCommit, OffsetFetch, ListGroups), answered by the simulation's group coordinator.

The coordinator works on topics and partitions; on the wire a consumer's subscription and
assignment are opaque bytes (ConsumerProtocolSubscription and ConsumerProtocolAssignment), so they
are read here for the coordinator and written back for the members: topics and partitions carry
over, a client's user data does not."""
from __future__ import annotations

import io
import struct
import typing
from collections.abc import Callable
from typing import Any

from kio.index import load_entity_schema
from kio.serial import entity_writer
from kio.static.constants import EntityType

from broker.net import RequestFailed
from broker.protocol import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest,
    DescribeGroupsRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    ListGroupsRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)
from broker.structs import TopicPartition
from broker.wire.replies import failed
from broker.wire.topic_ids import topic_id, topics_by_id
from kafka_common.consumer_protocol import assigned_partitions, read_structure

JOIN_GROUP, SYNC_GROUP, HEARTBEAT, LEAVE_GROUP = 11, 14, 12, 13
OFFSET_COMMIT, OFFSET_FETCH, LIST_GROUPS, DESCRIBE_GROUPS = 8, 9, 16, 15
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
SUPPORTED = {JOIN_GROUP: (0, 7), SYNC_GROUP: (0, 5), HEARTBEAT: (0, 4), LEAVE_GROUP: (0, 5),
             OFFSET_COMMIT: (2, 9), OFFSET_FETCH: (1, 8), LIST_GROUPS: (0, 5), DESCRIBE_GROUPS: (0, 5),
             CONSUMER_GROUP_HEARTBEAT: (0, 1), CONSUMER_GROUP_DESCRIBE: (0, 1)}


def _write(name: str, values: Any) -> bytes:
    schema = load_entity_schema(name, 0, EntityType.data)
    out = io.BytesIO()
    out.write(struct.pack(">h", 0))
    entity_writer(schema)(out, values(schema))
    return out.getvalue()


def subscription_topics(metadata: bytes) -> tuple[str, ...]:
    return tuple(read_structure("consumer_protocol_subscription", metadata).topics) if metadata else ()


def subscription(topics: tuple[str, ...]) -> bytes:
    return _write("consumer_protocol_subscription", lambda cls: cls(topics=tuple(topics), user_data=None))


def assignment_partitions(payload: bytes) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(*tp) for tp in assigned_partitions(payload))


def assignment(partitions: tuple[TopicPartition, ...]) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)

    def build(cls: type) -> Any:
        tp_cls = typing.get_args(typing.get_type_hints(cls)["assigned_partitions"])[0]
        return cls(assigned_partitions=tuple(tp_cls(topic=t, partitions=tuple(sorted(ps))) for t, ps in by_topic.items()),
                   user_data=None)
    return _write("consumer_protocol_assignment", build)


def _join(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    protocols = tuple(p.name for p in request.protocols)
    topics = subscription_topics(request.protocols[0].metadata) if request.protocols else ()
    rebalance_ms = getattr(request, "rebalance_timeout", request.session_timeout).total_seconds() * 1000.0
    internal = JoinGroupRequest(request.group_id, request.member_id, conn.client_id,
                                int(request.session_timeout.total_seconds() * 1000), int(rebalance_ms), protocols, topics)
    r = conn.call(internal, rebalance_ms + 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"error_code": r.error, "generation_id": r.generation, "protocol_type": "consumer",
                    "protocol_name": r.protocol or None, "leader": r.leader, "member_id": r.member_id,
                    "members": [{"member_id": m, "group_instance_id": None, "metadata": subscription(ts)}
                                for m, ts in r.members]})


def _sync(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    assignments = tuple((a.member_id, assignment_partitions(a.assignment)) for a in request.assignments)
    r = conn.call(SyncGroupRequest(request.group_id, request.member_id, int(request.generation_id), assignments),
                  330_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"error_code": r.error, "protocol_type": "consumer",
                    "protocol_name": getattr(request, "protocol_name", None), "assignment": assignment(r.assignment)})


def _heartbeat(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(HeartbeatRequest(request.group_id, request.member_id, int(request.generation_id)), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"error_code": r.error})


def _leave(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    members = [m.member_id for m in request.members] if hasattr(request, "members") else [request.member_id]
    answers = conn.gather([(LeaveGroupRequest(request.group_id, m), None) for m in members], 30_000.0)
    for r in answers:
        if isinstance(r, RequestFailed):
            return failed(r)
    error = next((r.error for r in answers if r.error != "NONE"), "NONE")
    return respond({"error_code": error if not hasattr(request, "members") else "NONE",
                    "members": [{"member_id": m, "group_instance_id": None, "error_code": r.error}
                                for m, r in zip(members, answers)]})


def _offset_commit(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    offsets = tuple((TopicPartition(t.name, int(p.partition_index)), int(p.committed_offset))
                    for t in request.topics for p in t.partitions)
    generation = int(getattr(request, "generation_id_or_member_epoch", getattr(request, "generation_id", -1)))
    r = conn.call(OffsetCommitRequest(request.group_id, request.member_id, generation, offsets), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    by_topic: dict[str, list[dict]] = {}
    for tp, _ in offsets:
        by_topic.setdefault(tp.topic, []).append({"partition_index": tp.partition,
                                                  "error_code": "UNKNOWN_TOPIC_OR_PARTITION" if tp in r.unknown else r.error})
    return respond({"topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]})


def _offset_fetch(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    """v8 on asks for many groups at once (KIP-709), each answered on its own, as Kafka's coordinator does."""
    asked = request.groups if hasattr(request, "groups") else (request,)
    calls = [(OffsetFetchRequest(g.group_id, None if g.topics is None else tuple(
        TopicPartition(t.name, int(p)) for t in g.topics for p in t.partition_indexes)), None) for g in asked]
    answers = conn.gather(calls, 30_000.0)
    groups = []
    for g, r in zip(asked, answers):
        if isinstance(r, RequestFailed):
            return failed(r)
        by_topic: dict[str, list[dict]] = {}
        for tp, offset in sorted(r.offsets.items()):
            by_topic.setdefault(tp.topic, []).append({"partition_index": tp.partition, "committed_offset": offset,
                                                      "committed_leader_epoch": -1, "metadata": "", "error_code": "NONE"})
        groups.append({"group_id": g.group_id, "error_code": r.error,
                       "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]})
    if hasattr(request, "groups"):
        return respond({"groups": groups})
    return respond({"error_code": groups[0]["error_code"], "topics": groups[0]["topics"]})


def _list_groups(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(ListGroupsRequest(tuple(getattr(request, "states_filter", ()) or ())), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    types = {t.lower() for t in getattr(request, "types_filter", ()) or ()}
    return respond({"error_code": r.error, "groups": [{"group_id": g.group_id, "protocol_type": g.protocol_type,
                                                       "group_state": g.state, "group_type": g.group_type}
                                                      for g in r.groups if not types or g.group_type in types]})


def _by_topic_id(conn: Any, partitions: tuple[TopicPartition, ...]) -> list[dict]:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [{"topic_id": topic_id(conn.cluster.cluster_id, t), "topic_name": t, "partitions": sorted(ps)}
            for t, ps in sorted(by_topic.items())]


def _consumer_heartbeat(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    owned = None
    if request.topic_partitions is not None:
        names = topics_by_id(conn)
        owned = tuple(TopicPartition(names[t.topic_id], int(p)) for t in request.topic_partitions
                      if t.topic_id in names for p in t.partitions)
    rebalance_ms = int(request.rebalance_timeout.total_seconds() * 1000)
    r = conn.call(ConsumerGroupHeartbeatRequest(
        request.group_id, request.member_id, int(request.member_epoch), conn.client_id, rebalance_ms,
        None if request.subscribed_topic_names is None else tuple(request.subscribed_topic_names),
        request.server_assignor, owned), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    assignment = None if r.assignment is None else {"topic_partitions": _by_topic_id(conn, r.assignment)}
    return respond({"error_code": r.error, "error_message": r.message, "member_id": r.member_id or None,
                    "member_epoch": r.member_epoch, "heartbeat_interval": r.heartbeat_interval_ms,
                    "assignment": assignment})


def _consumer_describe(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(ConsumerGroupDescribeRequest(tuple(request.group_ids)), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"groups": [{
        "error_code": g.error, "error_message": None, "group_id": g.group_id, "group_state": g.state,
        "group_epoch": g.group_epoch, "assignment_epoch": g.assignment_epoch, "assignor_name": g.assignor,
        "members": [{
            "member_id": m.member_id, "instance_id": None, "rack_id": None, "member_epoch": m.member_epoch,
            "client_id": m.client_id, "client_host": "/127.0.0.1", "subscribed_topic_names": m.topics,
            "subscribed_topic_regex": None, "assignment": {"topic_partitions": _by_topic_id(conn, m.assignment)},
            "target_assignment": {"topic_partitions": _by_topic_id(conn, m.target)}, "member_type": 1}
            for m in g.members]} for g in r.groups]})


def _describe_groups(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(DescribeGroupsRequest(tuple(request.groups)), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"groups": [{
        "error_code": g.error, "group_id": g.group_id, "group_state": g.state, "protocol_type": g.protocol_type,
        "protocol_data": g.protocol, "members": [{
            "member_id": m.member_id, "group_instance_id": None, "client_id": m.client_id, "client_host": "/127.0.0.1",
            "member_metadata": subscription(m.topics), "member_assignment": assignment(m.assignment)}
            for m in g.members]} for g in r.groups]})


HANDLERS: dict[int, Callable[[Any, Any, Callable[[dict], Any]], Any]] = {
    JOIN_GROUP: _join, SYNC_GROUP: _sync, HEARTBEAT: _heartbeat, LEAVE_GROUP: _leave, OFFSET_COMMIT: _offset_commit,
    OFFSET_FETCH: _offset_fetch, LIST_GROUPS: _list_groups, DESCRIBE_GROUPS: _describe_groups,
    CONSUMER_GROUP_HEARTBEAT: _consumer_heartbeat, CONSUMER_GROUP_DESCRIBE: _consumer_describe,
}
