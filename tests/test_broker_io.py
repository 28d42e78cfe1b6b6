"""What a broker process does on its machine, as Kafka's beans say it (virtual clock): the bytes its logs write
and read from disk (linux-disk-*-bytes, from /proc/self/io on real Kafka), and its incremental fetch session
cache (FetchSessionCache), which the followers' fetches fill."""
from conftest import make_cluster

from broker.log import PAGE_CACHE_BYTES, Batch, DiskIo, Log

FSC = "kafka.server:type=FetchSessionCache,name="


def value(node, name: str) -> float:
    return node.mbeans.read(name)["Value"]


def test_log_writes_count_and_only_fetches_of_what_left_the_page_cache_read_the_disk():
    io = DiskIo()
    log = Log(io=io)
    chunk = PAGE_CACHE_BYTES // 4
    for i in range(6):
        log.append(Batch(i, 1, 0, chunk, 0.0))
    assert (io.write_bytes, io.read_bytes) == (6 * chunk, 0)
    log.fetch(5, 1 << 62)               # the newest: cached
    log.fetch(2, 1)                     # written exactly a page cache ago... still cached
    assert io.read_bytes == 0
    log.fetch(0, 2 * chunk)             # the two oldest: from disk
    assert io.read_bytes == 2 * chunk
    log.read(0, 1 << 62)                # not a fetch (the simulation's own reads)
    assert io.read_bytes == 2 * chunk
    log.truncate_to(5)                  # a divergent tail: its write cancelled
    assert io.cancelled_write_bytes == chunk and (io.wchar, io.syscw) == (6 * chunk, 6)
    io.process_started()                # a new process: its own counts, the machine's page cache kept
    assert (io.write_bytes, io.read_bytes, io.wchar, io.machine_written) == (0, 0, 0, 6 * chunk)


def test_the_44_line_has_every_proc_io_field_and_the_41_line_two():
    from broker.cluster import Cluster
    for line, names in (("4.1", {"read-bytes", "write-bytes"}),
                        ("4.4", {"read-bytes", "write-bytes", "rchar", "wchar", "syscr", "syscw", "cancelled-write-bytes"})):
        c = Cluster(brokers=1, controllers=1, seed=3, kafka_version=line,
                    config={"offsets.topic.replication.factor": 1})
        c.start()
        assert c.run_until(c.ready, 30_000)
        c.create_topic("t", 1, 1, 1)
        c.run_for(2_000)
        p = c.producer("p", {"acks": "all"})
        for _ in range(50):
            p.send("t", b"x" * 1000, b"k")
        c.consumer("c", "g", ["t"], {"auto.offset.reset": "earliest"})
        c.run_for(10_000)
        for node, kind in ((c.brokers["broker-1"], "KafkaServer"), (c.controllers["controller-1001"], "ControllerServer")):
            got = {str(n).split("name=linux-disk-")[1]: node.mbeans.read(n)["Value"] for n, _ in node.mbeans.items()
                   if f"type={kind}" in str(n) and "linux-disk-" in str(n)}
            assert set(got) == names, (line, kind, got)
        io = c.brokers["broker-1"].disk_io
        if line == "4.4":
            # the records came in on a socket and went out to the consumer with sendfile
            assert io.rchar >= 100_000 and io.wchar >= io.write_bytes + 50_000
            assert io.syscr > 0 and io.syscw > 0


def test_every_process_counts_the_bytes_its_logs_wrote_from_its_start():
    c = make_cluster(3, 3, topics=(("orders", 3, 3, 2),))
    p = c.producer("p", {"acks": "all"})
    for i in range(300):
        p.send("orders", b"x" * 1000, f"k{i}".encode())
    c.consumer("c", "readers", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(10_000)
    for name, b in c.brokers.items():
        partition_bytes = sum(log.size for log in b.disk.logs.values())
        written = value(b, "kafka.server:type=KafkaServer,name=linux-disk-write-bytes")
        # the partitions it holds (leader or follower: RF 3 on 3 brokers), __consumer_offsets and the metadata log
        assert written == partition_bytes + b.disk.quorum.log.size, name
        assert partition_bytes > 300_000
        assert value(b, "kafka.server:type=KafkaServer,name=linux-disk-read-bytes") == 0      # all from the page cache
    for name, ctl in c.controllers.items():
        assert value(ctl, "kafka.server:type=ControllerServer,name=linux-disk-write-bytes") == ctl.store.log.size > 0, name
        assert value(ctl, "kafka.server:type=ControllerServer,name=linux-disk-read-bytes") == 0
    c.kill("broker-2")
    c.restart("broker-2")
    c.run_for(1_000)
    restarted = value(c.brokers["broker-2"], "kafka.server:type=KafkaServer,name=linux-disk-write-bytes")
    assert restarted < sum(log.size for log in c.brokers["broker-2"].disk.logs.values())


def test_followers_keep_a_fetch_session_on_each_leader_which_outlives_them_until_evicted():
    c = make_cluster(3, 3, topics=(("orders", 3, 3, 2),))
    c.run_for(5_000)
    for name, b in c.brokers.items():
        # the other two brokers each fetch this broker's one partition (and __consumer_offsets' it leads)
        led = sum(1 for p in b.partitions.values() if p.is_leader)
        assert value(b, FSC + "NumIncrementalFetchSessions") == 2, name
        assert value(b, FSC + "NumIncrementalFetchPartitionsCached") == 2 * led, name
    c.kill("broker-3")
    c.run_for(20_000)
    # broker 3's sessions stay in the others' caches: nothing expires them
    assert [value(c.brokers[n], FSC + "NumIncrementalFetchSessions") for n in ("broker-1", "broker-2")] == [2, 2]
    c.restart("broker-3")
    c.run_for(20_000)
    # its new fetchers opened new sessions beside the old ones
    assert [value(c.brokers[n], FSC + "NumIncrementalFetchSessions") for n in ("broker-1", "broker-2")] == [3, 3]
    assert c.brokers["broker-3"].mbeans.read(FSC + "IncrementalFetchSessionEvictionsPerSec")["Count"] == 0


def test_a_full_cache_evicts_stale_sessions_then_consumers_for_followers_then_smaller_consumers():
    from broker.fetch_session import SHARDS, FetchSessionCache
    # one slot per shard; a cache of its own on a broker of a running cluster (its clock, its meter)
    c = make_cluster(3, 3, config={"max.incremental.fetch.session.cache.slots": SHARDS}, topics=())
    cache = FetchSessionCache(c.brokers["broker-1"])
    evictions = c.brokers["broker-1"].mbeans.read(FSC + "IncrementalFetchSessionEvictionsPerSec")

    def evicted() -> int:
        return c.brokers["broker-1"].mbeans.read(FSC + "IncrementalFetchSessionEvictionsPerSec")["Count"] - evictions["Count"]

    def sessions() -> dict:
        return {s.id: s for shard in cache.shards for s in shard.values()}

    _, follower = cache.fetch(0, 0, 3, True)
    assert follower
    while len(sessions()) < SHARDS:                 # consumers of one partition fill the other shards
        cache.fetch(0, 0, 1, False)
    assert evicted() == 0
    # full: a consumer session no larger than the one in its shard gets no session and evicts nothing
    assert [cache.fetch(0, 0, 1, False)[1] for _ in range(20)] == [0] * 20 and evicted() == 0
    # a larger consumer session takes a smaller consumer's place, never a follower's
    made = [sid for sid in (cache.fetch(0, 0, 2, False)[1] for _ in range(20)) if sid]
    assert made and evicted() == len(made) and follower in sessions()
    # a follower's session takes a consumer's place whatever its size
    before = evicted()
    followers = [sid for sid in (cache.fetch(0, 0, 1, True)[1] for _ in range(20)) if sid]
    assert followers and evicted() == before + len(followers) and follower in sessions()
    assert len(sessions()) == SHARDS
    # two minutes unused: any new session takes a stale one's place, the oldest first
    c.run_for(121_000)
    assert cache.fetch(follower, 1, 3, True) == ("NONE", follower)       # used: not stale
    before = evicted()
    _, late = cache.fetch(0, 0, 1, False)
    assert late and evicted() == before + 1 and follower in sessions()
    # an unknown session, a wrong epoch, a closed session
    assert cache.fetch(987_654, 1, 1, True) == ("FETCH_SESSION_ID_NOT_FOUND", 0)
    assert cache.fetch(follower, 7, 3, True) == ("INVALID_FETCH_SESSION_EPOCH", 0)
    assert cache.fetch(0, 5, 1, True) == ("FETCH_SESSION_ID_NOT_FOUND", 0)         # an epoch of no session
    assert cache.fetch(follower, -1, 3, True) == ("NONE", 0) and follower not in sessions()
