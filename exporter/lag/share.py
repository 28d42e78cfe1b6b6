"""Share groups (KIP-932: a preview in Kafka 4.1, production-ready from 4.2): their members, state and
share-partition start offsets, read from the brokers that coordinate them. A share group's position on
a partition is its start offset (the first record not yet acknowledged); from DescribeShareGroupOffsets
v1 (Kafka 4.2) the coordinator also says the lag, which counts out what was acknowledged past it."""
from __future__ import annotations

from typing import Any

from kio.schema.describe_share_group_offsets.v0.request import DescribeShareGroupOffsetsRequest as OffsetsV0
from kio.schema.describe_share_group_offsets.v0.request import DescribeShareGroupOffsetsRequestGroup as OffsetsGroupV0
from kio.schema.describe_share_group_offsets.v1.request import DescribeShareGroupOffsetsRequest as OffsetsV1
from kio.schema.describe_share_group_offsets.v1.request import DescribeShareGroupOffsetsRequestGroup as OffsetsGroupV1
from kio.schema.list_groups.v5.request import ListGroupsRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.share_group_describe.v1.request import ShareGroupDescribeRequest
from kio.schema.types import GroupId

from exporter.lag.connection import BrokerConnection, KafkaProtocolError, error_name
from exporter.lag.filters import Filter
from exporter.lag.model import Group, Snapshot, count_by_topic


class ShareGroupReader:
    def __init__(self, settings: dict[str, Any], groups: Filter, topics: Filter, timeout_s: float) -> None:
        self.settings, self.groups, self.topics, self.timeout_s = settings, groups, topics, timeout_s
        self._connections: dict[tuple[str, int], BrokerConnection] = {}

    def read(self, snap: Snapshot) -> None:
        """Adds the share groups to snap; a cluster without them adds nothing."""
        brokers = None
        for attempt in range(2):        # a kept connection to a broker that died since: once more, afresh
            bootstrap = self._bootstrap(snap)
            if bootstrap is None:
                return
            conn = self._connections[bootstrap]
            if not (conn.supports(ShareGroupDescribeRequest) and conn.supports(OffsetsV0)):
                return
            try:
                brokers = conn.call(MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                                    include_topic_authorized_operations=False)).brokers
                break
            except KafkaProtocolError as e:
                self._drop(bootstrap)
                if attempt:
                    snap.errors.append(f"share groups: {e}")
        if brokers is None:
            return
        for broker in brokers:
            address = (str(broker.host), int(broker.port))
            try:
                self._read_coordinator(self._connection(address), snap)
            except KafkaProtocolError as e:
                self._drop(address)
                snap.errors.append(f"share groups on broker {int(broker.node_id)}: {e}")

    def _read_coordinator(self, conn: BrokerConnection, snap: Snapshot) -> None:
        """A broker lists the groups it coordinates, and answers for them."""
        listed = conn.call(ListGroupsRequest(states_filter=(), types_filter=("share",)))
        if listed.error_code != 0:
            raise KafkaProtocolError(f"{conn.address}: ListGroups: {error_name(listed.error_code)}")
        ids = sorted(str(g.group_id) for g in listed.groups if g.group_type == "share" and self.groups(str(g.group_id)))
        if not ids:
            return
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
                if not self.topics(str(topic.topic_name)):
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
                          if self.topics(str(tp.topic_name)) for p in tp.partitions}
            if gid in starts or d.error_code == 0:
                snap.groups[gid] = Group(gid, "share", state, members, starts.get(gid, {}), lags.get(gid, {}),
                                         count_by_topic(shared))

    def _bootstrap(self, snap: Snapshot) -> tuple[str, int] | None:
        """The address of the first bootstrap server that answers."""
        problems = []
        for server in filter(None, (s.strip() for s in str(self.settings["bootstrap.servers"]).split(","))):
            host, _, port = server.rpartition(":")
            try:
                self._connection((host, int(port)))
                return host, int(port)
            except KafkaProtocolError as e:
                problems.append(str(e))
        snap.errors.append(f"share groups: no bootstrap server answered ({'; '.join(problems)})")
        return None

    def _connection(self, address: tuple[str, int]) -> BrokerConnection:
        conn = self._connections.get(address)
        if conn is None:
            conn = self._connections[address] = BrokerConnection(*address, self.settings, self.timeout_s)
        return conn

    def _drop(self, address: tuple[str, int]) -> None:
        conn = self._connections.pop(address, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
