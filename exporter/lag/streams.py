"""Streams groups (KIP-1071, Kafka Streams with group.protocol=streams; served by Kafka 4.2 on): their
state, members and the partitions their active tasks process, read from the broker that coordinates them
(exporter/lag/coordinated.py), with their committed offsets (OffsetFetch, as for any group: a Streams
application commits its source and repartition topics' offsets). librdkafka neither lists nor describes
them. A task is a subtopology's partition: it processes that partition of each of the subtopology's
source topics (its input topics and the repartition topics it reads)."""
from __future__ import annotations

from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup
from kio.schema.streams_group_describe.v0.request import StreamsGroupDescribeRequest
from kio.schema.types import GroupId

from exporter.lag.connection import BrokerConnection, error_name
from exporter.lag.filters import Filter
from exporter.lag.model import Group, Snapshot, TopicPartition, count_by_topic


def read_streams_groups(conn: BrokerConnection, ids: list[str], snap: Snapshot, topics: Filter) -> None:
    """The streams groups `ids`, which conn's broker coordinates, into snap."""
    committed: dict[str, dict[TopicPartition, int]] = {}
    fetched = conn.call(OffsetFetchRequest(groups=tuple(OffsetFetchRequestGroup(group_id=GroupId(g), topics=None)
                                                        for g in ids), require_stable=False))
    for group in fetched.groups:
        gid = str(group.group_id)
        if group.error_code != 0:
            snap.errors.append(f"streams group {gid}: committed offsets: {error_name(group.error_code)}")
            snap.unread_groups.add(gid)
            continue
        committed[gid] = {(str(t.name), int(p.partition_index)): int(p.committed_offset)
                          for t in group.topics if topics(str(t.name))
                          for p in t.partitions if p.error_code == 0 and p.committed_offset >= 0}
    described = conn.call(StreamsGroupDescribeRequest(group_ids=tuple(GroupId(g) for g in ids),
                                                      include_authorized_operations=False))
    for d in described.groups:
        gid = str(d.group_id)
        if gid not in committed:
            continue
        processed: set[TopicPartition] = set()
        if d.error_code != 0:
            snap.errors.append(f"streams group {gid}: describe: {d.error_message or error_name(d.error_code)}")
            state, members = "Unknown", None
        else:
            state, members = str(d.group_state), len(d.members)
            # without a topology (not initialized yet, or its source topics missing) no task is known
            sources = {str(s.subtopology_id): [str(t) for t in s.source_topics] + [str(t.name) for t in s.repartition_source_topics]
                       for s in (d.topology.subtopologies if d.topology is not None else None) or ()}
            processed = {(topic, int(p)) for m in d.members
                         for task in m.assignment.active_tasks for topic in sources.get(str(task.subtopology_id), ())
                         if topics(topic) for p in task.partitions}
        snap.groups[gid] = Group(gid, "streams", state, members, committed[gid], assigned=count_by_topic(processed))
