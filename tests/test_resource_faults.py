"""Faults of a broker's resources: a failed log directory (JBOD), a produce flood that saturates
the network threads, a slow disk that saturates the request handler threads."""
import pytest
from conftest import KC, RM, make_cluster

from broker.scenario import Fault, load_scenario
from broker.simulation import Simulation

LM = "kafka.log:type=LogManager,name="
DIRS = "/data/kafka-1,/data/kafka-2"
NET_IDLE = "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent"
HANDLER_IDLE = "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"


def test_failed_log_dir_takes_its_replicas_offline_and_the_controller_moves_them():
    c = make_cluster(config={"log.dirs": DIRS, "broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000})
    b2 = c.brokers["broker-2"]
    by_dir = {d: {tp for tp, placed in b2.disk.dirs.items() if placed == d} for d in DIRS.split(",")}
    assert all(by_dir.values()), "LogManager spreads logs over both directories"
    assert abs(len(by_dir["/data/kafka-1"]) - len(by_dir["/data/kafka-2"])) <= 1
    lost = by_dir["/data/kafka-1"]
    assert c.value("broker-2", LM + "OfflineLogDirectoryCount") == 0

    assert c.fail_log_dir("broker-2") == "/data/kafka-1"
    assert c.value("broker-2", LM + "OfflineLogDirectoryCount") == 1
    assert c.value("broker-2", LM + "LogDirectoryOffline,logDirectory=\"/data/kafka-1\"") == 1
    assert c.value("broker-2", LM + "LogDirectoryOffline,logDirectory=\"/data/kafka-2\"") == 0
    assert c.value("broker-2", RM + "OfflineReplicaCount") == len(lost)
    assert set(b2.partitions) == by_dir["/data/kafka-2"]
    tp = min(lost)
    assert f"kafka.log:type=Log,name=Size,topic={tp.topic},partition={tp.partition}" not in b2.mbeans
    c.run_for(2_000)
    image = c.active_controller().image
    for tp in lost:
        state = image.partition(*tp)
        assert 2 not in state.isr and state.leader not in (2, -1), (tp, state)
    for tp in by_dir["/data/kafka-2"]:
        assert 2 in image.partition(*tp).isr
    assert sum(c.values(RM + "UnderReplicatedPartitions").values()) == len(lost)
    assert set(c.values(KC + "FencedBrokerCount").values()) == {0}      # the broker itself stays up

    # a produce to a partition whose log is on the failed disk, sent straight to the broker
    producer = c.producer("p", {"acks": "1"})
    results = []
    producer.send(tp.topic, "x", partition=tp.partition, callback=lambda md, err: results.append(err))
    assert c.run_until(lambda: results, 10_000)
    assert results == ["NONE"]                   # retried on the new leader

    c.kill("broker-2")
    c.restart("broker-2")
    assert c.run_until(lambda: sum(c.values(RM + "UnderReplicatedPartitions").values()) == 0, 60_000)
    assert c.value("broker-2", LM + "OfflineLogDirectoryCount") == 0
    assert c.value("broker-2", RM + "OfflineReplicaCount") == 0


def test_losing_the_last_log_dir_halts_the_broker():
    c = make_cluster()
    assert c.fail_log_dir("broker-4") == "/tmp/kafka-logs"
    assert not c.brokers["broker-4"].alive
    c.run_for(12_000)
    assert set(c.values(KC + "FencedBrokerCount").values()) == {1}


def _scenario(timeline: str) -> Simulation:
    sim = Simulation(load_scenario(f"""
cluster: {{brokers: 3, controllers: 3, seed: 3}}
topics:
  - {{name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}}
  - {{name: backfill, partitions: 1, replication_factor: 3}}
workload:
  - {{producer: p1, topic: orders, rate: 50, keys: 10}}
timeline:
{timeline}
run_for: 120s
""", "s.yaml"))
    sim.start()
    return sim


def _leader(sim: Simulation, topic: str) -> str:
    return f"broker-{sim.cluster.active_controller().image.partition(topic, 0).leader}"


@pytest.mark.slow
def test_flood_saturates_the_leaders_network_threads_until_healed():
    sim = _scenario("  - {at: 30s, flood: backfill, bytes_per_sec: 100MB}\n  - {at: 60s, heal: all}")
    sim.run(until_ms=29_000)
    leader = _leader(sim, "backfill")
    c = sim.cluster
    assert c.value(leader, NET_IDLE) > 0.95
    sim.run(until_ms=45_000)
    assert c.value(leader, NET_IDLE) < 0.05                  # 100 MB/s in, 200 MB/s to followers: 3 threads full
    others = [n for n in ("broker-1", "broker-2", "broker-3") if n != leader]
    assert all(c.value(n, NET_IDLE) > 0.9 for n in others)   # followers fetch with their own client
    bytes_in = c.value(leader, "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=backfill", "OneMinuteRate")
    assert 95e6 < bytes_in < 105e6
    assert sum(c.values(RM + "UnderReplicatedPartitions").values()) == 0
    sim.run(until_ms=65_000)
    assert c.value(leader, NET_IDLE) > 0.95 and not sim.floods
    assert any("flood backfill at 100 MB/s" in m for _, m in sim.events)


@pytest.mark.slow
def test_slow_disk_under_load_saturates_the_request_handlers():
    sim = _scenario("  - {at: 20s, flood: backfill, bytes_per_sec: 100MB}")
    sim.run(until_ms=40_000)
    leader = _leader(sim, "backfill")
    c = sim.cluster
    assert c.value(leader, HANDLER_IDLE, "OneMinuteRate") > 0.8      # the flood alone leaves handlers idle
    produce = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,version=12"
    before = c.value(leader, produce, "Count")
    sim.run(until_ms=50_000)
    assert c.value(leader, produce, "Count") - before > 950         # acks=0 requests are counted too
    sim.apply(Fault(0.0, "slow", "leader:backfill-0", disk_delay_ms=80))
    assert c.brokers[leader].disk_delay_ms == 80
    sim.run(until_ms=120_000)
    # the one-minute rate needs about 70 s of saturation to fall under 30 %
    assert c.value(leader, HANDLER_IDLE, "OneMinuteRate") < 0.3
    local = "kafka.network:type=RequestMetrics,name=LocalTimeMs,request=Produce"
    assert c.value(leader, local, "50thPercentile") >= 80
    sim.apply(Fault(0.0, "heal", None))
    sim.run(until_ms=200_000)
    assert c.value(leader, HANDLER_IDLE, "OneMinuteRate") > 0.8
