"""The queries dashboards and alerts built on jmx_exporter's agent and on kafka_exporter run, on a real
Prometheus 3 scraping `serve` (its config file: JMX targets and the `kafka:` section) in front of real Kafka
with traffic and a lagging consumer group: every one returns data, and the cluster's shape comes out right.
The same `serve` pushes over OTLP (its `otlp:` section) to a second Prometheus 3's OTLP receiver: the pushed
series are the scraped ones, every panel and alert expression answers alike, and a broker's loss fires the
same alerts and leaves its series stale on both."""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from conftest import wait
from jvm_support import commit_when_ready, free_port_block, kafka_port_block, require_real_kafka
from prometheus_server import PrometheusServer, rules_for

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
    daemon = prom = pushed = None
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
        port, pushed_port = free_port_block(1, low=20000), free_port_block(1, low=20000)
        rules = rules_for(state, brokers_min=3, hold_max="10s")
        # the receiver keeps the names as pushed (a counter's _total is already there)
        pushed = PrometheusServer(state / "pushed", pushed_port, [], [], config={
            "global": {"evaluation_interval": "2s"}, "rule_files": [rules],
            "otlp": {"translation_strategy": "UnderscoreEscapingWithoutSuffixes"}},
            flags=("--web.enable-otlp-receiver",))
        pushed.start()
        targets = "".join(f"  - {{name: {n}, role: {node.role}, node_id: {node.node_id}, jmx: {{url: '{node.jmx_url}'}}}}\n"
                          for n, node in cluster.nodes.items())
        config = state / "exporter.yml"
        config.write_text(f"cluster: dropin\ncollection: {{interval: 2s, timeout: 10s}}\nprometheus: {{listen: '127.0.0.1:{port}'}}\n"
                          f"include: ['kafka.server:*', 'kafka.controller:*']\ntargets:\n{targets}"
                          f"kafka: {{bootstrap_servers: '{bootstrap}', interval: 2s}}\n"
                          f"otlp: {{endpoint: '{pushed.url}/api/v1/otlp/v1/metrics', interval: 2s}}\n")
        daemon = Daemon.from_config(load_config(config.read_text(), str(config)))
        daemon.start()
        prom = PrometheusServer(state / "prom", free_port_block(1, low=20000), [f"127.0.0.1:{port}"], [rules])
        prom.start()
        assert wait(lambda: prom.query(f"count(kafkajmx_target_up == 1) == {len(cluster.nodes)}"), 120), \
            prom.query("kafkajmx_target_up")
        # a minute of rates needs two scrapes at least
        assert wait(lambda: prom.query('count(rate(kafka_topic_partition_current_offset{topic="payments"}[1m]) > 0) == 3'),
                    120), "no offsets moving in Prometheus"
        assert wait(lambda: pushed.query(f"count(kafkajmx_target_up == 1) == {len(cluster.nodes)}"), 60), \
            (pushed.query("kafkajmx_target_up"), daemon.otlp.last_error if daemon.otlp else None)
        yield cluster, prom, pushed
    finally:
        stop.set()
        for server in (prom, pushed):
            if server is not None:
                server.stop()
        if daemon is not None:
            daemon.stop()
        cluster.stop()
        JmxReader.stop_all()
        shutil.rmtree(state, ignore_errors=True)


def test_jmx_exporter_agent_queries_get_data_for_every_node(scraped):
    cluster, prom, _ = scraped
    nodes = set(cluster.nodes)
    empty = [q for q in JVM_QUERIES if not wait(lambda q=q: prom.query(q), 30)]
    assert empty == []
    for expr in ('jvm_memory_used_bytes{area="heap"} > 0', "rate(process_cpu_seconds_total[1m]) > 0",
                 'jvm_threads_state{state="RUNNABLE"} > 0'):
        assert wait(lambda expr=expr: {r["metric"]["node"] for r in prom.query(expr)} == nodes, 30), prom.query(expr)
    assert all(0 < float(r["value"][1]) < 1 for r in prom.query("process_open_fds / process_max_fds"))


def test_kafka_exporter_queries_get_data_and_the_clusters_shape(scraped):
    _, prom, _ = scraped
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
    _, prom, _ = scraped
    names = "|".join(KAFKA_EXPORTER_LABELS)
    stored: dict[str, set[frozenset[str]]] = {}
    for r in prom.query(f'{{__name__=~"{names}"}}'):
        labels = set(r["metric"]) - {"__name__", "instance", "job", "cluster"}
        stored.setdefault(r["metric"]["__name__"], set()).add(frozenset(labels))
    assert {name: {labels} for name, labels in KAFKA_EXPORTER_LABELS.items()} == stored


def test_every_dashboard_panel_on_jvm_or_kafka_protocol_series_gets_data(scraped):
    from exporter.catalog import grafana
    from exporter.catalog.model import load_catalog
    _, prom, _ = scraped
    panels = [(uid, expr, p) for uid, expr, p in grafana.queries(load_catalog()) if p.needs != "jmx"]
    assert {p.needs for _, _, p in panels} == {"jvm", "kafka"}
    empty = [f"{uid}: {p.title}: {expr}" for uid, expr, p in panels if not p.may_be_empty and not wait(
        lambda expr=expr: prom.query(expr.replace("$cluster", "dropin").replace("$node", ".*").replace("$group", ".*")), 30)]
    assert not empty, "panels without data:\n" + "\n".join(empty)


def answer(prom: PrometheusServer, expr: str) -> set[frozenset]:
    """The label sets of a query's answer, without what tells a scrape from a push apart (job and instance)."""
    return {frozenset((k, v) for k, v in r["metric"].items() if k not in ("job", "instance")) for r in prom.query(expr)}


def series(prom: PrometheusServer) -> set[frozenset]:
    """Every series of the cluster (a push also stores its resources as target_info)."""
    return answer(prom, '{cluster="dropin", __name__!="target_info"}')


def test_the_pushed_series_are_the_scraped_series(scraped):
    _, prom, pushed = scraped
    # both take the same collections, two seconds apart at most: the same series within a few tries
    assert wait(lambda: series(prom) == series(pushed), 30), (len(series(prom)), len(series(pushed)),
                                                             sorted(map(sorted, series(prom) ^ series(pushed)))[:10])
    assert len(series(prom)) > 1000


def test_every_panel_and_alert_expression_answers_alike_on_pushed_series(scraped):
    import yaml

    from exporter.catalog import grafana
    from exporter.catalog.model import load_catalog
    _, prom, pushed = scraped
    exprs = [expr.replace("$cluster", "dropin").replace("$node", ".*").replace("$group", ".*")
             for _, expr, _ in grafana.queries(load_catalog())]
    rules = yaml.safe_load((Path(__file__).parents[1] / "templates" / "prometheus" / "kafka-4x-alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    differ = [e for e in exprs if not wait(lambda e=e: answer(prom, e) == answer(pushed, e), 20)]
    assert not differ, "answers differ:\n" + "\n".join(f"{e}: scraped {answer(prom, e)} pushed {answer(pushed, e)}"
                                                    for e in differ[:5])
    assert sum(1 for e in exprs if answer(pushed, e)) > 40


def firing(prom: PrometheusServer) -> set[tuple[str, str]]:
    return {(a["labels"]["alertname"], a["labels"].get("node", "")) for a in prom.alerts() if a["state"] == "firing"}


def test_a_lost_broker_fires_the_same_alerts_and_goes_stale_on_pushed_series(scraped):
    """Run last: the cluster stays one broker short. A series that disappears is pushed once as NO_RECORDED_VALUE,
    the staleness marker a scrape leaves; without it the dead broker's last values would stay five minutes."""
    cluster, prom, pushed = scraped
    # the group left behind lags and has no members: its alerts fire on both before the loss
    assert wait(lambda: firing(prom) == firing(pushed) and firing(prom), 60), (firing(prom), firing(pushed))
    assert all(name.startswith("KafkaConsumerGroup") for name, _ in firing(prom)), firing(prom)
    cluster.kill("broker-3")
    want = {("KafkaActiveBrokersBelowMinimum", ""), ("KafkaTargetDown", "broker-3")}
    for server in (prom, pushed):
        assert wait(lambda server=server: want <= firing(server), 120), firing(server)
        assert wait(lambda server=server: not server.query('kafka_server_replicamanager_partitioncount{node="broker-3"}'), 30)
    assert wait(lambda: firing(prom) == firing(pushed), 30), (firing(prom), firing(pushed))
