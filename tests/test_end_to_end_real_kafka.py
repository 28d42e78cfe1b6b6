"""End to end on real Apache Kafka: the real Zabbix Java gateway polls real brokers and controllers
through the generated JMX templates; two exporters read the same cluster, one over JMX and one
through the Jolokia agent, for a real Prometheus with the generated alert rules. A broker killed
raises "fewer active brokers" in both systems and both resolve after its restart; the active
controller killed is replaced, the election alerts fire and nothing else does."""
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from conftest import wait
from jvm_support import free_port_block, healthy_topic, kafka_port_block, require_real_kafka
from prometheus_server import PrometheusServer, rules_for
from zabbix_stack import jmx_hosts, settled, unknown_triggers, unsupported

from exporter.collector import Target
from exporter.config import PrometheusSpec
from exporter.daemon import Daemon
from exporter.rulesets import builtin_rules
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from realkafka.cluster import RealCluster
from realkafka.install import DEFAULT_LINE

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

# broker.session.timeout.ms 3 s: a killed broker is fenced within seconds, as in the embedded test
FAST = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000}
INCLUDE = ["kafka.controller:*", "kafka.server:*", "kafka.log:type=LogManager,*", "kafka.network:type=SocketServer,*"]
# what a fault may raise besides its own alert: the dead node's target and, for a broker, its fencing and
# the replicas it held (the topic with traffic has 3 replicas)
BROKER_KILL_ALERTS = {"KafkaActiveBrokersBelowMinimum", "KafkaFencedBrokers", "KafkaTargetDown",
                      "KafkaUnderReplicatedPartitions"}
BROKER_KILL_PROBLEMS = {"active brokers", "fenced brokers", "under replicated partitions"}
FAILOVER_ALERTS = {"KafkaControllerElection", "KafkaTargetDown"}
FAILOVER_PROBLEMS = {"a new controller was elected"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Real Kafka (3 controllers, 3 brokers) and its exporters: 'rk-jmx' over JMX, 'rk-jolokia' over Jolokia."""
    require_real_kafka(DEFAULT_LINE)
    base = kafka_port_block()
    cluster = RealCluster(DEFAULT_LINE, brokers=3, controllers=3, jmx_base_port=base, kafka_base_port=base + 8,
                          jolokia_base_port=base + 16, config=FAST)
    daemons = []
    try:
        cluster.start()
        for name, make in (("rk-jmx", lambda n: JmxSource(n, cluster.urls()[n], includes=INCLUDE, timeout_ms=10_000)),
                           ("rk-jolokia", lambda n: JolokiaSource(n, cluster.jolokia_urls()[n], includes=INCLUDE,
                                                                  timeout_ms=10_000))):
            targets = [Target(n, node.role, make(n), str(node.node_id), {}, 2.0, 10.0)
                       for n, node in cluster.nodes.items()]
            daemon = Daemon(name, targets, builtin_rules(), PrometheusSpec(port=free_port_block(1)))
            daemon.start()
            daemons.append(daemon)
        yield cluster, daemons
    finally:
        for daemon in daemons:
            daemon.stop()
        cluster.stop()
        JmxReader.stop_all()


@pytest.fixture(scope="module")
def monitored(stack, zabbix70, zabbix70_api):
    """Zabbix 7.0 hosts for every node (JMX templates, polled by the Java gateway) and the cluster host;
    a Prometheus scraping both exporters."""
    cluster, daemons = stack
    api, zabbix = zabbix70_api, zabbix70
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    prom = PrometheusServer(state, free_port_block(1, low=20000), [d.url.split("/")[2] for d in daemons],
                            [rules_for(state, brokers_min=3, hold_max="20s")])
    prom.start()
    name = f"rk{time.time_ns() % 10**10}"
    hostids = jmx_hosts(api, zabbix, name, {n: (node.role, node.jmx_port) for n, node in cluster.nodes.items()},
                        {"{$KAFKA.BROKERS.MIN}": "3", "{$KAFKA.INTERVAL}": "2s", "{$KAFKA.AGGREGATE.PERIOD}": "15s",
                         "{$KAFKA.CONTROLLER.GAP}": "30s"})
    view = Monitored(cluster, api, prom, name, hostids)
    try:
        key = 'jmx["kafka.controller:type=KafkaController,name=ActiveBrokerCount","Value"]'
        reported = wait(lambda: [i for i in api.item.get(hostids=hostids, filter={"key_": key}, output=["lastvalue"])
                                 if i["lastvalue"] == "3"])
        assert reported, api.item.get(hostids=hostids, filter={"key_": key}, output=["lastvalue", "error"])
        for cluster_name in ("rk-jmx", "rk-jolokia"):
            assert wait(lambda: prom.query(f'kafka_controller_kafkacontroller_activebrokercount{{cluster="{cluster_name}"}} == 3'))
        # a healthy cluster, polled and scraped: nothing fires
        assert wait(lambda: not view.problems() and not view.firing(), 90), (view.problems(), view.firing())
        yield view
    finally:
        prom.stop()
        shutil.rmtree(state, ignore_errors=True)


class Monitored:
    def __init__(self, cluster: RealCluster, api, prom: PrometheusServer, name: str, hostids: list[str]) -> None:
        self.cluster, self.api, self.prom, self.name, self.hostids = cluster, api, prom, name, hostids

    def problems(self) -> list[str]:
        return [p["name"] for p in self.api.problem.get(hostids=self.hostids, output=["name"])]

    def firing(self) -> set[tuple[str, str]]:
        return {(a["labels"]["alertname"], a["labels"].get("cluster", "")) for a in self.prom.alerts()
                if a["state"] == "firing"}

    def active_controller(self) -> str | None:
        for n, node in self.cluster.nodes.items():
            if node.role == "controller" and node.alive:
                got = JmxSource(n, self.cluster.urls()[n],
                                includes=["kafka.controller:type=KafkaController,name=ActiveControllerCount"]).read()
                if any(s.value == 1 for s in got.samples):
                    return n
        return None


def unexpected(seen: list[str], allowed: set[str]) -> list[str]:
    return [p for p in seen if not any(a in p for a in allowed)]


def test_a_healthy_cluster_has_no_unsupported_item_nor_unknown_trigger(monitored):
    """On real Kafka: NaN raft latencies and the MBeans Kafka creates on their first event leave no JMX
    item (or discovery rule) unsupported, and no trigger unknown once the values are in; a topic with
    traffic is discovered on its leaders."""
    m = monitored
    healthy_topic(m.cluster.bootstrap_servers())
    assert settled(m.api, m.hostids, "healthy")
    assert unsupported(m.api, m.hostids) == []
    assert unknown_triggers(m.api, m.hostids) == []
    assert not m.problems() and not m.firing(), (m.problems(), m.firing())


def test_broker_loss_fires_in_zabbix_and_in_prometheus_over_jmx_and_jolokia(monitored):
    m = monitored
    m.cluster.kill("broker-3")
    killed = time.monotonic()
    try:
        problem = wait(lambda: [p for p in m.problems() if "active brokers" in p], 120)
        zabbix_s = time.monotonic() - killed
        assert problem and "only 2 active brokers" in problem[0]
        wanted = {("KafkaActiveBrokersBelowMinimum", "rk-jmx"), ("KafkaActiveBrokersBelowMinimum", "rk-jolokia")}
        assert wait(lambda: wanted <= m.firing(), 150), m.firing()
        prometheus_s = time.monotonic() - killed
        print(f"real Kafka: broker kill to Zabbix problem {zabbix_s:.1f} s, to both Prometheus alerts {prometheus_s:.1f} s")
        assert not unexpected(m.problems(), BROKER_KILL_PROBLEMS), m.problems()
        assert {alert for alert, _ in m.firing()} <= BROKER_KILL_ALERTS, m.firing()
    finally:
        m.cluster.restart("broker-3")
    assert wait(lambda: not m.problems() and not m.firing(), 180), (m.problems(), m.firing())


def test_controller_failover_raises_the_election_alerts_and_nothing_else(monitored):
    m = monitored
    old = m.active_controller()
    assert old is not None
    m.cluster.kill(old)
    killed = time.monotonic()
    try:
        new = wait(lambda: m.active_controller(), 60, step=0.5)
        assert new and new != old
        print(f"real Kafka: {old} killed, {new} active after {time.monotonic() - killed:.1f} s")
        assert wait(lambda: [p for p in m.problems() if "a new controller was elected" in p], 120), m.problems()
        wanted = {("KafkaControllerElection", "rk-jmx"), ("KafkaControllerElection", "rk-jolokia")}
        assert wait(lambda: wanted <= m.firing(), 120), m.firing()
        # past the controller-count gap and the alerts' hold: a failover must not page for anything else
        while time.monotonic() - killed < 60:
            assert not unexpected(m.problems(), FAILOVER_PROBLEMS), m.problems()
            assert {alert for alert, _ in m.firing()} <= FAILOVER_ALERTS, m.firing()
            time.sleep(2)
    finally:
        m.cluster.restart(old)
