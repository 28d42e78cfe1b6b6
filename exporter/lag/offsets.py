"""The partitions' end offsets (high watermarks) and log start offsets, asked of their leaders: one ListOffsets
per leader and kind, with all of its partitions. confluent-kafka makes a future per partition and per kind:
at 50,000 partitions that was 2.8-4.4 s of this process's CPU in calls of 1,000 partitions, and 20 s in one
call (its cost grows with the square of the partitions); this reads them in about 0.5 s
(benchmarks/lag_collection.py). A partition without a leader, or whose leader does not answer or answers
with an error, is unread: its lag is not reported."""
from __future__ import annotations

from kio.schema.list_offsets.v8.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32, i64

from exporter.lag.connection import Connections, KafkaProtocolError, error_name
from exporter.lag.model import Snapshot, TopicPartition

LATEST, EARLIEST = -1, -2       # ListOffsets' timestamps for the high watermark and the log start offset
READ_UNCOMMITTED = 0            # the high watermark, as kafka_exporter and kafka-consumer-groups.sh report it


def read_offsets(connections: Connections, snap: Snapshot) -> None:
    """snap.ends and snap.starts of the partitions in snap.layouts; snap.unread and one error per cause for the
    others."""
    causes: dict[str, int] = {}
    by_leader, leaderless = snap.by_leader(snap.layouts)
    unread: list[tuple[TopicPartition, str]] = [(tp, "no leader") for tp in leaderless]
    for leader, topics in sorted(by_leader.items()):
        address = snap.address(leader)
        for timestamp, into in ((LATEST, snap.ends), (EARLIEST, snap.starts)):
            request = ListOffsetsRequest(replica_id=BrokerId(-1), isolation_level=i8(READ_UNCOMMITTED), topics=tuple(
                ListOffsetsTopic(name=TopicName(topic), partitions=tuple(
                    ListOffsetsPartition(partition_index=i32(p), current_leader_epoch=i32(-1), timestamp=i64(timestamp))
                    for p in ps)) for topic, ps in topics.items()))
            try:
                answer = connections.to(address).call(request)
            except KafkaProtocolError as e:
                connections.drop(address)
                unread += [((topic, p), f"broker {leader}: {e}") for topic, ps in topics.items() for p in ps]
                break
            for t in answer.topics:
                for r in t.partitions:
                    if r.error_code != 0:
                        unread.append(((str(t.name), int(r.partition_index)), error_name(r.error_code)))
                    else:
                        into[(str(t.name), int(r.partition_index))] = int(r.offset)
    for tp, cause in unread:
        if tp not in snap.unread:
            snap.unread.add(tp)
            causes[cause] = causes.get(cause, 0) + 1
        snap.ends.pop(tp, None)
        snap.starts.pop(tp, None)
    for cause, n in sorted(causes.items()):
        snap.errors.append(f"partition offsets: {n} unread ({cause})")
