"""One replica of a partition on one broker: its log, and when leading, the ISR and high watermark.

Leader rules as in kafka.cluster.Partition: a follower is caught up when it fetched up to the
leader's log end offset (or up to the end offset the leader had at its previous fetch); one
not caught up for replica.lag.time.max.ms leaves the ISR; one that reaches the high watermark
rejoins; the high watermark is the smallest log end offset in the ISR; acks=all is refused
when the ISR is smaller than min.insync.replicas.
"""
from __future__ import annotations

from dataclasses import dataclass

from broker.log import Batch, Log
from broker.structs import TopicPartition


@dataclass(slots=True)
class FollowerState:
    leo: int = -1
    last_caught_up_ms: float = 0.0
    last_fetch_leader_leo: int = 0
    last_fetch_ms: float = 0.0


class Partition:
    def __init__(self, tp: TopicPartition, log: Log, broker_id: int, high_watermark: int) -> None:
        self.tp = tp
        self.log = log
        self.broker_id = broker_id
        self.high_watermark = min(high_watermark, log.end_offset)
        self.leader = -1
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.min_isr = 1
        self.lag_max_ms = 30_000.0
        self.followers: dict[int, FollowerState] = {}
        self.pending_isr: tuple[int, ...] | None = None   # an AlterPartition in flight
        self.epoch_start_offset = 0
        # producer id -> (last sequence appended, offset after that batch): a retried batch is
        # recognised, answered with its first append's place, and waits for that to replicate
        self.producers: dict[int, tuple[int, int]] = {}
        self._rebuild_producers()

    @property
    def is_leader(self) -> bool:
        return self.leader == self.broker_id

    @property
    def effective_min_isr(self) -> int:
        return min(self.min_isr, len(self.replicas))

    # -- role changes (from the metadata log) ---------------------------------------------------------
    def update(self, replicas: tuple[int, ...], isr: tuple[int, ...], leader: int, leader_epoch: int,
               partition_epoch: int, min_isr: int, lag_max_ms: float, now_ms: float) -> str:
        """Apply the partition's metadata; returns 'leader', 'follower' or '' when the role is unchanged."""
        new_leadership = leader_epoch != self.leader_epoch or leader != self.leader
        self.replicas, self.isr, self.min_isr, self.lag_max_ms = replicas, isr, min_isr, lag_max_ms
        if partition_epoch != self.partition_epoch:
            self.pending_isr = None
        self.partition_epoch = partition_epoch
        if not new_leadership:
            return ""
        self.leader, self.leader_epoch = leader, leader_epoch
        if leader == self.broker_id:
            self.epoch_start_offset = self.log.end_offset
            self.followers = {r: FollowerState(last_caught_up_ms=now_ms if r in isr else 0.0)
                              for r in replicas if r != self.broker_id}
            return "leader"
        self.followers = {}
        return "follower"

    # -- leader: appends ---------------------------------------------------------------------------------
    def check_produce(self, acks: int) -> str:
        if not self.is_leader:
            return "NOT_LEADER_OR_FOLLOWER"
        if acks == -1 and len(self.isr) < self.effective_min_isr:
            return "NOT_ENOUGH_REPLICAS"
        return "NONE"

    def duplicate_of(self, batch: Batch) -> int | None:
        """For a batch already appended (same producer, sequence not beyond the last one), the
        offset after its first append; None for a new batch."""
        if batch.producer_id < 0:
            return None
        last_seq, end = self.producers.get(batch.producer_id, (-1, 0))
        return end if batch.base_sequence + batch.count - 1 <= last_seq else None

    def append_as_leader(self, count: int, size: int, now_ms: float, producer_id: int, base_sequence: int,
                         records: tuple | None) -> Batch:
        batch = Batch(self.log.end_offset, count, self.leader_epoch, size, now_ms, producer_id, base_sequence, records)
        self._append(batch)
        return batch

    def _append(self, batch: Batch) -> None:
        self.log.append(batch)
        if batch.producer_id >= 0:
            self.producers[batch.producer_id] = (batch.base_sequence + batch.count - 1, batch.next_offset)

    def _rebuild_producers(self) -> None:
        self.producers = {}
        for b in self.log.batches():
            if b.producer_id >= 0:
                self.producers[b.producer_id] = (b.base_sequence + b.count - 1, b.next_offset)

    # -- leader: follower fetches, HW, ISR --------------------------------------------------------------------
    def diverging(self, fetch_offset: int, last_fetched_epoch: int) -> tuple[int, int] | None:
        if fetch_offset == 0 or last_fetched_epoch < 0:
            return None
        epoch, end = self.log.end_offset_for_epoch(last_fetched_epoch)
        if epoch != last_fetched_epoch or end < fetch_offset:
            return epoch, max(end, 0)
        return None

    def update_follower(self, replica: int, fetch_offset: int, now_ms: float) -> tuple[bool, tuple[int, ...] | None]:
        """Record a follower fetch; returns (high watermark moved, ISR to propose or None)."""
        state = self.followers.get(replica)
        if state is None:
            return False, None
        leo = self.log.end_offset
        if fetch_offset >= leo:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.last_fetch_leader_leo:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        progressed = fetch_offset != state.leo
        state.leo = fetch_offset
        state.last_fetch_leader_leo = leo
        state.last_fetch_ms = now_ms
        propose = None
        if (replica not in self.isr and self.pending_isr is None and fetch_offset >= self.high_watermark
                and fetch_offset >= self.epoch_start_offset):
            propose = tuple(sorted(self.isr + (replica,)))
        # as Partition.updateFollowerFetchState: the HW can only move when this follower moved
        return (progressed and self.maybe_advance_hw(now_ms)), propose

    def _maximal_isr(self) -> tuple[int, ...]:
        return tuple(set(self.isr) | set(self.pending_isr or ()))

    def maybe_advance_hw(self, now_ms: float) -> bool:
        """Partition.maybeIncrementLeaderHW: never while under min ISR; otherwise the smallest log
        end offset of the maximal ISR and of followers caught up within replica.lag.time.max.ms."""
        if not self.is_leader or len(self.isr) < self.effective_min_isr:
            return False
        leo = self.log.end_offset
        new_hw = leo
        maximal = self._maximal_isr()
        for r, f in self.followers.items():
            caught_up = f.leo == leo or now_ms - f.last_caught_up_ms <= self.lag_max_ms
            if f.leo < new_hw and (r in maximal or caught_up):
                new_hw = f.leo
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            return True
        return False

    def out_of_sync(self, now_ms: float, lag_max_ms: float) -> tuple[int, ...] | None:
        """The ISR to propose when followers fell behind, else None."""
        if not self.is_leader or self.pending_isr is not None:
            return None
        late = {r for r in self.isr if r != self.broker_id and r in self.followers
                and now_ms - self.followers[r].last_caught_up_ms > lag_max_ms}
        if not late:
            return None
        return tuple(r for r in self.isr if r not in late)

    # -- follower ---------------------------------------------------------------------------------------------
    def append_as_follower(self, batches: tuple[Batch, ...], leader_hw: int) -> int:
        appended = 0
        for b in batches:
            if b.base_offset == self.log.end_offset:
                self._append(b)
                appended += b.count
        self.high_watermark = max(self.high_watermark, min(leader_hw, self.log.end_offset))
        return appended

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)
        self.high_watermark = min(self.high_watermark, self.log.end_offset)
        self._rebuild_producers()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset)
        self.high_watermark = offset
        self.producers = {}
