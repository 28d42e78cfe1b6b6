"""Lag in seconds: the timestamp of the record at each lagging group's committed offset, fetched from the
partitions' leaders, one Fetch per leader with every partition to read (outside any group, read
uncommitted, as a consumer would). librdkafka's consumer with 50,000 partitions assigned at once read
38,000 of them in its 30 s and took 35-107 s (benchmarks/lag_collection.py); here the cost is the
answers' bytes: each partition's batch that holds the offset.

A partition several groups lag on at different offsets is read once per offset, in rounds. A partition
answered with nothing while others filled the answer is asked again; one whose batch is larger than
PARTITION_BYTES is asked again with up to MAX_PARTITION_BYTES (the broker sends a partition nothing when
its first batch does not fit). One whose leader answers with an error, or that has no record to read in
time, gets no lag in seconds in this collection, said in one error."""
from __future__ import annotations

import datetime
import time

from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32, i32Timedelta, i64

from exporter.lag.connection import Connections, KafkaProtocolError, error_name
from exporter.lag.model import Snapshot, TopicPartition
from kafka_common.record_batches import timestamp_at

PARTITION_BYTES = 65536                 # a producer's batch at its default batch.size (16 KiB) fits
MAX_PARTITION_BYTES = 8 * 1024 * 1024   # any batch a broker accepts at its default max.message.bytes (1 MiB)
FETCH_BYTES = 50 * 1024 * 1024          # fetch.max.bytes' default: what one answer holds at most


def read_commit_times(connections: Connections, snap: Snapshot, timeout_s: float) -> None:
    wanted: dict[TopicPartition, dict[int, list[str]]] = {}
    for gid in snap.groups:
        for tp, offset, lag, _ in snap.rows(gid):
            if lag:
                wanted.setdefault(tp, {}).setdefault(max(offset, snap.starts.get(tp, 0)), []).append(gid)
    if not wanted:
        return
    deadline = time.monotonic() + timeout_s
    causes: dict[str, int] = {}
    rounds = [{tp: sorted(offsets)[i] for tp, offsets in wanted.items() if i < len(offsets)}
              for i in range(max(len(o) for o in wanted.values()))]
    for positions in rounds:
        left, grown = dict(positions), set[TopicPartition]()
        while left and time.monotonic() < deadline:
            read, empty = _fetch(connections, snap, left, grown, causes)
            for tp, timestamp_ms in read.items():
                for gid in wanted[tp][left.pop(tp)]:
                    snap.commit_times[(gid, tp)] = timestamp_ms / 1000.0
            if not read and empty <= grown:
                break                   # nothing more to gain from asking again
            grown |= empty
        if left:
            causes["no record read in time"] = causes.get("no record read in time", 0) + len(left)
    for cause, n in sorted(causes.items()):
        snap.errors.append(f"lag seconds: {n} partitions unread ({cause})")


def _fetch(connections: Connections, snap: Snapshot, left: dict[TopicPartition, int], grown: set[TopicPartition],
           causes: dict[str, int]) -> tuple[dict[TopicPartition, int], set[TopicPartition]]:
    """One Fetch to each leader of the partitions left: the timestamps read, and the partitions answered with
    nothing. A partition whose leader is gone or answers with an error leaves `left` (its cause counted)."""
    by_leader, leaderless = snap.by_leader(left)
    for tp in leaderless:
        del left[tp]
        causes["no leader"] = causes.get("no leader", 0) + 1
    read: dict[TopicPartition, int] = {}
    empty: set[TopicPartition] = set()
    for leader, topics in sorted(by_leader.items()):
        address = snap.address(leader)
        request = FetchRequest(
            replica_id=BrokerId(-1), max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), max_bytes=i32(FETCH_BYTES),
            isolation_level=i8(0), session_id=i32(0), session_epoch=i32(-1), forgotten_topics_data=(), rack_id="",
            topics=tuple(FetchTopic(topic=TopicName(topic), partitions=tuple(
                FetchPartition(partition=i32(p), current_leader_epoch=i32(-1), fetch_offset=i64(left[(topic, p)]),
                               last_fetched_epoch=i32(-1), log_start_offset=i64(-1),
                               partition_max_bytes=i32(MAX_PARTITION_BYTES if (topic, p) in grown else PARTITION_BYTES))
                for p in ps)) for topic, ps in topics.items()))
        try:
            answer = connections.to(address).call(request)
            if answer.error_code != 0:
                raise KafkaProtocolError(f"{address[0]}:{address[1]}: Fetch: {error_name(answer.error_code)}")
        except KafkaProtocolError as e:
            connections.drop(address)
            for topic, ps in topics.items():
                for p in ps:
                    del left[(topic, p)]
            causes[f"broker {leader}: {e}"] = sum(len(ps) for ps in topics.values())
            continue
        for t in answer.responses:
            for r in t.partitions:
                tp = (str(t.topic), int(r.partition_index))
                if tp not in left:
                    continue
                if r.error_code != 0:
                    del left[tp]
                    cause = error_name(r.error_code)
                    causes[cause] = causes.get(cause, 0) + 1
                    continue
                timestamp = timestamp_at(bytes(r.records or b""), left[tp])
                if timestamp is None:
                    empty.add(tp)
                else:
                    read[tp] = timestamp
    return read, empty
