"""Real Apache Kafka 4.x (both tested lines) started from the Maven jars, read by our sources over
JMX and through the Jolokia agent: the cluster signals our alerts stand on, on a healthy cluster
and after a broker is killed and restarted."""
import re
import subprocess
import sys
import time

import pytest
from jvm_support import free_port_block, require_real_kafka

from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from realkafka.cluster import RealCluster
from realkafka.install import LINES

# KafkaRaftMetrics' names in 4.x ("voted" and "resigned" are no states it reports)
RAFT_STATES = {"leader", "follower", "observer", "candidate", "prospective", "unattached",
               "unattached-voted", "prospective-voted"}


@pytest.fixture(scope="module", params=LINES)
def kafka(request):
    require_real_kafka(request.param)
    base = free_port_block(24)
    cluster = RealCluster(request.param, brokers=3, controllers=3, jmx_base_port=base, kafka_base_port=base + 8,
                          jolokia_base_port=base + 16)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        JmxReader.stop_all()


def values(cluster: RealCluster, name: str, includes: list[str], jolokia: bool = False) -> dict:
    source = (JolokiaSource(name, cluster.jolokia_urls()[name], includes=includes) if jolokia
              else JmxSource(name, cluster.urls()[name], includes=includes))
    return {(s.object_name, s.attr): s.value for s in source.read().samples}


def controller_signals(cluster: RealCluster, jolokia: bool = False) -> dict[str, float]:
    """The cluster-wide signals as our aggregates read them: summed over the live controllers."""
    out = {"ActiveControllerCount": 0.0, "ActiveBrokerCount": 0.0, "FencedBrokerCount": 0.0}
    for name, node in cluster.nodes.items():
        if node.role != "controller" or not node.alive:
            continue
        got = values(cluster, name, ["kafka.controller:type=KafkaController,*"], jolokia)
        active = got[("kafka.controller:type=KafkaController,name=ActiveControllerCount", "Value")]
        out["ActiveControllerCount"] += active
        if active == 1:
            for key in ("ActiveBrokerCount", "FencedBrokerCount"):
                out[key] = got[(f"kafka.controller:type=KafkaController,name={key}", "Value")]
    return out


def wait_for(condition, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_a_healthy_real_cluster_has_one_active_controller_and_every_broker_running(kafka):
    assert wait_for(lambda: controller_signals(kafka) == {"ActiveControllerCount": 1.0, "ActiveBrokerCount": 3.0,
                                                          "FencedBrokerCount": 0.0}), controller_signals(kafka)
    assert controller_signals(kafka, jolokia=True) == controller_signals(kafka)
    states = []
    for name, node in kafka.nodes.items():
        got = values(kafka, name, ["kafka.server:type=raft-metrics", "kafka.server:type=KafkaServer,name=BrokerState"])
        states.append(got[("kafka.server:type=raft-metrics", "current-state")])
        if node.role == "broker":
            assert got[("kafka.server:type=KafkaServer,name=BrokerState", "Value")] == 3      # RUNNING
            assert states[-1] == "observer"
    assert set(states) <= RAFT_STATES and states.count("leader") == 1
    assert "voted" not in states


def test_a_killed_broker_is_fenced_and_comes_back_after_restart(kafka):
    kafka.kill("broker-3")
    try:
        # broker.session.timeout.ms (9 s) without heartbeats: fenced, no longer active
        assert wait_for(lambda: controller_signals(kafka)["ActiveBrokerCount"] == 2.0, 60), controller_signals(kafka)
        with pytest.raises(Exception):
            JmxSource("broker-3", kafka.urls()["broker-3"], includes=["kafka.server:*"], timeout_ms=3000).read()
    finally:
        kafka.restart("broker-3")
    assert wait_for(lambda: controller_signals(kafka)["ActiveBrokerCount"] == 3.0, 90), controller_signals(kafka)


def test_cluster_run_plays_a_scenario_on_real_kafka(tmp_path):
    """`kafka-jmx cluster run --engine kafka`: the embedded engine's lines, topics, a real client
    workload, and the timeline's kill, pause and resume on real processes."""
    require_real_kafka("4.1")
    base = free_port_block(24)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("""
cluster: {brokers: 3, controllers: 3}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 200, acks: all, keys: 20}
  - {consumer_group: billing, topic: orders, members: 2}
timeline:
  - {at: 8s, kill: broker-3}
  - {at: 12s, pause: active-controller}
  - {at: 16s, heal: all}
run_for: 24s
""")
    done = subprocess.run([sys.executable, "-m", "exporter", "cluster", "run", str(scenario), "--engine", "kafka:4.1",
                           "--jmx-base-port", str(base), "--kafka-base-port", str(base + 8)],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"controller-1001  service:jmx:rmi:///jndi/rmi://127.0.0.1:{base}/jmxrmi" in out
    assert f"broker-3         service:jmx:rmi:///jndi/rmi://127.0.0.1:{base + 5}/jmxrmi" in out
    assert f"bootstrap.servers=127.0.0.1:{base + 8},127.0.0.1:{base + 9},127.0.0.1:{base + 10}" in out
    assert "topic orders created" in out and "kill broker-3" in out
    assert re.search(r"pause controller-100\d", out) and "heal all" in out
    acked, consumed = map(int, re.search(r"records acknowledged (\d+), consumed (\d+)", out).groups())
    assert acked > 1000 and consumed > 1000


def test_faults_a_real_cluster_cannot_take_are_refused_with_file_and_line(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {brokers: 3, controllers: 3}\ntimeline:\n  - {at: 1s, kill: broker-1}\n"
                        "  - {at: 2s, isolate: broker-2}\nrun_for: 5s\n")
    done = subprocess.run([sys.executable, "-m", "exporter", "cluster", "run", str(scenario), "--engine", "kafka"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{scenario}:4: timeline[1].isolate: the kafka engine cannot isolate" in done.stderr
