"""Segments and retention in the embedded cluster, as Kafka's UnifiedLog and LogManager do them: appends roll
segments at segment.bytes and segment.ms, the retention check deletes whole segments over retention.bytes or
older than retention.ms (never past the high watermark), the log start offset moves on every replica, and a
consumer whose position was deleted resets per auto.offset.reset."""
import pytest
from conftest import make_cluster

from broker.config import KafkaConfigError
from broker.group import partition_for
from broker.log import Batch, Log
from broker.scenario import load_scenario
from broker.structs import TopicPartition

MIB = 1_048_576


def fill(log: Log, batches: int, size: int = 100_000, every_ms: float = 1_000.0, start_ms: float = 0.0) -> None:
    for i in range(batches):
        log.append(Batch(log.end_offset, 10, 0, size, start_ms + i * every_ms))


def test_appends_roll_segments_at_segment_bytes_and_segment_ms():
    log = Log(segment_bytes=MIB)
    fill(log, 25)                       # 2.5 MB in batches of 100 kB: 10 per segment
    assert [s.base_offset for s in log.segments] == [0, 100, 200]
    assert [s.size for s in log.segments] == [1_000_000, 1_000_000, 500_000]
    timed = Log(segment_bytes=MIB, segment_ms=10_000.0)
    fill(timed, 25, size=1_000)         # one batch a second: a new segment once the first record is 10 s old
    assert [s.base_offset for s in timed.segments] == [0, 110, 220]
    assert timed.num_segments == 3


def test_retention_bytes_deletes_whole_oldest_segments_up_to_the_high_watermark():
    log = Log(segment_bytes=MIB)
    fill(log, 45)                       # 4.5 MB: segments at 0, 100, 200, 300, 400
    # 2 MB kept at most: a segment goes only while the log stays at or above the limit without it
    assert log.delete_old_segments(0.0, -1, 2 * MIB, high_watermark=log.end_offset) == 2
    assert log.start_offset == 200 and log.size == 2_500_000 and log.num_segments == 3
    assert log.read(199, 10_000) and log.read(199, 10_000)[0].base_offset == 200
    # the high watermark bounds deletion: a segment reaching past it stays
    log2 = Log(segment_bytes=MIB)
    fill(log2, 45)
    assert log2.delete_old_segments(0.0, -1, 1, high_watermark=150) == 1
    assert log2.start_offset == 100


def test_retention_ms_deletes_by_the_newest_record_and_rolls_when_everything_expired():
    log = Log(segment_bytes=MIB)
    fill(log, 25)                       # records at 0..24 s
    assert log.delete_old_segments(19_500.0, 10_000, -1, log.end_offset) == 1     # only the first (newest 9 s)
    assert log.start_offset == 100
    # all expired and fully replicated: every segment goes, an empty one starts at the log end
    assert log.delete_old_segments(100_000.0, 10_000, -1, log.end_offset) == 2
    assert (log.start_offset, log.end_offset, log.size, log.num_segments) == (250, 250, 0, 1)
    assert log.delete_old_segments(200_000.0, 10_000, -1, log.end_offset) == 0   # an empty active segment stays


def test_a_moved_log_start_offset_deletes_the_segments_below_it_and_keeps_the_epochs_consistent():
    log = Log(segment_bytes=MIB)
    for i in range(25):
        log.append(Batch(log.end_offset, 10, i // 10, 100_000, float(i)))
    log.maybe_increment_start_offset(130)
    assert log.delete_old_segments(0.0, -1, -1, log.end_offset) == 1
    assert log.start_offset == 130 and log.segments[0].base_offset == 100
    assert log.epochs[0] == (1, 130) and log.epoch_at(129) == -1 and log.epoch_at(130) == 1


def test_truncation_keeps_the_segments_consistent():
    log = Log(segment_bytes=MIB)
    fill(log, 25)
    log.truncate_to(150)
    assert [s.base_offset for s in log.segments] == [0, 100] and log.segments[-1].size == 500_000
    fill(log, 6, start_ms=100_000.0)         # the sixth 100 kB batch would pass 1 MiB
    assert [s.base_offset for s in log.segments] == [0, 100, 200]
    log.truncate_fully_and_start_at(900)
    assert (log.start_offset, log.end_offset, log.num_segments, log.size) == (900, 900, 1, 0)


def test_segments_below_one_mib_are_refused_as_kafka_4_refuses_them():
    with pytest.raises(Exception, match=r"segment.bytes: value must be at least 1048576.*KIP-1030"):
        load_scenario("cluster: {brokers: 1, controllers: 1}\n"
                      "topics: [{name: t, config: {segment.bytes: 1000}}]\n", "s.yaml")
    with pytest.raises(Exception, match=r"retention.ms.*a topic's setting.*log.retention.hours"):
        load_scenario("cluster: {brokers: 1, controllers: 1}\nconfig: {retention.ms: 1000}\n", "s.yaml")
    c = make_cluster(brokers=1, controllers=1, topics=())
    with pytest.raises(KafkaConfigError, match=r"log\.segment\.bytes"):
        c.cfg.with_overrides({"log.segment.bytes": 100}, "config")


def committed(c, group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset as its coordinator (the leader of its offsets partition) holds it."""
    n = partition_for(group, c.cfg["offsets.topic.num.partitions"])
    for b in c.brokers.values():
        if b.alive and n in b.coordinator.loaded and group in b.coordinator.groups:
            return b.coordinator.groups[group].offsets.get(tp)
    return None


def retention_cluster(policy: str = "earliest"):
    """Three brokers, a topic keeping 2 MiB in 1 MiB segments per partition, checked every 10 s; 100 records/s
    of 1 kB; a group that reads along."""
    c = make_cluster(brokers=3, controllers=1, config={"log.retention.check.interval.ms": 10_000}, topics=())
    c.create_topic("events", 1, 3, 2, configs={"retention.bytes": 2 * MIB, "segment.bytes": MIB})
    assert c.run_until(lambda: c.topic_exists("events"), 10_000)
    p = c.producer("p")
    c.sched.call_every(100.0, lambda: p.send_bulk("events", {b"k": 10}, 1_000))
    consumer = c.consumer("c", "readers", ["events"], {"auto.offset.reset": policy})
    return c, consumer


def test_retention_deletes_on_every_replica_and_a_stopped_group_falls_off():
    c, consumer = retention_cluster()
    tp = TopicPartition("events", 0)
    c.run_for(20_000)
    assert consumer.consumed > 1_000
    consumer.kill()
    c.run_for(120_000)                  # 12 MB written: the oldest segments are deleted
    logs = [b.partitions[tp].log for b in c.brokers.values()]
    leader = next(b for b in c.brokers.values() if b.partitions[tp].is_leader)
    start = leader.partitions[tp].log.start_offset
    assert start > 5_000 and all(2 * MIB <= log.size < 4 * MIB for log in logs)
    assert all(log.start_offset > 0 and log.num_segments in (2, 3) for log in logs)
    beans = leader.mbeans
    assert beans.value("kafka.log:type=Log,name=LogStartOffset,topic=events,partition=0") == start
    assert beans.value("kafka.log:type=Log,name=NumLogSegments,topic=events,partition=0") == \
        leader.partitions[tp].log.num_segments
    stopped_at = committed(c, "readers", tp)
    assert stopped_at is not None and stopped_at < start           # the group's next records are gone
    # the group comes back: its committed offset is out of range, it resets to the earliest kept
    back = c.consumer("c2", "readers", ["events"], {"auto.offset.reset": "earliest"})
    c.run_for(15_000)
    assert back.out_of_range_resets == 1
    assert committed(c, "readers", tp) >= start
