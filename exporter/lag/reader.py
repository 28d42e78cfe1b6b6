"""Reads consumer groups, their committed offsets and the partitions' offsets through the Kafka
protocol, one collection at a time: librdkafka (confluent-kafka) lists the groups, reads the metadata
and the retention settings; the groups themselves are read from their coordinators, many per request
(exporter/lag/batched.py), where librdkafka sends one request per group, and the partitions' offsets and
the records at the committed offsets from their leaders (exporter/lag/offsets.py,
exporter/lag/commit_times.py).

Order matters: committed offsets are read before the end offsets, so a commit racing the read can
only overstate the lag, never make it negative. A partition whose leader cannot answer is reported as
unread, and the rest of the collection goes on.

A broker that dies stays in a long-lived client's broker list: its group listing times out at every
collection. A listing with errors keeps the groups known before, and the next collection lists with a
new client. Share and streams groups, which librdkafka does not describe, are read by
exporter/lag/coordinated.py before the end offsets too."""
from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from exporter.lag.batched import BatchedGroupReader, Failure
from exporter.lag.commit_times import read_commit_times
from exporter.lag.connection import Connections
from exporter.lag.coordinated import CoordinatedGroupReader
from exporter.lag.filters import Filter
from exporter.lag.model import Group, Layout, Snapshot, TopicPartition, count_by_topic
from exporter.lag.offsets import read_offsets


class KafkaReader:
    def __init__(self, client_config: dict[str, Any], groups: Filter, topics: Filter, timeout_s: float,
                 lag_seconds: bool = True) -> None:
        self.config = dict(client_config)
        self.groups, self.topics = groups, topics
        self.timeout_s = timeout_s
        self.lag_seconds = lag_seconds
        self.admin = self._admin()
        self.connections = Connections(self.config, timeout_s)
        self.batched = BatchedGroupReader(self.connections, topics)
        self.coordinated = CoordinatedGroupReader(self.connections, groups, topics)
        self._known: set[str] = set()           # the groups of the last collection

    def _admin(self) -> AdminClient:
        return AdminClient({**self.config, "client.id": "kafka-jmx-lag"})

    def close(self) -> None:
        self.connections.close()

    def read(self) -> Snapshot:
        """One collection. Raises KafkaException when the cluster cannot be reached at all."""
        snap = Snapshot(time.time())
        listings, errors = self._list()
        if errors:
            # a broker did not answer (each listing waits for it as long as the metadata names it):
            # the groups known before stay listed, and the next collection asks a new client
            self.admin = self._admin()
        snap.errors += [f"listing groups: {e}" for e in errors]
        ids = sorted(set(listings) | (self._known if errors else set()))
        # share and streams groups are read by their own describe APIs (self.coordinated)
        kinds = {gid: _type(getattr(listings.get(gid), "type", None)) for gid in ids}
        results = self.batched.read({gid: kind for gid, kind in kinds.items() if kind not in ("share", "streams")})
        for gid, result in sorted(results.items()):
            if isinstance(result, Failure):
                snap.errors.append(result.message)
                snap.unread_groups.add(gid)
                continue
            committed, d = result
            if isinstance(d, Failure):
                snap.errors.append(d.message)
                # not "no members": the describe failed
                state, members, kind, owned = "Unknown", None, kinds[gid], frozenset[TopicPartition]()
            else:
                state, members, kind, owned = d
            if gid not in listings and state == "Dead":
                continue            # known before, gone now
            snap.groups[gid] = Group(gid, "classic" if kind == "unknown" else kind, state, members, committed,
                                     assigned=count_by_topic(owned))
        self._known = set(snap.groups) | snap.unread_groups
        self.coordinated.read(snap)
        metadata = self.admin.list_topics(timeout=self.timeout_s)
        snap.brokers = {b.id: f"{b.host}:{b.port}" for b in metadata.brokers.values()}
        for name, topic in metadata.topics.items():
            if self.topics(name) and topic.error is None:
                snap.partitions[name] = len(topic.partitions)
                for p in topic.partitions.values():
                    snap.layouts[(name, p.id)] = Layout(p.leader, tuple(p.replicas), tuple(p.isrs))
        read_offsets(self.connections, snap)
        if self.lag_seconds:
            read_commit_times(self.connections, snap, self.timeout_s)
            self._read_retention(snap)
        return snap

    def _list(self) -> tuple[dict[str, Any], list[str]]:
        t = self.timeout_s
        listed = self.admin.list_consumer_groups(request_timeout=t).result(timeout=t + 5)
        return {g.group_id: g for g in listed.valid if self.groups(g.group_id)}, [str(e) for e in listed.errors]

    def _read_retention(self, snap: Snapshot) -> None:
        """retention.ms and retention.bytes of the topics a group lags on (DescribeConfigs, one request): the
        retention margin's bounds."""
        topics = sorted({tp[0] for gid, g in snap.groups.items() for tp in g.committed if snap.lag(gid, tp)})
        if not topics:
            return
        t = self.timeout_s
        futures = self.admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic) for topic in topics],
                                              request_timeout=t)
        failed: list[str] = []
        for resource, future in futures.items():
            try:
                entries = future.result(timeout=t + 5)
                snap.retention[resource.name] = (int(entries["retention.ms"].value), int(entries["retention.bytes"].value))
            except (KafkaException, KeyError, ValueError, TypeError) as e:
                failed.append(f"{resource.name} ({e})")
        if failed:
            snap.errors.append(f"topic retention settings unread: {', '.join(failed[:5])}"
                               + (f" and {len(failed) - 5} more" if len(failed) > 5 else ""))


def _type(value: Any) -> str:
    name = getattr(value, "name", None) or (str(value) if value is not None else "UNKNOWN")
    return name.lower()
