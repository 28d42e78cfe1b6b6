"""One collection of consumer groups, committed offsets and partition offsets, and the lag they make."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]

# Burrow-style verdicts over the status window (kafka_consumergroup_status)
OK, LAGGING, STALLED, STOPPED = 0, 1, 2, 3
STATUS_NAMES = {OK: "ok", LAGGING: "lagging", STALLED: "stalled", STOPPED: "stopped"}


def count_by_topic(partitions: Iterable[TopicPartition]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic, _ in partitions:
        counts[topic] = counts.get(topic, 0) + 1
    return counts


@dataclass(frozen=True)
class Group:
    group_id: str
    type: str                       # classic, consumer (KIP-848), share, streams, unknown
    state: str                      # Stable, Empty, PreparingRebalance, ... as Kafka names them
    members: int | None             # None: the describe failed (a coordinator moving), not an empty group
    committed: dict[TopicPartition, int] = field(default_factory=dict)     # a share group's: its start offsets
    lags: dict[TopicPartition, int] = field(default_factory=dict)          # a share group's, as its coordinator counts
    assigned: dict[str, int] = field(default_factory=dict)      # topic -> its partitions the members own (or share)


@dataclass(frozen=True)
class Layout:
    """Where a partition lives, as the cluster's metadata says: its leader (-1: none), replicas (the
    first is the preferred leader) and in-sync replicas."""
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass
class Snapshot:
    taken_at: float                                         # epoch seconds, when the collection began
    groups: dict[str, Group] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)            # topic -> partition count
    ends: dict[TopicPartition, int] = field(default_factory=dict)       # high watermarks
    starts: dict[TopicPartition, int] = field(default_factory=dict)     # log start offsets
    commit_times: dict[tuple[str, TopicPartition], float] = field(default_factory=dict)    # record timestamps (s)
    unread: set[TopicPartition] = field(default_factory=set)            # leader unreachable: no end offset
    unread_groups: set[str] = field(default_factory=set)                # committed offsets not read: not in groups
    errors: list[str] = field(default_factory=list)
    brokers: dict[int, str] = field(default_factory=dict)               # node id -> host:port, from the metadata
    layouts: dict[TopicPartition, Layout] = field(default_factory=dict)
    retention: dict[str, tuple[int, int]] = field(default_factory=dict)    # topic -> (retention.ms, retention.bytes)

    def lag(self, group: str, tp: TopicPartition) -> int | None:
        """End offset - committed offset, never negative (the end offset is read after the commits, so a
        commit racing the read can only make it larger); None without a commit or an end offset."""
        return self._lag(self.groups[group], tp)

    def lag_seconds(self, group: str, tp: TopicPartition) -> float | None:
        """How long ago the record at the committed offset was written; 0 when caught up."""
        return self._seconds(group, tp, self.lag(group, tp))

    def rows(self, group: str) -> list[tuple[TopicPartition, int, int | None, float | None]]:
        """(partition, committed offset, lag, lag in seconds) of each partition the group has an offset on, in
        order: lag() and lag_seconds() of all of them in one pass (a collection of 10,000 groups has 500,000)."""
        g = self.groups[group]
        out = []
        for tp, offset in sorted(g.committed.items()):
            lag = self._lag(g, tp)
            out.append((tp, offset, lag, self._seconds(group, tp, lag)))
        return out

    def by_leader(self, tps: Iterable[TopicPartition]) -> tuple[dict[int, dict[str, list[int]]], list[TopicPartition]]:
        """The partitions by their leader and topic, as the metadata names them, and those without a leader
        (none, or one the metadata does not list)."""
        led: dict[int, dict[str, list[int]]] = {}
        leaderless = []
        for tp in tps:
            layout = self.layouts.get(tp)
            if layout is None or layout.leader not in self.brokers:
                leaderless.append(tp)
            else:
                led.setdefault(layout.leader, {}).setdefault(tp[0], []).append(tp[1])
        return led, leaderless

    def address(self, node: int) -> tuple[str, int]:
        """(host, port) of a broker the metadata lists."""
        host, _, port = self.brokers[node].rpartition(":")
        return host, int(port)

    def _lag(self, g: Group, tp: TopicPartition) -> int | None:
        committed, end = g.committed.get(tp), self.ends.get(tp)
        if committed is None or committed < 0 or end is None:
            return None
        if tp in g.lags:            # records acknowledged past the start offset are not lag
            return g.lags[tp]
        return max(0, end - committed)

    def _seconds(self, group: str, tp: TopicPartition, lag: int | None) -> float | None:
        if lag is None:
            return None
        if lag == 0:
            return 0.0
        written = self.commit_times.get((group, tp))
        return None if written is None else max(0.0, self.taken_at - written)
