"""A share group's view of one partition (KIP-932), kept by the partition's leader as Kafka's SharePartition
does: the share-partition start offset (SPSO, the first record not yet delivered for good), the end offset
(SPEO, the next record never acquired), and between them the in-flight records, each AVAILABLE, ACQUIRED by a
member under a time-limited lock, ACKNOWLEDGED or ARCHIVED, with its delivery count.

A fetch acquires available records (released or timed out first, then new ones up to the high watermark) while
fewer than group.share.partition.max.record.locks are in flight; an acknowledgement accepts, releases or rejects
acquired records; a lock that runs out (group.share.record.lock.duration.ms) makes the record available again.
A record delivered group.share.delivery.count.limit times and released again is archived (never delivered
again). The start offset moves past every record delivered for good.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

AVAILABLE, ACQUIRED, ACKNOWLEDGED, ARCHIVED = "AVAILABLE", "ACQUIRED", "ACKNOWLEDGED", "ARCHIVED"
# the acknowledgement types of ShareFetch and ShareAcknowledge (AcknowledgeType in Kafka's clients)
GAP, ACCEPT, RELEASE, REJECT, RENEW = 0, 1, 2, 3, 4


@dataclass
class InFlight:
    state: str = AVAILABLE
    delivery_count: int = 0
    member_id: str | None = None
    lock_expiry_ms: float = 0.0


@dataclass
class SharePartition:
    """One (group, topic-partition) on its leader; times are the cluster clock's milliseconds."""

    start_offset: int
    delivery_limit: int = 5
    max_in_flight: int = 2000
    lock_ms: float = 30_000.0
    state_epoch: int = 0
    in_flight: dict[int, InFlight] = field(default_factory=dict)
    on_lock_timeout: Callable[[int], None] | None = None      # told how many locks ran out, whoever noticed

    def __post_init__(self) -> None:
        self.end_offset = self.start_offset

    # -- fetching ---------------------------------------------------------------------------------------------
    def acquire(self, member_id: str, high_watermark: int, max_records: int, now_ms: float,
                log_start: int = 0) -> list[tuple[int, int, int]]:
        """Acquires up to max_records for member_id: available in-flight records first, then records past the end
        offset below the high watermark while fewer than max_in_flight are in flight. Returns (first, last,
        delivery count) ranges, each of records delivered the same number of times."""
        self.expire_locks(now_ms)
        if self.start_offset < log_start:          # retention deleted records not yet delivered for good
            self._move_start(log_start)
        taken: list[int] = []
        for offset in sorted(o for o, r in self.in_flight.items() if r.state == AVAILABLE):
            if len(taken) >= max_records:
                break
            taken.append(offset)
        while len(taken) < max_records and self.end_offset < high_watermark and len(self.in_flight) < self.max_in_flight:
            self.in_flight[self.end_offset] = InFlight()
            taken.append(self.end_offset)
            self.end_offset += 1
        ranges: list[tuple[int, int, int]] = []
        for offset in sorted(taken):
            record = self.in_flight[offset]
            record.state, record.member_id = ACQUIRED, member_id
            record.delivery_count += 1
            record.lock_expiry_ms = now_ms + self.lock_ms
            if ranges and ranges[-1][1] == offset - 1 and ranges[-1][2] == record.delivery_count:
                ranges[-1] = (ranges[-1][0], offset, record.delivery_count)
            else:
                ranges.append((offset, offset, record.delivery_count))
        return ranges

    def expire_locks(self, now_ms: float) -> int:
        """Records whose acquisition lock ran out: available again, or archived at the delivery limit."""
        expired = [o for o, r in self.in_flight.items() if r.state == ACQUIRED and r.lock_expiry_ms <= now_ms]
        for offset in expired:
            self._release(offset)
        self._advance()
        if expired and self.on_lock_timeout is not None:
            self.on_lock_timeout(len(expired))
        return len(expired)

    # -- acknowledging ----------------------------------------------------------------------------------------
    def acknowledge(self, member_id: str, first: int, last: int, ack_type: int, now_ms: float) -> str:
        """One acknowledgement batch of one type; an error name (NONE when every record of it was acquired by
        member_id and still is)."""
        offsets = range(first, last + 1)
        if first > last or any(self.in_flight.get(o) is None or self.in_flight[o].state != ACQUIRED
                               or self.in_flight[o].member_id != member_id for o in offsets if ack_type != GAP):
            return "INVALID_RECORD_STATE"
        for offset in offsets:
            record = self.in_flight.get(offset)
            if record is None:
                continue
            if ack_type == RENEW:
                record.lock_expiry_ms = now_ms + self.lock_ms
            elif ack_type == RELEASE:
                self._release(offset)
            else:
                record.state = ACKNOWLEDGED if ack_type == ACCEPT else ARCHIVED
                record.member_id = None
        self._advance()
        return "NONE"

    def release_member(self, member_id: str) -> int:
        """A member that left or whose share session closed: its acquired records are released."""
        held = [o for o, r in self.in_flight.items() if r.state == ACQUIRED and r.member_id == member_id]
        for offset in held:
            self._release(offset)
        self._advance()
        return len(held)

    def restore(self, batches: tuple[tuple[int, int, str, int], ...]) -> None:
        """The in-flight records as the share coordinator had them: (first, last, state, delivery count)."""
        for first, last, state, delivery_count in batches:
            for offset in range(max(first, self.start_offset), last + 1):
                self.in_flight[offset] = InFlight(state, delivery_count)
                self.end_offset = max(self.end_offset, offset + 1)
        for offset in range(self.start_offset, self.end_offset):
            self.in_flight.setdefault(offset, InFlight())
        self._advance()

    # -- what the coordinator and the metrics read ------------------------------------------------------------
    def lag(self, high_watermark: int) -> int:
        """Records at or past the start offset and below the high watermark not yet delivered for good."""
        done = sum(1 for o, r in self.in_flight.items() if r.state in (ACKNOWLEDGED, ARCHIVED) and o < high_watermark)
        return max(0, high_watermark - self.start_offset - done)

    def _release(self, offset: int) -> None:
        record = self.in_flight[offset]
        record.state = ARCHIVED if record.delivery_count >= self.delivery_limit else AVAILABLE
        record.member_id = None

    def _advance(self) -> None:
        while self.start_offset < self.end_offset and self.in_flight[self.start_offset].state in (ACKNOWLEDGED, ARCHIVED):
            del self.in_flight[self.start_offset]
            self.start_offset += 1

    def _move_start(self, offset: int) -> None:
        for o in [o for o in self.in_flight if o < offset]:
            del self.in_flight[o]
        self.start_offset = offset
        self.end_offset = max(self.end_offset, offset)
