"""Share groups (KIP-932: a preview in Kafka 4.1, production-ready from 4.2): their members, state and
share-partition start offsets, read from the broker that coordinates them (exporter/lag/coordinated.py). A
share group's position on a partition is its start offset (the first record not yet acknowledged); from
DescribeShareGroupOffsets v1 (Kafka 4.2) the coordinator also says the lag, which counts out what was
acknowledged past it."""
from __future__ import annotations

from kio.schema.describe_share_group_offsets.v0.request import DescribeShareGroupOffsetsRequest as OffsetsV0
from kio.schema.describe_share_group_offsets.v0.request import DescribeShareGroupOffsetsRequestGroup as OffsetsGroupV0
from kio.schema.describe_share_group_offsets.v1.request import DescribeShareGroupOffsetsRequest as OffsetsV1
from kio.schema.describe_share_group_offsets.v1.request import DescribeShareGroupOffsetsRequestGroup as OffsetsGroupV1
from kio.schema.share_group_describe.v1.request import ShareGroupDescribeRequest
from kio.schema.types import GroupId

from exporter.lag.connection import BrokerConnection, error_name
from exporter.lag.filters import Filter
from exporter.lag.model import Group, Snapshot, count_by_topic


def read_share_groups(conn: BrokerConnection, ids: list[str], snap: Snapshot, topics: Filter) -> None:
    """The share groups `ids`, which conn's broker coordinates, into snap."""
    described = conn.call(ShareGroupDescribeRequest(group_ids=tuple(GroupId(g) for g in ids), include_authorized_operations=False))
    if conn.supports(OffsetsV1):
        offsets = conn.call(OffsetsV1(groups=tuple(OffsetsGroupV1(group_id=GroupId(g), topics=None) for g in ids)))
    else:
        offsets = conn.call(OffsetsV0(groups=tuple(OffsetsGroupV0(group_id=GroupId(g), topics=None) for g in ids)))
    starts: dict[str, dict[tuple[str, int], int]] = {}
    lags: dict[str, dict[tuple[str, int], int]] = {}
    for group in offsets.groups:
        gid = str(group.group_id)
        if group.error_code != 0:
            snap.errors.append(f"share group {gid}: start offsets: {group.error_message or error_name(group.error_code)}")
            continue
        for topic in group.topics:
            if not topics(str(topic.topic_name)):
                continue
            for p in topic.partitions:
                tp = (str(topic.topic_name), int(p.partition_index))
                if p.error_code == 0 and p.start_offset >= 0:
                    starts.setdefault(gid, {})[tp] = int(p.start_offset)
                    if getattr(p, "lag", -1) >= 0:
                        lags.setdefault(gid, {})[tp] = int(p.lag)
    for d in described.groups:
        gid = str(d.group_id)
        if gid not in ids:
            continue
        shared: set[tuple[str, int]] = set()
        if d.error_code != 0:
            snap.errors.append(f"share group {gid}: describe: {d.error_message or error_name(d.error_code)}")
            state, members = "Unknown", None
        else:
            state, members = str(d.group_state), len(d.members)
            shared = {(str(tp.topic_name), int(p)) for m in d.members for tp in m.assignment.topic_partitions
                      if topics(str(tp.topic_name)) for p in tp.partitions}
        if gid in starts or d.error_code == 0:
            snap.groups[gid] = Group(gid, "share", state, members, starts.get(gid, {}), lags.get(gid, {}),
                                     count_by_topic(shared))
