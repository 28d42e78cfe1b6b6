"""The embedded cluster is one Kafka line at a time (scenario `cluster: {kafka_version: ...}`): a 4.4
cluster publishes what real 4.4 adds, a 4.1 cluster none of it (kafka-jmx conformance reads both)."""
import pytest

from broker.scenario import load_scenario
from broker.simulation import Simulation
from kafka_common.yamlconf import ConfigError

SCENARIO = """
cluster: {brokers: 3, controllers: 1, kafka_version: "%s"}
topics: [{name: orders, partitions: 4, replication_factor: 2}]
workload:
  - {producer: p1, topic: orders, rate: 20, acks: all}
  - {consumer_group: billing, topic: orders, members: 1}
run_for: 30s
"""
ADDED_IN_44 = {
    "broker": ("kafka.network:type=RequestMetrics,name=TotalTimeMs,request=UnregisterController",
               "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=StreamsGroupTopologyDescriptionUpdate",
               "kafka.server:type=ShareGroupDLQManager-channel-metrics"),
    "controller": ("kafka.network:type=RequestMetrics,name=TotalTimeMs,request=UnregisterController",),
}


def run(version: str) -> Simulation:
    sim = Simulation(load_scenario(SCENARIO % version))
    sim.start()
    sim.run(until_ms=30_000)
    return sim


@pytest.mark.parametrize("version,release", [("4.1", "4.1.1"), ("4.4", "4.4.0")])
def test_each_line_publishes_what_its_release_has(version, release):
    c = run(version).cluster
    for node in c.servers.values():
        assert node.mbeans.read("kafka.server:type=app-info")["version"] == release
        for name in ADDED_IN_44[node.role]:
            assert (name in node.mbeans) == (version == "4.4"), (node.name, name)
        if node.role == "broker":
            # the per-state bean counts consumer groups on both lines, classic groups from 4.4 on
            per_state = node.mbeans.read("kafka.server:type=group-coordinator-metrics,state=Stable")
            assert "consumer-group-count" in per_state
            assert ("classic-group-count" in per_state) == (version == "4.4"), node.name


def test_44_group_coordinator_counts_its_groups():
    c = run("4.4").cluster
    stable = sum(b.mbeans.read("kafka.server:type=group-coordinator-metrics,state=Stable")["classic-group-count"]
                 for b in c.brokers.values())
    offsets = sum(b.mbeans.read("kafka.server:type=group-coordinator-metrics")["offset-count"] for b in c.brokers.values())
    assert stable == 1 and offsets == 4          # the billing group, one committed offset per partition
    read = c.brokers["broker-1"].mbeans.read("kafka.server:type=group-coordinator-metrics")
    assert read["streams-group-topology-description-set-success-count"] == 0   # no Kafka Streams clients


def test_an_unknown_line_is_refused_where_it_is_written():
    with pytest.raises(ConfigError, match=r"s.yaml:2: cluster.kafka_version: .*no Kafka '3.9'.*4.1 \(4.1.1\)"):
        load_scenario("run_for: 1s\ncluster: {kafka_version: '3.9'}\n", "s.yaml")
    assert load_scenario("cluster: {kafka_version: 4.4.0}\n").kafka_version == "4.4"
