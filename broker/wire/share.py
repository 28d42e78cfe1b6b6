"""Share groups (KIP-932) on the wire: ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch, ShareAcknowledge and
DescribeShareGroupOffsets, answered by the simulation's group coordinator and share partition manager. Partitions
go by topic id. A broker advertises them only where share groups are on (Kafka 4.1: group.share.enable)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.net import RequestFailed
from broker.protocol import (
    ShareAck,
    ShareAcknowledgeRequest,
    ShareFetchRequest,
    ShareGroupDescribeRequest,
    ShareGroupHeartbeatRequest,
    ShareGroupOffsetsRequest,
)
from broker.structs import TopicPartition
from broker.wire.build import error_code
from broker.wire.records import wire_batches
from broker.wire.replies import failed
from broker.wire.topic_ids import topic_id, topics_by_id

SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
DESCRIBE_SHARE_GROUP_OFFSETS = 90
SUPPORTED = {SHARE_GROUP_HEARTBEAT: (1, 1), SHARE_GROUP_DESCRIBE: (1, 1), SHARE_FETCH: (1, 1),
             SHARE_ACKNOWLEDGE: (1, 1), DESCRIBE_SHARE_GROUP_OFFSETS: (0, 1)}


def enabled(conn: Any) -> bool:
    return bool(conn.node.share_groups_enabled())


def line_caps(conn: Any) -> dict[int, tuple[int, int]]:
    """Before 4.2, DescribeShareGroupOffsets has no lag (v0 only)."""
    return {} if conn.node.kafka.share_groups_ga else {DESCRIBE_SHARE_GROUP_OFFSETS: (0, 0)}


def _by_topic_id(conn: Any, partitions: tuple[TopicPartition, ...], names: bool = False) -> list[dict]:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [{"topic_id": topic_id(conn.cluster.cluster_id, t), **({"topic_name": t} if names else {}),
             "partitions": sorted(ps)} for t, ps in sorted(by_topic.items())]


def _heartbeat(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    topics = None if request.subscribed_topic_names is None else tuple(request.subscribed_topic_names)
    r = conn.call(ShareGroupHeartbeatRequest(request.group_id, request.member_id, int(request.member_epoch),
                                             conn.client_id, topics), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    assignment = None if r.assignment is None else {"topic_partitions": _by_topic_id(conn, r.assignment)}
    return respond({"error_code": r.error, "error_message": r.message, "member_id": r.member_id or None,
                    "member_epoch": r.member_epoch, "heartbeat_interval": r.heartbeat_interval_ms,
                    "assignment": assignment})


def _describe(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(ShareGroupDescribeRequest(tuple(request.group_ids)), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"groups": [{
        "error_code": g.error, "error_message": g.message, "group_id": g.group_id, "group_state": g.state,
        "group_epoch": g.group_epoch, "assignment_epoch": g.assignment_epoch, "assignor_name": g.assignor,
        "authorized_operations": -2147483648, "members": [{
            "member_id": m.member_id, "rack_id": None, "member_epoch": m.member_epoch, "client_id": m.client_id,
            "client_host": "/127.0.0.1", "subscribed_topic_names": m.topics,
            "assignment": {"topic_partitions": _by_topic_id(conn, m.assignment, names=True)}}
            for m in g.members]} for g in r.groups]})


def _acks(names: dict, topics: Any) -> tuple[dict[TopicPartition, tuple[ShareAck, ...]], list[TopicPartition]]:
    """The acknowledgement batches by partition, and every partition the request names (known topics only)."""
    acks: dict[TopicPartition, tuple[ShareAck, ...]] = {}
    named: list[TopicPartition] = []
    for t in topics:
        if t.topic_id not in names:
            continue
        for p in t.partitions:
            tp = TopicPartition(names[t.topic_id], int(p.partition_index))
            named.append(tp)
            if p.acknowledgement_batches:
                acks[tp] = tuple(ShareAck(int(b.first_offset), int(b.last_offset), tuple(int(x) for x in b.acknowledge_types))
                                 for b in p.acknowledgement_batches)
    return acks, named


def _partition_answers(conn: Any, r: Any, with_records: bool) -> dict:
    addresses = conn.addresses()
    topics: dict[str, list[dict]] = {}
    leaders: set[int] = set()
    for tp, d in sorted(r.partitions.items()):
        leader = {"leader_id": -1, "leader_epoch": -1}
        if d.error == "NOT_LEADER_OR_FOLLOWER":
            with conn.cluster.sched.lock:
                state = conn.node.image.topics.get(tp.topic)
                p = state.partitions[tp.partition] if state and tp.partition < len(state.partitions) else None
            if p is not None and p.leader >= 0:
                leader = {"leader_id": p.leader, "leader_epoch": p.leader_epoch}
                leaders.add(p.leader)
        entry: dict[str, Any] = {"partition_index": tp.partition, "error_code": d.error, "error_message": d.message,
                                 "current_leader": leader}
        if with_records:
            entry.update(acknowledge_error_code=int(error_code(d.ack_error).value), acknowledge_error_message=None,
                         records=wire_batches(d.batches, conn.node.wall_base_ms) if d.batches else None,
                         acquired_records=[{"first_offset": f, "last_offset": last, "delivery_count": n}
                                           for f, last, n in d.acquired])
        elif d.ack_error != "NONE" and d.error == "NONE":
            entry["error_code"] = d.ack_error
        topics.setdefault(tp.topic, []).append(entry)
    endpoints = [{"node_id": n, "host": addresses[n][0], "port": addresses[n][1], "rack": None}
                 for n in sorted(leaders) if n in addresses]
    return {"error_code": r.error, "error_message": r.message,
            "responses": [{"topic_id": topic_id(conn.cluster.cluster_id, t), "partitions": ps}
                          for t, ps in topics.items()],
            "node_endpoints": endpoints}


def _fetch(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    names = topics_by_id(conn)
    acks, named = _acks(names, request.topics)
    forgotten = tuple(TopicPartition(names[t.topic_id], int(p)) for t in request.forgotten_topics_data
                      if t.topic_id in names for p in t.partitions)
    max_wait_ms = request.max_wait.total_seconds() * 1000.0
    r = conn.call(ShareFetchRequest(request.group_id or "", request.member_id or "", int(request.share_session_epoch),
                                    tuple(named), forgotten, acks, max_wait_ms, int(request.min_bytes),
                                    int(request.max_bytes), int(request.max_records)), max_wait_ms + 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({**_partition_answers(conn, r, True), "acquisition_lock_timeout": r.lock_timeout_ms})


def _acknowledge(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    acks, _ = _acks(topics_by_id(conn), request.topics)
    r = conn.call(ShareAcknowledgeRequest(request.group_id or "", request.member_id or "",
                                          int(request.share_session_epoch), acks), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond(_partition_answers(conn, r, False))


def _offsets(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    groups = tuple((g.group_id, None if g.topics is None else tuple(t.topic_name for t in g.topics))
                   for g in request.groups)
    wanted = {g.group_id: {t.topic_name: {int(p) for p in t.partitions} for t in g.topics or ()} for g in request.groups}
    r = conn.call(ShareGroupOffsetsRequest(groups), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    out = []
    for g in r.groups:
        by_topic: dict[str, list[dict]] = {}
        for tp, o in sorted(g.partitions.items()):
            only = wanted.get(g.group_id, {}).get(tp.topic)
            if only and tp.partition not in only:
                continue
            entry = {"partition_index": tp.partition, "start_offset": o.start_offset, "leader_epoch": o.leader_epoch,
                     "error_code": "NONE", "error_message": None}
            if request.__version__ >= 1:
                entry["lag"] = o.lag
            by_topic.setdefault(tp.topic, []).append(entry)
        out.append({"group_id": g.group_id, "error_code": g.error, "error_message": None,
                    "topics": [{"topic_name": t, "topic_id": topic_id(conn.cluster.cluster_id, t), "partitions": ps}
                               for t, ps in by_topic.items()]})
    return respond({"groups": out})


HANDLERS: dict[int, Callable[[Any, Any, Callable[[dict], Any]], Any]] = {
    SHARE_GROUP_HEARTBEAT: _heartbeat, SHARE_GROUP_DESCRIBE: _describe, SHARE_FETCH: _fetch,
    SHARE_ACKNOWLEDGE: _acknowledge, DESCRIBE_SHARE_GROUP_OFFSETS: _offsets,
}
