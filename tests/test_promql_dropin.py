"""The queries dashboards and alerts built on jmx_exporter's agent and on kafka_exporter run, on a real
Prometheus scraping `serve` (its config file: JMX targets and the `kafka:` section) in front of real Kafka
with traffic and a lagging consumer group: every one returns data, and the cluster's shape comes out right."""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from conftest import wait
from jvm_support import commit_when_ready, free_port_block, kafka_port_block, require_real_kafka
from prometheus_server import PrometheusServer

from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.sources.jmx import JmxReader
from realkafka.cluster import RealCluster
from realkafka.install import DEFAULT_LINE

pytestmark = [pytest.mark.services, pytest.mark.slow]
# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

JVM_QUERIES = [
    'sum by (node, area) (jvm_memory_used_bytes{area=~"heap|nonheap"})',
    'jvm_memory_used_bytes{area="heap"} / jvm_memory_max_bytes{area="heap"}',
    'sum by (node, pool) (jvm_memory_pool_used_bytes)',
    'sum by (node, gc) (rate(jvm_gc_collection_seconds_count[1m]))',
    'sum by (node, gc) (rate(jvm_gc_collection_seconds_sum[1m]))',
    'sum by (node) (jvm_threads_current)',
    'sum by (state) (jvm_threads_state)',
    'sum by (node) (rate(process_cpu_seconds_total[1m]))',
    'process_open_fds / process_max_fds',
    'time() - process_start_time_seconds',
    'sum by (node, pool) (jvm_buffer_pool_used_bytes)',
    'count by (version) (jvm_runtime_info)',
    'rate(jvm_classes_loaded_total[1m])',
]
KAFKA_EXPORTER_QUERIES = [
    'sum by (topic) (rate(kafka_topic_partition_current_offset[1m]))',
    'sum by (consumergroup, topic) (kafka_consumergroup_lag)',
    'sum by (consumergroup) (kafka_consumergroup_lag_sum)',
    'max by (consumergroup, topic) (kafka_consumergroup_current_offset)',
    'sum by (consumergroup) (kafka_consumergroup_current_offset_sum)',
    'kafka_consumergroup_members',
    'sum by (topic) (kafka_topic_partitions)',
    'kafka_topic_partition_current_offset - kafka_topic_partition_oldest_offset',
    'sum by (topic) (kafka_topic_partition_replicas)',
    'sum by (topic) (kafka_topic_partition_in_sync_replica)',
    'count by (topic) (kafka_topic_partition_leader)',
    'sum(kafka_topic_partition_under_replicated_partition)',
    'sum by (topic) (kafka_topic_partition_leader_is_preferred)',
    'kafka_brokers',
    'count(kafka_broker_info)',
    'sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total[1m]))',
]


@pytest.fixture(scope="module")
def scraped():
    """Real Kafka (3 brokers, 1 controller) with a producer and a group left behind, `serve` from its config
    file, a Prometheus scraping it every 2 s."""
    require_real_kafka(DEFAULT_LINE)
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    base = kafka_port_block()
    cluster = RealCluster(DEFAULT_LINE, brokers=3, controllers=1, jmx_base_port=base, kafka_base_port=base + 8)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-dropin-"))
    stop = threading.Event()
    daemon = prom = None
    try:
        cluster.start()
        bootstrap = cluster.bootstrap_servers()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("payments", 3, 3)])["payments"].result(60)
        commit_when_ready(bootstrap, "ledger", "payments", 3, 0)     # a group left behind: lag grows from here

        def produce() -> None:
            p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
            while not stop.is_set():
                for i in range(50):
                    p.produce("payments", value=b"x" * 200, key=str(i).encode())
                p.poll(0)
                stop.wait(0.2)
            p.flush(10)
        threading.Thread(target=produce, daemon=True).start()
        port = free_port_block(1, low=20000)
        targets = "".join(f"  - {{name: {n}, role: {node.role}, node_id: {node.node_id}, jmx: {{url: '{node.jmx_url}'}}}}\n"
                          for n, node in cluster.nodes.items())
        config = state / "exporter.yml"
        config.write_text(f"cluster: dropin\ncollection: {{interval: 2s, timeout: 10s}}\nprometheus: {{listen: '127.0.0.1:{port}'}}\n"
                          f"include: ['kafka.server:*', 'kafka.controller:*']\ntargets:\n{targets}"
                          f"kafka: {{bootstrap_servers: '{bootstrap}', interval: 2s}}\n")
        daemon = Daemon.from_config(load_config(config.read_text(), str(config)))
        daemon.start()
        prom = PrometheusServer(state / "prom", free_port_block(1, low=20000), [f"127.0.0.1:{port}"], [])
        prom.start()
        assert wait(lambda: prom.query(f"count(kafkajmx_target_up == 1) == {len(cluster.nodes)}"), 120), \
            prom.query("kafkajmx_target_up")
        # a minute of rates needs two scrapes at least
        assert wait(lambda: prom.query('count(rate(kafka_topic_partition_current_offset{topic="payments"}[1m]) > 0) == 3'),
                    120), "no offsets moving in Prometheus"
        yield cluster, prom
    finally:
        stop.set()
        if prom is not None:
            prom.stop()
        if daemon is not None:
            daemon.stop()
        cluster.stop()
        JmxReader.stop_all()
        shutil.rmtree(state, ignore_errors=True)


def test_jmx_exporter_agent_queries_get_data_for_every_node(scraped):
    cluster, prom = scraped
    nodes = set(cluster.nodes)
    empty = [q for q in JVM_QUERIES if not wait(lambda q=q: prom.query(q), 30)]
    assert empty == []
    for expr in ('jvm_memory_used_bytes{area="heap"} > 0', "rate(process_cpu_seconds_total[1m]) > 0",
                 'jvm_threads_state{state="RUNNABLE"} > 0'):
        assert wait(lambda expr=expr: {r["metric"]["node"] for r in prom.query(expr)} == nodes, 30), prom.query(expr)
    assert all(0 < float(r["value"][1]) < 1 for r in prom.query("process_open_fds / process_max_fds"))


def test_kafka_exporter_queries_get_data_and_the_clusters_shape(scraped):
    _, prom = scraped
    empty = [q for q in KAFKA_EXPORTER_QUERIES if not wait(lambda q=q: prom.query(q), 30)]
    assert empty == []

    def one(expr: str) -> float:
        [r] = prom.query(expr)
        return float(r["value"][1])
    assert one("kafka_brokers") == 3 and one("count(kafka_broker_info)") == 3
    assert one('sum(kafka_topic_partition_replicas{topic="payments"})') == 9
    assert one('sum(kafka_topic_partition_under_replicated_partition{topic="payments"})') == 0
    assert one('sum(kafka_consumergroup_lag_sum{consumergroup="ledger",topic="payments"})') > 0


# kafka_exporter's families and their labels (its ZooKeeper lag has no place in Kafka 4.x)
KAFKA_EXPORTER_LABELS = {
    "kafka_brokers": frozenset(), "kafka_broker_info": frozenset({"id", "address"}),
    "kafka_topic_partitions": frozenset({"topic"}),
    **dict.fromkeys(["kafka_topic_partition_current_offset", "kafka_topic_partition_oldest_offset",
                     "kafka_topic_partition_leader", "kafka_topic_partition_replicas",
                     "kafka_topic_partition_in_sync_replica", "kafka_topic_partition_leader_is_preferred",
                     "kafka_topic_partition_under_replicated_partition"], frozenset({"topic", "partition"})),
    "kafka_consumergroup_current_offset": frozenset({"consumergroup", "topic", "partition"}),
    "kafka_consumergroup_current_offset_sum": frozenset({"consumergroup", "topic"}),
    "kafka_consumergroup_lag": frozenset({"consumergroup", "topic", "partition"}),
    "kafka_consumergroup_lag_sum": frozenset({"consumergroup", "topic"}),
    "kafka_consumergroup_members": frozenset({"consumergroup"}),
}


def test_every_kafka_exporter_family_is_stored_with_its_labels(scraped):
    _, prom = scraped
    names = "|".join(KAFKA_EXPORTER_LABELS)
    stored: dict[str, set[frozenset[str]]] = {}
    for r in prom.query(f'{{__name__=~"{names}"}}'):
        labels = set(r["metric"]) - {"__name__", "instance", "job", "cluster"}
        stored.setdefault(r["metric"]["__name__"], set()).add(frozenset(labels))
    assert {name: {labels} for name, labels in KAFKA_EXPORTER_LABELS.items()} == stored


def test_every_dashboard_panel_on_jvm_or_kafka_protocol_series_gets_data(scraped):
    from exporter.catalog import grafana
    from exporter.catalog.model import load_catalog
    _, prom = scraped
    panels = [(uid, expr, p) for uid, expr, p in grafana.queries(load_catalog()) if p.needs != "jmx"]
    assert {p.needs for _, _, p in panels} == {"jvm", "kafka"}
    empty = [f"{uid}: {p.title}: {expr}" for uid, expr, p in panels if not p.may_be_empty and not wait(
        lambda expr=expr: prom.query(expr.replace("$cluster", "dropin").replace("$node", ".*").replace("$group", ".*")), 30)]
    assert not empty, "panels without data:\n" + "\n".join(empty)
