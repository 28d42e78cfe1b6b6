"""The groups librdkafka does not describe, read from the brokers that coordinate them with our own
connection (exporter/lag/connection.py): share groups (KIP-932, exporter/lag/share.py) and streams groups
(KIP-1071, exporter/lag/streams.py). Every broker lists the groups it coordinates (one ListGroups with the
types it can describe); the same connection describes them and reads their offsets."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.describe_share_group_offsets.v0.request import DescribeShareGroupOffsetsRequest
from kio.schema.list_groups.v5.request import ListGroupsRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest
from kio.schema.share_group_describe.v1.request import ShareGroupDescribeRequest
from kio.schema.streams_group_describe.v0.request import StreamsGroupDescribeRequest

from exporter.lag.connection import BrokerConnection, Connections, KafkaProtocolError, error_name
from exporter.lag.filters import Filter
from exporter.lag.model import Snapshot
from exporter.lag.share import read_share_groups
from exporter.lag.streams import read_streams_groups

# group type -> (the requests a broker must serve to read it, the reader of its groups on their coordinator)
Read = Callable[[BrokerConnection, list[str], Snapshot, Filter], None]
TYPES: dict[str, tuple[tuple[type[Any], ...], Read]] = {
    "share": ((ShareGroupDescribeRequest, DescribeShareGroupOffsetsRequest), read_share_groups),
    "streams": ((StreamsGroupDescribeRequest, OffsetFetchRequest), read_streams_groups),
}


class CoordinatedGroupReader:
    def __init__(self, connections: Connections, groups: Filter, topics: Filter) -> None:
        self.connections, self.groups, self.topics = connections, groups, topics

    def read(self, snap: Snapshot) -> None:
        """Adds the share and streams groups to snap; a cluster without them adds nothing."""
        brokers = None
        for attempt in range(2):        # a kept connection to a broker that died since: once more, afresh
            try:
                bootstrap = self.connections.bootstrap()
            except KafkaProtocolError as e:
                snap.errors.append(f"share and streams groups: {e}")
                return
            conn = self.connections.to(bootstrap)
            if not self._types(conn):
                return
            try:
                brokers = conn.call(MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                                    include_topic_authorized_operations=False)).brokers
                break
            except KafkaProtocolError as e:
                self.connections.drop(bootstrap)
                if attempt:
                    snap.errors.append(f"share and streams groups: {e}")
        if brokers is None:
            return
        for broker in brokers:
            address = (str(broker.host), int(broker.port))
            try:
                self._read_coordinator(self.connections.to(address), snap)
            except KafkaProtocolError as e:
                self.connections.drop(address)
                snap.errors.append(f"share and streams groups on broker {int(broker.node_id)}: {e}")

    @staticmethod
    def _types(conn: BrokerConnection) -> list[str]:
        """The group types this broker can describe (Kafka 4.1 serves share groups only behind a switch)."""
        return [kind for kind, (needs, _) in TYPES.items() if all(conn.supports(r) for r in needs)]

    def _read_coordinator(self, conn: BrokerConnection, snap: Snapshot) -> None:
        """A broker lists the groups it coordinates, and answers for them."""
        types = self._types(conn)
        if not types:
            return
        listed = conn.call(ListGroupsRequest(states_filter=(), types_filter=tuple(types)))
        if listed.error_code != 0:
            raise KafkaProtocolError(f"{conn.address}: ListGroups: {error_name(listed.error_code)}")
        for kind in types:
            ids = sorted(str(g.group_id) for g in listed.groups if g.group_type == kind and self.groups(str(g.group_id)))
            if ids:
                TYPES[kind][1](conn, ids, snap, self.topics)
