"""A replica's log: record batches with offsets, in segments, and the leader-epoch cache.

Used by partitions and by the KRaft metadata log alike. Segments and retention as UnifiedLog has them: an
append rolls a new segment when the active one would pass segment.bytes or its first record is older than
segment.ms (by the records' timestamps); retention deletes whole segments from the oldest, never one holding
offsets at or above the high watermark, and moves the log start offset to the first segment left.
"""
from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Batch:
    base_offset: int
    count: int
    epoch: int
    size: int
    timestamp_ms: float
    producer_id: int = -1
    base_sequence: int = -1
    records: tuple[Any, ...] | None = None   # payloads, when a client gave them individually

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count


@dataclass(slots=True)
class Segment:
    base_offset: int
    size: int = 0
    first_timestamp: float = -1.0     # its first batch's: segment.ms counts from it
    max_timestamp: float = -1.0       # its largest record timestamp: retention.ms counts from it


PAGE_CACHE_BYTES = 1 << 30
"""How much of what a machine wrote last its page cache still holds: a fetch of older data reads the disk."""


class DiskIo:
    """What /proc/self/io says of a Kafka process (Kafka's linux-disk-* gauges). read_bytes and write_bytes:
    bytes the storage layer read and wrote for it; its logs' appends write, and a fetch reads the disk only
    for data no longer in the page cache (written more than PAGE_CACHE_BYTES of the machine's writes ago).
    rchar and wchar: bytes through read- and write-like system calls, syscr and syscw their counts; a
    request's bytes are read from its socket, a log append is one write, and a fetch response goes out
    with sendfile, which Linux counts as a read and a write. cancelled_write_bytes: bytes written to a
    log and then truncated away (a follower's divergent tail). The requests' own headers are left out.
    The machine's write count survives a restart, as the page cache does; the process's start at 0."""

    def __init__(self) -> None:
        self.machine_written = 0
        self.process_started()

    def process_started(self) -> None:
        self.read_bytes = self.write_bytes = self.cancelled_write_bytes = 0
        self.rchar = self.wchar = self.syscr = self.syscw = 0

    def wrote(self, n: int) -> None:
        self.machine_written += n
        self.write_bytes += n
        self.wchar += n
        self.syscw += 1

    def received(self, n: int) -> None:
        """A request or response read from a socket."""
        self.rchar += n
        self.syscr += 1

    def sent_file(self, n: int) -> None:
        """Records sent from a log with sendfile."""
        self.rchar += n
        self.wchar += n
        self.syscr += 1
        self.syscw += 1

    def gauges(self, extended: bool) -> list[tuple[str, Any]]:
        """The linux-disk gauges Kafka registers: read and write bytes, and the other fields on lines that have them."""
        out: list[tuple[str, Any]] = [("linux-disk-read-bytes", lambda: self.read_bytes),
                                      ("linux-disk-write-bytes", lambda: self.write_bytes)]
        if extended:
            out += [("linux-disk-rchar", lambda: self.rchar), ("linux-disk-wchar", lambda: self.wchar),
                    ("linux-disk-syscr", lambda: self.syscr), ("linux-disk-syscw", lambda: self.syscw),
                    ("linux-disk-cancelled-write-bytes", lambda: self.cancelled_write_bytes)]
        return out


class Log:
    """Batches stored column-wise (arrays of ints), so a long run keeps millions of batches
    without millions of Python objects for the garbage collector to walk; Batch objects are
    built when read."""

    def __init__(self, segment_bytes: int = 1 << 30, io: DiskIo | None = None, segment_ms: float = 604_800_000.0) -> None:
        self._bases = array("q")
        self._counts = array("q")
        self._epochs = array("q")
        self._sizes = array("q")
        self._pids = array("q")
        self._seqs = array("q")
        self._times = array("d")
        self._written_at = array("q")       # the machine's bytes written when the batch was (page cache age)
        self.io = io
        self._payloads: dict[int, tuple[Any, ...]] = {}   # base offset -> records, for explicit records
        self.end_offset = 0       # LEO
        self.start_offset = 0
        self.size = 0
        self.segment_bytes = segment_bytes
        self.segment_ms = segment_ms
        self.segments = [Segment(0)]
        self.epochs: list[tuple[int, int]] = []   # (epoch, start offset), ascending

    def __len__(self) -> int:
        return self.end_offset

    @property
    def last_epoch(self) -> int:
        return self.epochs[-1][0] if self.epochs else -1

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    @property
    def batch_count(self) -> int:
        return len(self._bases)

    def _batch(self, i: int) -> Batch:
        base = self._bases[i]
        return Batch(base, self._counts[i], self._epochs[i], self._sizes[i], self._times[i], self._pids[i],
                     self._seqs[i], self._payloads.get(base))

    def batches(self) -> Iterator[Batch]:
        return (self._batch(i) for i in range(len(self._bases)))

    def append(self, batch: Batch) -> None:
        if batch.base_offset != self.end_offset:
            raise ValueError(f"batch at offset {batch.base_offset} does not follow log end offset {self.end_offset}")
        if not self.epochs or batch.epoch > self.epochs[-1][0]:
            self.epochs.append((batch.epoch, batch.base_offset))
        elif batch.epoch < self.epochs[-1][0]:
            raise ValueError(f"batch epoch {batch.epoch} is below the log's latest epoch {self.epochs[-1][0]}")
        active = self.segments[-1]
        if active.size and (active.size > self.segment_bytes - batch.size
                            or batch.timestamp_ms - active.first_timestamp > self.segment_ms):
            active = Segment(batch.base_offset)
            self.segments.append(active)
        if not active.size:
            active.first_timestamp = batch.timestamp_ms
        active.size += batch.size
        active.max_timestamp = max(active.max_timestamp, batch.timestamp_ms)
        self._bases.append(batch.base_offset)
        self._counts.append(batch.count)
        self._epochs.append(batch.epoch)
        self._sizes.append(batch.size)
        self._pids.append(batch.producer_id)
        self._seqs.append(batch.base_sequence)
        self._times.append(batch.timestamp_ms)
        if self.io is not None:
            self.io.wrote(batch.size)
            self._written_at.append(self.io.machine_written)
        else:
            self._written_at.append(0)
        if batch.records is not None:
            self._payloads[batch.base_offset] = batch.records
        self.end_offset = batch.next_offset
        self.size += batch.size

    def epoch_at(self, offset: int) -> int:
        """Epoch of the batch holding offset, or -1 when the offset is not in the log."""
        if offset < self.start_offset or offset >= self.end_offset:
            return -1
        return self._epochs[bisect.bisect_right(self._bases, offset) - 1]

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """LeaderEpochFileCache.endOffsetFor: (largest epoch <= epoch, end offset of that epoch)."""
        if not self.epochs or epoch < self.epochs[0][0]:
            return -1, -1
        if epoch >= self.epochs[-1][0]:
            return self.epochs[-1][0], self.end_offset
        i = bisect.bisect_right([e for e, _ in self.epochs], epoch)
        return self.epochs[i - 1][0], self.epochs[i][1]

    def read(self, from_offset: int, max_bytes: int, upto: int | None = None) -> list[Batch]:
        """Batches from the one holding from_offset, up to max_bytes (at least one) and below upto."""
        limit = self.end_offset if upto is None else min(upto, self.end_offset)
        if from_offset >= limit:
            return []
        i = max(0, bisect.bisect_right(self._bases, from_offset) - 1)
        out: list[Batch] = []
        total = 0
        n = len(self._bases)
        while i < n:
            size = self._sizes[i]
            if self._bases[i] + self._counts[i] > limit or (out and total + size > max_bytes):
                break
            out.append(self._batch(i))
            total += size
            i += 1
        return out

    def fetch(self, from_offset: int, max_bytes: int, upto: int | None = None) -> list[Batch]:
        """read() for a fetch request: batches no longer in the page cache are read from disk."""
        batches = self.read(from_offset, max_bytes, upto)
        if batches and self.io is not None:
            i = bisect.bisect_right(self._bases, batches[0].base_offset) - 1
            oldest_cached = self.io.machine_written - PAGE_CACHE_BYTES
            for j in range(i, i + len(batches)):
                if self._written_at[j] <= oldest_cached:
                    self.io.read_bytes += self._sizes[j]
        return batches

    def offset_for_timestamp(self, timestamp: float | None, upto: int) -> tuple[int, float] | None:
        """(offset, timestamp) of the first record below upto written at or after timestamp, as the
        time index finds it; with None, the first record with the largest timestamp. None: no such record."""
        best: tuple[int, float] | None = None
        for i in range(max(0, bisect.bisect_right(self._bases, self.start_offset) - 1), len(self._bases)):
            base = self._bases[i]
            if base >= upto:
                break
            payloads = self._payloads.get(base)
            # a batch without payloads has one timestamp: its first readable record stands for all
            times = ((base + j, r.timestamp_ms) for j, r in enumerate(payloads)) if payloads \
                else ((max(base, self.start_offset), self._times[i]),)
            for offset, t in times:
                if offset < self.start_offset or offset >= upto:
                    continue
                if timestamp is not None and t >= timestamp:
                    return offset, t
                if timestamp is None and (best is None or t > best[1]):
                    best = (offset, t)
        return best

    def truncate_to(self, offset: int) -> None:
        """Drop everything at and above offset; a batch holding offset goes whole (it is re-fetched)."""
        if offset >= self.end_offset:
            return
        if offset < self.start_offset:
            self.truncate_fully_and_start_at(offset)
            return
        i = bisect.bisect_left(self._bases, offset)
        if i > 0 and self._bases[i - 1] + self._counts[i - 1] > offset:
            i -= 1
        offset = self._bases[i] if i < len(self._bases) else offset
        dropped = sum(self._sizes[i:])
        self.size -= dropped
        if self.io is not None:
            self.io.cancelled_write_bytes += dropped
        for base in self._bases[i:]:
            self._payloads.pop(base, None)
        for column in (self._bases, self._counts, self._epochs, self._sizes, self._pids, self._seqs, self._times,
                       self._written_at):
            del column[i:]
        self.end_offset = offset
        while self.epochs and self.epochs[-1][1] >= offset:
            self.epochs.pop()
        # segments above the new end go; the one holding it keeps what is left of it
        while len(self.segments) > 1 and self.segments[-1].base_offset > offset:
            self.segments.pop()
        last = self.segments[-1]
        last.size, last.first_timestamp, last.max_timestamp = 0, -1.0, -1.0
        for j in range(bisect.bisect_left(self._bases, last.base_offset), len(self._bases)):
            if not last.size:
                last.first_timestamp = self._times[j]
            last.size += self._sizes[j]
            last.max_timestamp = max(last.max_timestamp, self._times[j])

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Everything goes and the log restarts empty at offset (a follower whose end is below its leader's
        log start offset)."""
        for column in (self._bases, self._counts, self._epochs, self._sizes, self._pids, self._seqs, self._times,
                       self._written_at):
            del column[:]
        self._payloads.clear()
        self.segments = [Segment(offset)]
        self.start_offset = self.end_offset = offset
        self.size = 0
        self.epochs = []

    # -- retention ------------------------------------------------------------------------------------------------
    def maybe_increment_start_offset(self, offset: int) -> None:
        """The log start offset moves up (the leader's, on a follower): the segments wholly below it go at the
        next retention check."""
        if offset > self.start_offset:
            self.start_offset = min(offset, self.end_offset)
            self._trim_epochs()

    def delete_old_segments(self, now_ms: float, retention_ms: int, retention_bytes: int, high_watermark: int) -> int:
        """UnifiedLog.deleteOldSegments for cleanup.policy=delete: the segments below the log start offset,
        then the oldest while the log is over retention.bytes by at least their size, then those whose
        newest record is older than retention.ms (-1: no limit). Returns how many segments went."""
        deleted = self._delete(lambda seg, nxt: nxt is not None and nxt.base_offset <= self.start_offset,
                               high_watermark)
        if 0 <= retention_bytes <= self.size:
            over = [self.size - retention_bytes]

            def by_size(seg: Segment, nxt: Segment | None) -> bool:
                if over[0] - seg.size < 0:
                    return False
                over[0] -= seg.size
                return True
            deleted += self._delete(by_size, high_watermark)
        if retention_ms >= 0:
            deleted += self._delete(lambda seg, nxt: now_ms - seg.max_timestamp > retention_ms, high_watermark)
        return deleted

    def _delete(self, predicate: Any, high_watermark: int) -> int:
        """The oldest segments while predicate holds, stopping at the first one reaching past the high
        watermark or an empty active segment; deleting every segment rolls a new empty one first."""
        n = 0
        for i, seg in enumerate(self.segments):
            nxt = self.segments[i + 1] if i + 1 < len(self.segments) else None
            upper = nxt.base_offset if nxt is not None else self.end_offset
            if high_watermark >= upper and predicate(seg, nxt) and not (nxt is None and seg.size == 0):
                n += 1
            else:
                break
        if not n:
            return 0
        if n == len(self.segments):
            self.segments.append(Segment(self.end_offset))
        self.size -= sum(seg.size for seg in self.segments[:n])
        del self.segments[:n]
        start = self.segments[0].base_offset
        i = bisect.bisect_left(self._bases, start)
        for base in self._bases[:i]:
            self._payloads.pop(base, None)
        for column in (self._bases, self._counts, self._epochs, self._sizes, self._pids, self._seqs, self._times,
                       self._written_at):
            del column[:i]
        if start > self.start_offset:
            self.start_offset = start
            self._trim_epochs()
        return n

    def _trim_epochs(self) -> None:
        """LeaderEpochFileCache.truncateFromStart: the epoch holding the log start offset starts there."""
        keep = bisect.bisect_right([start for _, start in self.epochs], self.start_offset) - 1
        if keep > 0:
            del self.epochs[:keep]
        if self.epochs and self.epochs[0][1] < self.start_offset:
            self.epochs[0] = (self.epochs[0][0], self.start_offset)
