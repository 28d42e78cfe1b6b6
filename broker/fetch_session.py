"""A broker's incremental fetch session cache (KIP-227), as Kafka 4.x keeps it: followers open a session with
their first (full) fetch and fetch within it afterwards; the leader keeps it in memory, in one of eight
shards of max.incremental.fetch.session.cache.slots / 8 entries, until it is evicted or the leader
restarts. Nothing expires a session by time: a follower that died or stopped fetching from this leader
leaves its session behind, evictable once unused for two minutes. A full cache evicts, for a new session,
a stale one first; else a follower's new session evicts the smallest consumer session; else a consumer's
new session evicts a smaller consumer session; else the fetch goes on without a session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.mbeans.yammer import INT

if TYPE_CHECKING:
    from broker.broker import BrokerNode

SHARDS = 8                              # FetchSessionCache's shard count
EVICTION_MS = 120_000.0                 # KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS
INITIAL_EPOCH, FINAL_EPOCH = 0, -1      # the epochs of a request that opens a session and of one without


@dataclass
class Session:
    id: int
    privileged: bool            # a follower's
    partitions: int             # its cached partitions
    last_used_ms: float
    epoch: int = 1              # the epoch its next request must carry

    def key(self) -> tuple[bool, int, int]:
        """EvictableKey's order: consumer sessions before followers', smaller before larger."""
        return self.privileged, self.partitions, self.id


class FetchSessionCache:
    def __init__(self, node: BrokerNode) -> None:
        self.node = node
        self.shards: list[dict[int, Session]] = [{} for _ in range(SHARDS)]
        self.slots_per_shard = node.cfg["max.incremental.fetch.session.cache.slots"] // SHARDS
        self._next_id = 0
        self._evictions = node.mbeans.meter("kafka.server", "FetchSessionCache", "IncrementalFetchSessionEvictionsPerSec",
                                            "evictions")

    def register_metrics(self) -> None:
        m = self.node.mbeans
        m.gauge("kafka.server", "FetchSessionCache", "NumIncrementalFetchSessions",
                lambda: sum(len(s) for s in self.shards), java_type=INT)
        m.gauge("kafka.server", "FetchSessionCache", "NumIncrementalFetchPartitionsCached",
                lambda: sum(x.partitions for s in self.shards for x in s.values()), java_type=INT)

    def fetch(self, session_id: int, epoch: int, partitions: int, privileged: bool) -> tuple[str, int]:
        """(error, the session id to answer) for a fetch request's session fields."""
        now = self.node.now()
        shard = self.shards[session_id % SHARDS]
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            # a full fetch: the session it names is closed; the initial epoch opens a new one
            shard.pop(session_id, None)
            return "NONE", self._create(privileged, partitions, now) if epoch == INITIAL_EPOCH else 0
        session = shard.get(session_id)
        if session is None:
            return "FETCH_SESSION_ID_NOT_FOUND", 0
        if epoch != session.epoch:
            return "INVALID_FETCH_SESSION_EPOCH", 0
        session.epoch += 1
        session.partitions = partitions
        session.last_used_ms = now
        return "NONE", session_id

    def _create(self, privileged: bool, partitions: int, now: float) -> int:
        index = self.node.rng.randrange(SHARDS)
        shard = self.shards[index]
        if len(shard) >= self.slots_per_shard and not self._evict(shard, privileged, partitions, now):
            return 0
        self._next_id += 1
        session_id = self._next_id * SHARDS + index          # the id names its shard
        shard[session_id] = Session(session_id, privileged, partitions, now)
        return session_id

    def _evict(self, shard: dict[int, Session], privileged: bool, partitions: int, now: float) -> bool:
        stale = [s for s in shard.values() if s.last_used_ms + EVICTION_MS < now]
        victim: Session | None
        if stale:
            victim = min(stale, key=lambda s: s.last_used_ms)
        else:
            wanted = (privileged, partitions, 0)     # Kafka's key of the new session: an equal one does not evict
            candidates = [s for s in shard.values() if not s.privileged] if privileged else list(shard.values())
            victim = min(candidates, key=Session.key, default=None)
            if victim is None or (not privileged and victim.key() >= wanted):
                return False
        del shard[victim.id]
        self._evictions.mark(now)
        return True
