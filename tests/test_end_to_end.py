"""End to end on the wall clock: the embedded cluster published over JMX, polled by the real Zabbix
Java gateway, exported to a real Prometheus 3 and Debian's Prometheus 2.42 side by side; a broker dies and
all three raise their alert."""
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from conftest import wait, wall_clock_cluster
from jvm_support import free_port_block, require_jdk
from prometheus_server import PrometheusServer, rules_for
from zabbix_stack import jmx_hosts, settled, unknown_triggers, unsupported

from broker.cluster import Cluster
from broker.jmx.publisher import JmxPublisher
from exporter.catalog import grafana
from exporter.catalog.model import load_catalog
from exporter.config import PrometheusSpec
from exporter.daemon import Daemon
from exporter.rulesets import builtin_rules
from kafka_jmx.embedded import embedded_targets

FAST = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000,
        "offsets.topic.replication.factor": 3}


@pytest.fixture(scope="module")
def live():
    """A 3-broker, 1-controller cluster on the wall clock, its JMX endpoints and the exporter."""
    require_jdk()
    with wall_clock_cluster(3, 1, 11, FAST, ("orders", 3, 3, 2)) as cluster:
        with cluster.sched.lock:
            producer = cluster.producer("p")
            for i in range(30):
                producer.send("orders", i, key=str(i).encode())
        ports = free_port_block(5, low=20000)
        publisher = JmxPublisher(cluster, base_port=ports, refresh_ms=1000)
        publisher.start(background=True)
        daemon = Daemon("e2e", embedded_targets(cluster, interval_s=1.0, timeout_s=5.0), builtin_rules(),
                        PrometheusSpec(port=ports + 4))
        daemon.start()
        yield cluster, publisher, daemon
        daemon.stop()
        publisher.stop()


def node_hosts(api, zabbix, cluster: Cluster, publisher: JmxPublisher, name: str) -> list[str]:
    """A host per node with its role's JMX template (polled by the Java gateway) and the cluster host."""
    return jmx_hosts(api, zabbix, name, {n: (cluster.node(n).role, port) for n, port in publisher.ports().items()},
                     {"{$KAFKA.BROKERS.MIN}": "3", "{$KAFKA.INTERVAL}": "2s", "{$KAFKA.AGGREGATE.PERIOD}": "15s"})


def test_a_healthy_cluster_has_no_unsupported_item_nor_unknown_trigger(live, zbx, zbx_api):
    """NaN raft latencies (no election lately, observers never campaign) and MBeans Kafka creates on
    their first event (per-topic BytesOut/BytesRejected/FailedProduceRequests, NOT_ENOUGH_REPLICAS)
    must not leave a JMX item unsupported; once the values are in, no trigger is unknown (an operator
    reads one as a broken template). On every Zabbix version."""
    cluster, publisher, _ = live
    api = zbx_api
    hostids = node_hosts(api, zbx, cluster, publisher, f"u{time.time_ns() % 10**10}")
    # the discovery rules have run (the orders leaders' MessagesIn discovered) and every item was polled
    assert settled(api, hostids, "orders"), api.item.get(hostids=hostids, output=["key_", "lastclock"])
    try:
        assert unsupported(api, hostids) == []
        assert unknown_triggers(api, hostids) == []
        nan_items = api.item.get(hostids=hostids, search={"key_": "election-latency-max"}, output=["lastvalue"])
        assert nan_items and all(float(i["lastvalue"]) >= 0 for i in nan_items)
        # discovered where they exist: each broker's registration state (every controller), the quorum
        # leader's observer count (the active controller only)
        def values(key: str) -> list[float]:
            return [float(i["lastvalue"]) for i in api.item.get(hostids=hostids, filter={"key_": key},
                                                                output=["lastvalue"])]
        assert values('jmx["kafka.controller:type=KafkaController,name=BrokerRegistrationState,broker=2","Value"]') \
            == [30.0] * len(cluster.controllers)
        assert values('jmx["kafka.server:type=raft-metrics","number-of-observers"]') == [float(len(cluster.brokers))]
    finally:
        api.host.delete(*hostids)


def test_broker_loss_fires_in_zabbix_via_the_java_gateway_and_in_prometheus(live, zabbix, zabbix_api):
    cluster, publisher, daemon = live
    api = zabbix_api
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    rules = rules_for(state, brokers_min=3, hold_max="10s")
    # Prometheus 3, the main line, and Debian's 2.42 beside it: the 2.x line keeps this end-to-end test
    proms = {major: PrometheusServer(state / f"prometheus{major}", free_port_block(1, low=20000),
                                     [daemon.url.split("/")[2]], [rules], major=major) for major in (3, 2)}
    for server in proms.values():
        server.start()
    prom = proms[3]
    try:
        name = f"e{time.time_ns() % 10**10}"
        node_hosts(api, zabbix, cluster, publisher, name)
        key = 'jmx["kafka.controller:type=KafkaController,name=ActiveBrokerCount","Value"]'
        polled = wait(lambda: [i for i in api.item.get(host=f"{name}-controller-1001", filter={"key_": key},
                                                       output=["lastvalue", "error"]) if i["lastvalue"] == "3"])
        assert polled, api.item.get(host=f"{name}-controller-1001", filter={"key_": key}, output=["lastvalue", "error"])
        for server in proms.values():
            assert wait(lambda server=server: server.query('kafka_controller_kafkacontroller_activebrokercount{cluster="e2e"} == 3'))
        cluster_host = api.host.get(filter={"host": f"{name}-cluster"}, output=["hostid"])[0]["hostid"]
        # until the aggregates have counted the first polled values, "no controller reports data" is true
        assert wait(lambda: not api.problem.get(hostids=[cluster_host], output=["name"]), 60), \
            api.problem.get(hostids=[cluster_host], output=["name"])

        assert not [a for server in proms.values() for a in server.alerts()
                    if a["labels"]["alertname"] == "KafkaActiveBrokersBelowMinimum"]
        with cluster.sched.lock:
            cluster.kill("broker-3")
        killed = time.monotonic()
        problem = wait(lambda: [p for p in api.problem.get(hostids=[cluster_host], output=["name"])
                                if "active brokers" in p["name"]], 120)
        zabbix_s = time.monotonic() - killed
        assert problem and "only 2 active brokers" in problem[0]["name"]
        prometheus_s = {}
        for major, server in proms.items():
            firing = wait(lambda server=server: [a for a in server.alerts() if a["state"] == "firing" and
                                                 a["labels"]["alertname"] == "KafkaActiveBrokersBelowMinimum"], 150)
            prometheus_s[major] = time.monotonic() - killed
            assert firing and firing[0]["labels"]["cluster"] == "e2e", major
        print(f"fault to Zabbix problem (JMX path): {zabbix_s:.1f} s; to firing on Prometheus 3: {prometheus_s[3]:.1f} s, "
              f"on 2.42: {prometheus_s[2]:.1f} s")

        # every Grafana panel's query returns data from Prometheus 3
        empty = []
        for uid, expr, panel in grafana.queries(load_catalog()):
            if panel.needs != "jmx":
                continue        # no JVM target, no consumer groups here (tests/test_promql_dropin.py checks those panels)
            result = prom.query(expr.replace("$cluster", "e2e").replace("$node", ".*"))
            if not result and not panel.may_be_empty:
                empty.append(f"{uid}: {panel.title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)

        with cluster.sched.lock:
            cluster.restart("broker-3")
        assert wait(lambda: not [p for p in api.problem.get(hostids=[cluster_host], output=["name"])
                                 if "active brokers" in p["name"]], 120), "the problem did not resolve"
    finally:
        for server in proms.values():
            server.stop()
        shutil.rmtree(state, ignore_errors=True)
