"""Combined nodes (process.roles=broker,controller) on the embedded cluster, and what the exporter does with
them: one process holding both roles' MBeans once, quorum and replication across combined nodes, the
scenario's `combined:`, a target with `role: combined` pushing both roles' items to Zabbix."""
import pytest

from broker.cluster import Cluster
from broker.config import KafkaConfigError
from broker.scenario import describe_nodes, load_scenario
from exporter.catalog.model import load_catalog
from exporter.collector import Target
from exporter.config import load_config
from exporter.trapper import TrapperSink
from kafka_common.yamlconf import ConfigError
from kafka_jmx.embedded import EmbeddedSource

KC = "kafka.controller:type=KafkaController,name="
RM = "kafka.server:type=ReplicaManager,name="
RAFT = "kafka.server:type=raft-metrics"
IDLE = "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"


def combined_cluster(combined: int = 3, brokers: int = 0, controllers: int = 0) -> Cluster:
    c = Cluster(brokers=brokers, controllers=controllers, combined=combined, seed=7)
    c.start()
    assert c.run_until(c.ready, 30_000)
    c.create_topic("orders", 6, 3, 2)
    assert c.run_until(lambda: c.topic_exists("orders"), 10_000)
    return c


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    c = combined_cluster()
    p = c.producer("p", {"acks": "all"})
    for i in range(30):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "billing", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(20_000)
    return c


def test_a_combined_node_is_one_process_with_both_roles_mbeans(cluster):
    assert cluster.node_names() == ["combined-1", "combined-2", "combined-3"]
    assert [(n.role, n.node_id) for n in cluster.servers.values()] == [("combined", 1), ("combined", 2), ("combined", 3)]
    for name, node in cluster.servers.items():
        # the broker's, the controller's and the process's own beans in one registry
        for bean in (KC + "ActiveBrokerCount", KC + "ActiveControllerCount", RM + "UnderReplicatedPartitions",
                     "kafka.server:type=KafkaServer,name=BrokerState", "kafka.server:type=ControllerServer,name=ClusterId",
                     f"kafka.server:type=app-info,id={node.node_id}", "kafka.server:type=broker-metadata-metrics"):
            assert bean in node.mbeans, (name, bean)
        assert cluster.brokers[name].mbeans is node.mbeans is cluster.controllers[name].mbeans
        # one raft client, a voter's: no broker observer beside it
        state = node.mbeans.read(RAFT)["current-state"]
        assert state in ("leader", "follower"), (name, state)
        assert {n for n in node.mbeans.names() if "type=app-info," in str(n)} == \
               {n for n in node.mbeans.names() if str(n) == f"kafka.server:type=app-info,id={node.node_id}"}
        # both socket servers, one per listener
        for listener in ("PLAINTEXT", "CONTROLLER"):
            assert f"kafka.network:type=Acceptor,name=AcceptorBlockedPercent,listener={listener}" in node.mbeans


def test_the_combined_nodes_form_the_quorum_and_hold_the_replicas(cluster):
    assert sum(cluster.values(KC + "ActiveControllerCount").values()) == 1
    assert set(cluster.values(KC + "ActiveBrokerCount").values()) == {3}
    image = cluster.active_controller().image
    replicas = sum(len(p.replicas) for t in image.topics.values() for p in t.partitions)
    assert replicas >= 6 * 3 and sum(cluster.values(RM + "PartitionCount").values()) == replicas
    assert set(cluster.values(RM + "UnderReplicatedPartitions").values()) == {0}
    voters = {node.mbeans.read(RAFT)["current-leader"] for node in cluster.servers.values()}
    assert len(voters) == 1 and voters <= {1, 2, 3}
    # both of a combined node's request handler pools mark the one idle meter: it stays a share of 1
    for name, node in cluster.servers.items():
        idle = node.mbeans.read(IDLE)["OneMinuteRate"]
        assert 0.5 < idle <= 1.0, (name, idle)


def test_losing_the_active_combined_node_fails_over_and_under_replicates():
    c = combined_cluster()
    old = c.kill("active-controller")
    assert c.run_until(lambda: c.active_controller() is not None, 30_000)
    c.run_for(15_000)
    assert c.failovers[-1].old == old and c.failovers[-1].new not in (None, old)
    assert not c.servers[old].alive and not c.brokers[old].alive and not c.controllers[old].alive
    assert set(c.values(KC + "ActiveBrokerCount").values()) == {2}
    # every partition of orders had a replica on the lost node
    assert sum(v for n, v in c.values(RM + "UnderReplicatedPartitions").items()) >= 6
    c.restart(old)
    assert c.run_until(lambda: set(c.values(KC + "ActiveBrokerCount").values()) == {3}, 30_000)
    assert c.run_until(lambda: set(c.values(RM + "UnderReplicatedPartitions").values()) == {0}, 60_000)


def test_combined_nodes_beside_brokers_and_controllers():
    c = combined_cluster(combined=2, brokers=2, controllers=1)
    assert c.node_names() == ["controller-1001", "combined-1", "combined-2", "broker-3", "broker-4"]
    assert {n: s.node_id for n, s in c.servers.items()} == \
           {"controller-1001": 1001, "combined-1": 1, "combined-2": 2, "broker-3": 3, "broker-4": 4}
    assert set(c.values(KC + "ActiveBrokerCount").values()) == {4}
    assert set(c.values(KC + "ActiveControllerCount", role="controller")) == {"controller-1001", "combined-1",
                                                                               "combined-2"}
    assert set(c.values(RM + "LeaderCount", role="broker")) == {"combined-1", "combined-2", "broker-3", "broker-4"}
    states = {n: s.mbeans.read(RAFT)["current-state"] for n, s in c.servers.items()}
    assert states["broker-3"] == states["broker-4"] == "observer"
    assert sorted(states[n] for n in ("controller-1001", "combined-1", "combined-2")) == ["follower", "follower", "leader"]


def test_the_scenario_takes_combined_nodes():
    s = load_scenario("cluster: {combined: 3}\ntopics:\n  - {name: t, partitions: 3, replication_factor: 3}\n"
                      "timeline:\n  - {at: 5s, kill: combined-2}\n  - {at: 9s, fail_log_dir: combined-1}\n"
                      "config: {log.dirs: '/a,/b'}\n")
    assert (s.combined, s.brokers, s.controllers, s.broker_count) == (3, 0, 0, 3)
    assert s.node_names() == ["combined-1", "combined-2", "combined-3"] and describe_nodes(s) == "3 combined nodes"
    mixed = load_scenario("cluster: {combined: 1, brokers: 2}\n")
    assert mixed.node_names() == ["combined-1", "broker-2", "broker-3"]
    assert describe_nodes(mixed) == "1 combined node, 2 brokers"
    for text, error in (("cluster: {combined: 0, brokers: 0}\n", "s.yaml:1: cluster.brokers: expected a positive integer, got 0"),
                        ("cluster: {combined: 2}\ntimeline:\n  - {at: 1s, kill: broker-1}\n",
                         "s.yaml:3: timeline[0].kill: unknown node 'broker-1' (nodes: combined-1, combined-2, "
                         "active-controller, controllers)"),
                        ("cluster: {combined: 2}\ntopics:\n  - {name: t, replication_factor: 3}\n",
                         "replication factor 3 is above the broker count 2 (brokers and combined nodes)"),
                        ("cluster: {combined: -1}\n", "cluster.combined: expected a number of nodes (0 or more), got -1")):
        with pytest.raises(Exception) as e:
            load_scenario(text, "s.yaml")
        assert error in str(e.value), str(e.value)
    with pytest.raises(KafkaConfigError, match="needs at least one controller or combined node"):
        Cluster(brokers=1, controllers=0)


def test_a_combined_target_is_accepted_and_pushes_both_roles_items(cluster):
    cfg = load_config("cluster: prod\ntargets:\n  - {name: combined-1, role: combined, node_id: 1, "
                      "jolokia: {url: 'http://c1:8778/jolokia/'}}\n")
    assert cfg.targets[0].role == "combined"
    with pytest.raises(ConfigError, match="role must be broker, controller or combined"):
        load_config("targets:\n  - {name: a, role: both, jolokia: {url: 'http://h/'}}\n")
    catalog = load_catalog()
    pushed = {}
    for role in ("broker", "controller", "combined"):
        sink = TrapperSink("127.0.0.1", 1, catalog, "prod")
        target = Target("combined-1", role, None, "1")
        sink.offer(target, EmbeddedSource("combined-1", cluster.servers["combined-1"]).read())
        pushed[role] = {v.key for v in sink.pending()}
    # what the broker and the controller templates would get, together, and nothing else
    assert pushed["combined"] == pushed["broker"] | pushed["controller"]
    assert pushed["broker"] - pushed["controller"] and pushed["controller"] - pushed["broker"]
    for metric_id in ("active_controller_count", "active_broker_count", "under_replicated_partitions",
                      "raft_current_state", "broker_state"):
        assert catalog.metric(metric_id).key in pushed["combined"], metric_id
