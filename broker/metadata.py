"""The KRaft metadata records and the image every node builds by replaying them.

Controllers and brokers apply the same committed records in the same order, so they agree on
brokers, topics, leaders and ISRs; the active controller decides on a working copy that also
holds its not-yet-committed records, as QuorumController does.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    broker_id: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class BrokerRegistrationChangeRecord:
    broker_id: int
    broker_epoch: int
    fenced: bool


@dataclass(frozen=True, slots=True)
class TopicRecord:
    name: str


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    """DeleteTopics: the topic, its partitions and its configs are gone."""
    name: str


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    topic: str
    partition: int
    isr: tuple[int, ...] | None = None
    leader: int | None = None        # None: unchanged; -1: no leader
    unclean: bool = False


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    topic: str
    key: str
    value: object


@dataclass(frozen=True, slots=True)
class NoOpRecord:
    pass


@dataclass(frozen=True, slots=True)
class LeaderChangeMessage:
    """Raft control record a new leader writes first; it commits the previous epochs' entries."""
    leader_id: int
    epoch: int


MetadataRecord = (RegisterBrokerRecord | BrokerRegistrationChangeRecord | TopicRecord | RemoveTopicRecord | PartitionRecord
                  | PartitionChangeRecord | ConfigRecord | NoOpRecord | LeaderChangeMessage)


@dataclass(slots=True)
class BrokerRegistration:
    broker_id: int
    epoch: int
    incarnation: int
    fenced: bool = True


@dataclass(slots=True)
class PartitionState:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0]


@dataclass(slots=True)
class TopicImage:
    name: str
    partitions: list[PartitionState] = field(default_factory=list)
    configs: dict[str, object] = field(default_factory=dict)


class MetadataImage:
    def __init__(self) -> None:
        self.brokers: dict[int, BrokerRegistration] = {}
        self.topics: dict[str, TopicImage] = {}
        self.offset = -1
        self.timestamp_ms = 0.0
        self.unclean_elections = 0
        self._counts: tuple[int, dict[str, int]] | None = None

    def copy(self) -> MetadataImage:
        other = MetadataImage()
        other.brokers = {k: replace(v) for k, v in self.brokers.items()}
        other.topics = {n: TopicImage(n, [replace(p) for p in t.partitions], dict(t.configs))
                        for n, t in self.topics.items()}
        other.offset, other.timestamp_ms, other.unclean_elections = self.offset, self.timestamp_ms, self.unclean_elections
        return other

    def apply(self, record: MetadataRecord, offset: int, timestamp_ms: float) -> None:
        self.offset = offset
        self.timestamp_ms = timestamp_ms
        self._counts = None
        if isinstance(record, RegisterBrokerRecord):
            # broker epoch = offset of the registration record, as in KRaft
            self.brokers[record.broker_id] = BrokerRegistration(record.broker_id, offset, record.incarnation)
        elif isinstance(record, BrokerRegistrationChangeRecord):
            reg = self.brokers.get(record.broker_id)
            if reg is not None and reg.epoch == record.broker_epoch:
                reg.fenced = record.fenced
        elif isinstance(record, TopicRecord):
            self.topics[record.name] = TopicImage(record.name)
        elif isinstance(record, RemoveTopicRecord):
            del self.topics[record.name]
        elif isinstance(record, PartitionRecord):
            parts = self.topics[record.topic].partitions
            assert record.partition == len(parts), "partitions are created in order"
            parts.append(PartitionState(record.replicas, record.isr, record.leader))
        elif isinstance(record, PartitionChangeRecord):
            p = self.topics[record.topic].partitions[record.partition]
            if record.isr is not None:
                p.isr = record.isr
            if record.leader is not None and record.leader != p.leader:
                p.leader = record.leader
                p.leader_epoch += 1
            p.partition_epoch += 1
            if record.unclean:
                self.unclean_elections += 1
        elif isinstance(record, ConfigRecord):
            self.topics[record.topic].configs[record.key] = record.value

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= partition < len(t.partitions):
            return None
        return t.partitions[partition]

    def counts(self) -> dict[str, int]:
        """The ControllerMetadataMetrics gauges, recomputed once per applied offset."""
        if self._counts is not None and self._counts[0] == self.offset:
            return self._counts[1]
        offline = imbalance = partitions = 0
        for t in self.topics.values():
            for p in t.partitions:
                partitions += 1
                offline += p.leader == -1
                # PartitionRegistration.hasPreferredLeader: an offline partition is imbalanced too
                imbalance += p.leader != p.preferred_leader
        fenced = sum(1 for b in self.brokers.values() if b.fenced)
        counts = {"ActiveBrokerCount": len(self.brokers) - fenced, "FencedBrokerCount": fenced,
                  "GlobalTopicCount": len(self.topics), "GlobalPartitionCount": partitions,
                  "OfflinePartitionsCount": offline, "PreferredReplicaImbalanceCount": imbalance}
        self._counts = (self.offset, counts)
        return counts
