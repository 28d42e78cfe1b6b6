"""Reads consumer groups, their committed offsets and the partitions' offsets through the Kafka
protocol with confluent-kafka (librdkafka), one collection at a time.

Order matters: committed offsets are read before the end offsets, so a commit racing the read can
only overstate the lag, never make it negative. Requests go out together and librdkafka batches
them: DescribeGroups per coordinator, ListOffsets per partition leader; OffsetFetch is one request
per group (librdkafka sends one group per request), all in flight at once. A partition whose leader
cannot answer is reported as unread, and the rest of the collection goes on. Share groups, which
librdkafka does not describe, are read by exporter/lag/share.py before the end offsets too."""
from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka import TopicPartition as CkTP
from confluent_kafka.admin import AdminClient, OffsetSpec

from exporter.lag.filters import Filter
from exporter.lag.model import Group, Snapshot, TopicPartition, count_by_topic
from exporter.lag.share import ShareGroupReader

# librdkafka's ConsumerGroupState names -> Kafka's own
STATES = {"STABLE": "Stable", "EMPTY": "Empty", "PREPARING_REBALANCING": "PreparingRebalance",
          "COMPLETING_REBALANCING": "CompletingRebalance", "DEAD": "Dead", "ASSIGNING": "Assigning",
          "RECONCILING": "Reconciling", "UNKNOWN": "Unknown"}


class KafkaReader:
    def __init__(self, client_config: dict[str, Any], groups: Filter, topics: Filter, timeout_s: float,
                 lag_seconds: bool = True) -> None:
        self.config = dict(client_config)
        self.groups, self.topics = groups, topics
        self.timeout_s = timeout_s
        self.lag_seconds = lag_seconds
        self.admin = AdminClient({**self.config, "client.id": "kafka-jmx-lag"})
        self.share = ShareGroupReader(self.config, groups, topics, timeout_s)
        self._consumer: Consumer | None = None

    def close(self) -> None:
        self.share.close()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def read(self) -> Snapshot:
        """One collection. Raises KafkaException when the cluster cannot be reached at all."""
        snap = Snapshot(time.time())
        t = self.timeout_s
        listed = self.admin.list_consumer_groups(request_timeout=t).result(timeout=t + 5)
        for error in listed.errors:
            snap.errors.append(f"listing groups: {error}")
        listings = {g.group_id: g for g in listed.valid if self.groups(g.group_id)}
        ids = sorted(listings)
        described = self.admin.describe_consumer_groups(ids, request_timeout=t) if ids else {}
        offsets = {gid: self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)],
                                                               request_timeout=t)[gid] for gid in ids}
        metadata = self.admin.list_topics(timeout=t)
        for gid in ids:
            try:
                committed = {(tp.topic, tp.partition): tp.offset for tp in offsets[gid].result(timeout=t + 5).topic_partitions
                             if self.topics(tp.topic) and tp.offset >= 0}
            except KafkaException as e:
                snap.errors.append(f"group {gid}: committed offsets: {e.args[0].str()}")
                continue
            owned: set[TopicPartition] = set()
            try:
                d = described[gid].result(timeout=t + 5)
                state, members, kind = STATES.get(d.state.name, d.state.name), len(d.members), _type(d.type)
                owned = {(tp.topic, tp.partition) for m in d.members if m.assignment is not None
                         for tp in m.assignment.topic_partitions if self.topics(tp.topic)}
            except KafkaException as e:
                snap.errors.append(f"group {gid}: describe: {e.args[0].str()}")
                state, members, kind = "Unknown", None, "unknown"      # not "no members": the describe failed
            if kind == "unknown":
                kind = _type(getattr(listings[gid], "type", None))
            snap.groups[gid] = Group(gid, "classic" if kind == "unknown" else kind, state, members, committed,
                                     assigned=count_by_topic(owned))
        self.share.read(snap)
        for name, topic in metadata.topics.items():
            if self.topics(name) and topic.error is None:
                snap.partitions[name] = len(topic.partitions)
        self._read_offsets(snap)
        if self.lag_seconds:
            self._read_commit_times(snap)
        return snap

    def _read_offsets(self, snap: Snapshot) -> None:
        tps = [(topic, p) for topic, n in snap.partitions.items() for p in range(n)]
        if not tps:
            return
        t = self.timeout_s
        asked = {kind: self.admin.list_offsets({CkTP(topic, p): spec for topic, p in tps}, request_timeout=t)
                 for kind, spec in (("end", OffsetSpec.latest()), ("start", OffsetSpec.earliest()))}
        causes: dict[str, int] = {}
        for kind, futures in asked.items():
            into = snap.ends if kind == "end" else snap.starts
            for tp, future in futures.items():
                try:
                    into[(tp.topic, tp.partition)] = future.result(timeout=t + 5).offset
                except KafkaException as e:
                    snap.unread.add((tp.topic, tp.partition))
                    cause = e.args[0].str()
                    causes[cause] = causes.get(cause, 0) + 1
        for cause, n in sorted(causes.items()):
            snap.errors.append(f"partition offsets: {n} unread ({cause})")

    def _read_commit_times(self, snap: Snapshot) -> None:
        """The timestamp of the record at each lagging group's committed offset: a consumer (never in a
        group) reads one record per partition; a partition several groups lag on is read once per offset."""
        wanted: dict[TopicPartition, dict[int, list[str]]] = {}
        for gid, group in snap.groups.items():
            for tp, offset in group.committed.items():
                if snap.lag(gid, tp):
                    wanted.setdefault(tp, {}).setdefault(max(offset, snap.starts.get(tp, 0)), []).append(gid)
        if not wanted:
            return
        if self._consumer is None:
            self._consumer = Consumer({**self.config, "group.id": "kafka-jmx-lag-reader", "client.id": "kafka-jmx-lag",
                                       "enable.auto.commit": False, "enable.partition.eof": False,
                                       # one record per partition is wanted, but starving the fetcher
                                       # (1 KiB per partition, queued.min.messages 1) read 1,000 partitions
                                       # in over 30 s where these bounds take 0.1 s (benchmarks/lag_collection.py)
                                       "max.partition.fetch.bytes": 65536, "fetch.wait.max.ms": 10,
                                       "queued.max.messages.kbytes": 16384})
        deadline = time.monotonic() + self.timeout_s
        rounds = [{tp: sorted(offsets)[i] for tp, offsets in wanted.items() if i < len(offsets)}
                  for i in range(max(len(o) for o in wanted.values()))]
        for positions in rounds:
            self._consumer.assign([CkTP(topic, p, offset) for (topic, p), offset in positions.items()])
            left = dict(positions)
            while left and time.monotonic() < deadline:
                for m in self._consumer.consume(500, min(0.5, max(0.0, deadline - time.monotonic()))):
                    tp = (m.topic(), m.partition())
                    if m.error() is not None or tp not in left or m.offset() < left[tp]:
                        continue
                    for gid in wanted[tp][left.pop(tp)]:
                        snap.commit_times[(gid, tp)] = m.timestamp()[1] / 1000.0
            self._consumer.unassign()
            if left:
                snap.errors.append(f"lag seconds: no record read in time for {len(left)} partitions")


def _type(value: Any) -> str:
    name = getattr(value, "name", None) or (str(value) if value is not None else "UNKNOWN")
    return name.lower()
