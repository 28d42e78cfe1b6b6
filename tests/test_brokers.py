"""Brokers: heartbeats and fencing, replication, ISR, high watermark, acks and min.insync.replicas."""
from conftest import KC, RM, make_cluster

from broker.structs import TopicPartition

ABC, FBC, OFFLINE = KC + "ActiveBrokerCount", KC + "FencedBrokerCount", KC + "OfflinePartitionsCount"
STATE = "kafka.server:type=KafkaServer,name=BrokerState"


def controller_view(c, name):
    return set(c.values(name).values())


def test_killed_broker_is_fenced_after_the_session_timeout_and_back_on_restart(cluster):
    assert controller_view(cluster, ABC) == {5} and controller_view(cluster, FBC) == {0}
    cluster.kill("broker-3")
    cluster.run_for(8_000)                   # broker.session.timeout.ms is 9000
    assert controller_view(cluster, ABC) == {5}
    cluster.run_for(2_000)
    assert controller_view(cluster, ABC) == {4} and controller_view(cluster, FBC) == {1}
    cluster.restart("broker-3")
    assert cluster.value("broker-3", STATE) in (1, 2)         # STARTING / RECOVERY until unfenced
    cluster.run_for(5_000)
    assert controller_view(cluster, ABC) == {5} and controller_view(cluster, FBC) == {0}
    assert cluster.value("broker-3", STATE) == 3               # RUNNING


def test_leaders_move_and_under_replicated_partitions_show_then_clear(cluster):
    assert cluster.value("broker-3", RM + "LeaderCount") > 0
    hosted = sum(1 for p in cluster.active_controller().image.topics["orders"].partitions if 3 in p.replicas)
    cluster.kill("broker-3")
    cluster.run_for(12_000)
    urp = cluster.values(RM + "UnderReplicatedPartitions")
    assert sum(urp.values()) == hosted             # every partition with a replica on broker-3
    assert controller_view(cluster, OFFLINE) == {0}
    assert sum(cluster.values(RM + "LeaderCount").values()) == 12
    cluster.restart("broker-3")
    assert cluster.run_until(lambda: sum(cluster.values(RM + "UnderReplicatedPartitions").values()) == 0, 30_000)
    expands = cluster.values(RM + "IsrExpandsPerSec", "Count")
    assert sum(expands.values()) == hosted


def test_isolated_broker_is_fenced(cluster):
    cluster.isolate("broker-4")
    cluster.run_for(11_000)
    assert controller_view(cluster, FBC) == {1}
    cluster.heal("broker-4")
    cluster.run_for(5_000)
    assert controller_view(cluster, FBC) == {0} and controller_view(cluster, ABC) == {5}


def test_offline_partitions_when_every_replica_is_down(cluster):
    tp_state = cluster.active_controller().image.partition("orders", 0)
    for b in tp_state.replicas:
        cluster.kill(f"broker-{b}")
    cluster.run_for(12_000)
    offline = controller_view(cluster, OFFLINE)
    assert len(offline) == 1 and offline.pop() >= 1
    assert cluster.active_controller().image.partition("orders", 0).leader == -1
    for b in tp_state.replicas:
        cluster.restart(f"broker-{b}")
    assert cluster.run_until(lambda: controller_view(cluster, OFFLINE) == {0}, 20_000)


def test_unclean_leader_election_when_enabled():
    c = make_cluster(config={"unclean.leader.election.enable": True})
    p = c.active_controller().image.partition("orders", 0)
    # the two followers leave the ISR first (down long enough to be dropped), then the leader dies
    leader, followers = p.leader, [r for r in p.replicas if r != p.leader]
    for f in followers:
        c.kill(f"broker-{f}")
    c.run_for(12_000)
    assert c.active_controller().image.partition("orders", 0).isr == (leader,)
    c.kill(f"broker-{leader}")
    c.run_for(12_000)
    c.restart(f"broker-{followers[0]}")
    c.run_for(10_000)
    after = c.active_controller().image.partition("orders", 0)
    assert after.leader == followers[0]
    meter = "kafka.controller:type=ControllerStats,name=UncleanLeaderElectionsPerSec"
    assert all(v >= 1 for v in c.values(meter, "Count").values())


def test_min_isr_with_two_replicas_down_rejects_acks_all_and_accepts_acks_1(cluster):
    p = cluster.active_controller().image.partition("orders", 0)
    followers = [r for r in p.replicas if r != p.leader]
    for f in followers:
        cluster.kill(f"broker-{f}")
    cluster.run_for(12_000)
    leader = f"broker-{p.leader}"
    assert cluster.value(leader, RM + "UnderMinIsrPartitionCount") >= 1
    assert cluster.value(leader, "kafka.cluster:type=Partition,name=UnderMinIsr,topic=orders,partition=0") == 1

    results = {}
    strict = cluster.producer("strict", {"acks": "all", "delivery.timeout.ms": 3_000})
    strict.send("orders", "a", partition=0, callback=lambda md, err: results.setdefault("all", err))
    loose = cluster.producer("loose", {"acks": "1"})
    loose.send("orders", "b", partition=0, callback=lambda md, err: results.setdefault("one", err))
    cluster.run_for(5_000)
    assert results["one"] == "NONE"
    assert results["all"] == "DELIVERY_TIMEOUT"                 # retried NOT_ENOUGH_REPLICAS until the timeout
    assert strict.errors_seen.get("NOT_ENOUGH_REPLICAS", 0) >= 1
    errors = cluster.value(leader, "kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=Produce,"
                                   "error=NOT_ENOUGH_REPLICAS", "Count")
    assert errors >= 1
    failed = cluster.value(leader, "kafka.server:type=BrokerTopicMetrics,name=FailedProduceRequestsPerSec,topic=orders",
                           "Count")
    assert failed >= 1
    # acks=1 wrote past the high watermark (only the leader has it): consumers must not see it
    part = cluster.brokers[leader].partitions[TopicPartition("orders", 0)]
    assert part.log.end_offset == part.high_watermark + 1
    seen = []
    cluster.consumer("reader", "readers", ["orders"], {"auto.offset.reset": "earliest"},
                     on_records=lambda tp, recs, n: seen.extend(r for r in recs if tp.partition == 0))
    cluster.run_for(15_000)
    assert seen == []
    # a follower returns: it catches up, the ISR expands and the record becomes visible
    cluster.restart(f"broker-{followers[0]}")
    cluster.run_for(15_000)
    assert [r.value for r in seen] == ["b"]


def test_slow_follower_leaves_the_isr_after_replica_lag_time_max_and_returns():
    c = make_cluster(config={"replica.lag.time.max.ms": 10_000})
    producer = c.producer("p", {"acks": "1"})
    c.slow("broker-2", fetch_delay_ms=25_000)
    led_elsewhere = [tp for tp, p in c.brokers["broker-2"].partitions.items() if not p.is_leader]
    assert led_elsewhere

    def produce():
        for i in range(12):
            producer.send("orders", i, partition=i)
    for _ in range(30):
        produce()
        c.run_for(1_000)
    shrinks = sum(c.values(RM + "IsrShrinksPerSec", "Count").values())
    assert shrinks == len(led_elsewhere)
    assert sum(c.values(RM + "UnderReplicatedPartitions").values()) == len(led_elsewhere)
    c.heal("broker-2")
    for _ in range(30):
        produce()
        c.run_for(1_000)
    assert sum(c.values(RM + "UnderReplicatedPartitions").values()) == 0
    assert sum(c.values(RM + "IsrExpandsPerSec", "Count").values()) == len(led_elsewhere)
    assert c.value("broker-2", "kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica") == 0


def test_a_dead_leaders_fetcher_thread_stops_with_its_metrics():
    """AbstractFetcherManager.shutdownIdleFetcherThreads: once the followers fetch from the new leaders, the
    fetcher thread for the dead broker has nothing left and stops; its FetcherStats and its network client's
    replica-fetcher-metrics go with it (real Kafka 4.1 has removed them by then), and come back with it."""
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 6, 3, 2),))
    c.run_for(5_000)
    fetcher = "kafka.server:type=replica-fetcher-metrics,broker-id=3,fetcher-id=0"
    stats = "kafka.server:type=FetcherStats,name=RequestsPerSec,clientId=ReplicaFetcherThread-0-3,brokerHost=broker-3,brokerPort=9092"
    assert all(fetcher in c.brokers[b].mbeans and stats in c.brokers[b].mbeans for b in ("broker-1", "broker-2"))
    c.kill("broker-3")
    c.run_for(15_000)
    for b in ("broker-1", "broker-2"):
        assert fetcher not in c.brokers[b].mbeans and stats not in c.brokers[b].mbeans, b
    # the fetchers for the live leaders stay
    assert "kafka.server:type=replica-fetcher-metrics,broker-id=1,fetcher-id=0" in c.brokers["broker-2"].mbeans
    c.restart("broker-3")
    c.run_for(15_000)
    c.elect_preferred_leaders()
    c.run_for(5_000)
    assert all(fetcher in c.brokers[b].mbeans for b in ("broker-1", "broker-2"))


def test_a_fetch_is_checked_for_its_leader_epoch_before_leadership_as_kafka_does():
    """Partition.getLocalLog: a follower that applied a leader change before the new leader did fetches with the
    newer epoch and is told UNKNOWN_LEADER_EPOCH (it retries); an older epoch is FENCED_LEADER_EPOCH; only a fetch
    with the broker's own epoch learns that the broker does not lead the partition."""
    from broker.protocol import FetchPartition, FetchRequest

    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 1, 3, 2),))
    tp = TopicPartition("orders", 0)
    first = next(b for b in c.brokers.values() if b.replica_manager.partitions[tp].is_leader)
    c.kill(first.name)              # a leader change: epoch 1, so that an older epoch exists
    c.run_for(15_000)
    c.restart(first.name)
    c.run_for(10_000)
    leader = next(b for b in c.brokers.values() if b.replica_manager.partitions[tp].is_leader)
    follower = next(b for b in c.brokers.values() if b is not leader)
    epoch = leader.replica_manager.partitions[tp].leader_epoch
    assert epoch >= 1
    other = next(b for b in c.brokers.values() if b not in (leader, follower))

    def fetch(broker, leader_epoch):
        answers = []
        req = FetchRequest(other.node_id, {tp: FetchPartition(0, -1, leader_epoch)}, 0, 1 << 20)
        broker.replica_manager.on_fetch(other.name, req, answers.append)
        return answers[0].partitions[tp].error

    assert fetch(follower, epoch + 1) == "UNKNOWN_LEADER_EPOCH"
    assert fetch(follower, epoch - 1) == "FENCED_LEADER_EPOCH"
    assert fetch(follower, epoch) == "NOT_LEADER_OR_FOLLOWER"
    assert fetch(leader, epoch + 1) == "UNKNOWN_LEADER_EPOCH"
    assert fetch(leader, epoch) == "NONE"
