"""What a group's lag is doing, per group and topic, from the collections over a sliding window: how fast the
group consumes and the topic's partitions grow, whether the lag grows, how long until the group has caught up,
how much retention may still delete before it reaches the oldest record the group has not read, and the
records retention deleted before the group read them.

Rates are differences over the window of sums over the group's partitions of the topic (one entry per group
and topic and collection, however many partitions): a change of those partitions (a partition added, a first
commit) starts the window over. The retention margin of a lagging partition is the closer of two bounds:
time (the oldest unread record's timestamp plus the topic's retention.ms: its segment can go no sooner) and,
on a topic with retention.bytes, size (the records between the log start offset and the committed offset,
divided by how much faster the topic is written than the group reads it: a log held at retention.bytes
deletes as fast as it is written, one not full yet later, so this is the earliest; the log start offset's own
movement, in segment-sized steps, made a healthy group's margin jump). Records lost: a committed offset below
the log start offset, counted once per offset, when a collection sees it (a group that falls off and resets
between two collections is not seen)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from exporter.lag.model import Snapshot, TopicPartition


@dataclass(frozen=True)
class Trend:
    consume_rate: float | None          # records/s the group's committed offsets moved
    produce_rate: float | None          # records/s the partitions' end offsets moved
    lag: int                            # the group's lag on the topic now
    margin_records: int | None          # records retention deletes before the oldest unread one (lagging only)
    margin_seconds: float | None        # seconds until it may delete the oldest unread record (lagging only)

    @property
    def lag_trend(self) -> float | None:
        """records/s the lag grows (negative: shrinks)."""
        if self.consume_rate is None or self.produce_rate is None:
            return None
        return self.produce_rate - self.consume_rate

    @property
    def catch_up_seconds(self) -> float | None:
        """Seconds until the lag is 0 at the current rates; None while the group does not gain on the topic."""
        if self.lag == 0:
            return 0.0
        trend = self.lag_trend
        return None if trend is None or trend >= 0 else self.lag / -trend

    def series(self) -> dict[str, float | None]:
        """The values by the series that serves each (exporter/lag/families.py; the Zabbix items name them too)."""
        return {"kafka_consumergroup_consume_rate": self.consume_rate,
                "kafka_consumergroup_produce_rate": self.produce_rate,
                "kafka_consumergroup_lag_trend": self.lag_trend,
                "kafka_consumergroup_catch_up_seconds": self.catch_up_seconds,
                "kafka_consumergroup_retention_margin_records": self.margin_records,
                "kafka_consumergroup_retention_margin_seconds": self.margin_seconds}


@dataclass
class _Sample:
    taken_at: float
    partitions: int                     # a signature of the partitions summed: a change restarts the window
    committed: int
    ends: int


@dataclass
class Trends:
    by_group_topic: dict[tuple[str, str], Trend] = field(default_factory=dict)
    lost: dict[tuple[str, str], int] = field(default_factory=dict)        # records lost to retention, ever


class TrendTracker:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._history: dict[tuple[str, str], deque[_Sample]] = {}
        self._lost: dict[tuple[str, str], int] = {}
        self._counted: dict[tuple[str, TopicPartition], int] = {}      # lost records counted up to this offset

    def update(self, snap: Snapshot) -> Trends:
        out = Trends()
        seen: set[tuple[str, str]] = set()
        for gid, group in snap.groups.items():
            rows: dict[str, list[tuple[int, int, int, int, int | None]]] = {}
            for tp, committed in group.committed.items():
                end, start = snap.ends.get(tp), snap.starts.get(tp)
                if end is None or start is None:
                    continue
                rows.setdefault(tp[0], []).append((tp[1], committed, end, start, snap.lag(gid, tp)))
                self._count_lost(gid, tp, committed, start)
            for topic, parts in rows.items():
                key = (gid, topic)
                seen.add(key)
                sample = _Sample(snap.taken_at, hash(tuple(sorted(p for p, *_ in parts))),
                                 sum(c for _, c, _, _, _ in parts), sum(e for _, _, e, _, _ in parts))
                history = self._history.setdefault(key, deque())
                if history and history[-1].partitions != sample.partitions:
                    history.clear()
                history.append(sample)
                # the newest sample at or before the window's start stays: the rates span the whole window
                while len(history) > 1 and history[1].taken_at <= snap.taken_at - self.window_s:
                    history.popleft()
                first = history[0]
                span = sample.taken_at - first.taken_at
                consume = (sample.committed - first.committed) / span if span > 0 else None
                produce = (sample.ends - first.ends) / span if span > 0 else None
                lag = sum(lag for *_, lag in parts if lag is not None)
                records, seconds = self._margin(gid, topic, parts, snap, consume, produce)
                out.by_group_topic[key] = Trend(consume, produce, lag, records, seconds)
                # every group and topic has the counter, at 0 before any loss: a first loss is an increase
                out.lost[key] = self._lost.get(key, 0)
        for gone in set(self._history) - seen:
            if gone[0] not in snap.unread_groups:           # unread is not gone
                del self._history[gone]
                self._lost.pop(gone, None)
        for gid, tp in [k for k in self._counted if k[0] not in snap.groups and k[0] not in snap.unread_groups]:
            del self._counted[(gid, tp)]
        return out

    def _count_lost(self, gid: str, tp: TopicPartition, committed: int, start: int) -> None:
        if committed >= start:
            return
        counted = max(committed, self._counted.get((gid, tp), committed))
        if start > counted:
            key = (gid, tp[0])
            self._lost[key] = self._lost.get(key, 0) + start - counted
            self._counted[(gid, tp)] = start

    def _margin(self, gid: str, topic: str, parts: list[tuple[int, int, int, int, int | None]], snap: Snapshot,
                consume: float | None, produce: float | None) -> tuple[int | None, float | None]:
        """The closest of the group's lagging partitions of the topic: (records, seconds) before retention
        reaches its oldest unread record; (None, None) when none lags."""
        lagging = [(p, c, s) for p, c, _, s, lag in parts if lag]
        if not lagging:
            return None, None
        records = min(max(0, c - s) for _, c, s in lagging)
        retention_ms, retention_bytes = snap.retention.get(topic, (-1, -1))
        bounds = []
        if retention_ms >= 0:
            for p, _, _ in lagging:
                written = snap.commit_times.get((gid, (topic, p)))
                if written is not None:
                    bounds.append(written + retention_ms / 1000.0 - snap.taken_at)
        if retention_bytes >= 0 and produce is not None and consume is not None:
            # per partition, as if the group's partitions of the topic moved alike
            gaining = (produce - consume) / len(parts)
            if gaining > 0:
                bounds.append(records / gaining)
        if records == 0:
            bounds.append(0.0)
        return records, max(0.0, min(bounds)) if bounds else None
