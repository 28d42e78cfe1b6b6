"""Real Apache Kafka 4.x (both tested lines) started from the Maven jars, read by our sources over
JMX and through the Jolokia agent: the cluster signals our alerts stand on, on a healthy cluster
and after a broker is killed and restarted."""
import time

import pytest
from conftest import wait
from jvm_support import commit_when_ready, kafka_port_block, require_real_kafka, require_streams

from exporter.sample import SourceError
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from realkafka.cluster import RealCluster
from realkafka.install import LINES

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

# KafkaRaftMetrics' names in 4.x ("voted" and "resigned" are no states it reports)
RAFT_STATES = {"leader", "follower", "observer", "candidate", "prospective", "unattached",
               "unattached-voted", "prospective-voted"}


@pytest.fixture(scope="module", params=LINES)
def kafka(request):
    require_real_kafka(request.param)
    base = kafka_port_block(30)
    # retention checked every second (Kafka's default: 5 minutes), for the topic that sets retention.bytes
    cluster = RealCluster(request.param, brokers=3, controllers=3, jmx_base_port=base, kafka_base_port=base + 8,
                          jolokia_base_port=base + 16, sasl_base_port=base + 24, sasl_users={"monitor": "s3cret"},
                          tls_base_port=base + 27,
                          config={"log.retention.check.interval.ms": 1000, "log.initial.task.delay.ms": 1000})
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


def test_a_healthy_real_cluster_has_one_active_controller_and_every_broker_running(kafka):
    assert wait(lambda: controller_signals(kafka) == {"ActiveControllerCount": 1.0, "ActiveBrokerCount": 3.0,
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


def placement(kafka: RealCluster, topic: str) -> dict:
    """kafka_exporter's cluster families of one collection: name -> {(topic, partition) or broker id: value}."""
    from exporter.lag.families import render
    from exporter.lag.reader import Filter, KafkaReader
    reader = KafkaReader({"bootstrap.servers": kafka.bootstrap_servers()}, Filter(allow="^$"), Filter(allow=topic),
                         10.0, lag_seconds=False)
    try:
        families = render(reader.read(), {}, "real", True, 1000).families
    finally:
        reader.close()
    out: dict = {}
    for f in families:
        for s in f.samples:
            key = (s.labels["topic"], int(s.labels["partition"])) if "partition" in s.labels else s.labels.get("id")
            out.setdefault(f.name, {})[key] = s.labels.get("address", s.value)
    return out


def test_a_killed_broker_is_fenced_and_comes_back_after_restart(kafka):
    """Also kafka_exporter's cluster series (brokers, leaders, replicas, ISR, preferred leaders, under-replicated
    partitions) as the Kafka protocol shows them before, during and after."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers()})
    admin.create_topics([NewTopic("placed", 3, 3)])["placed"].result(60)
    ids = {node.node_id: f"127.0.0.1:{node.port}" for node in kafka.nodes.values() if node.role == "broker"}
    parts = [("placed", p) for p in range(3)]
    healthy = {"kafka_brokers": {None: 3.0}, "kafka_broker_info": {str(i): a for i, a in ids.items()},
               "kafka_topic_partition_replicas": dict.fromkeys(parts, 3.0),
               "kafka_topic_partition_in_sync_replica": dict.fromkeys(parts, 3.0),
               "kafka_topic_partition_leader_is_preferred": dict.fromkeys(parts, 1.0),
               "kafka_topic_partition_under_replicated_partition": dict.fromkeys(parts, 0.0)}
    assert wait(lambda: {k: v for k, v in placement(kafka, "placed").items() if k in healthy} == healthy, 60), \
        placement(kafka, "placed")
    dead = kafka.nodes["broker-3"].node_id
    led = {tp for tp, leader in placement(kafka, "placed")["kafka_topic_partition_leader"].items() if leader == dead}
    kafka.kill("broker-3")
    try:
        # broker.session.timeout.ms (9 s) without heartbeats: fenced, no longer active
        assert wait(lambda: controller_signals(kafka)["ActiveBrokerCount"] == 2.0, 60), controller_signals(kafka)
        with pytest.raises(SourceError):
            JmxSource("broker-3", kafka.urls()["broker-3"], includes=["kafka.server:*"], timeout_ms=3000).read()
        # fenced: out of the metadata's brokers and of every ISR; what it led is led by another
        fenced = wait(lambda: (lambda got: got if got["kafka_brokers"] == {None: 2.0} and set(
            got["kafka_topic_partition_under_replicated_partition"].values()) == {1.0} else None)(
            placement(kafka, "placed")), 60)
        assert fenced, placement(kafka, "placed")
        assert str(dead) not in fenced["kafka_broker_info"]
        assert set(fenced["kafka_topic_partition_in_sync_replica"].values()) == {2.0}
        assert dead not in fenced["kafka_topic_partition_leader"].values()
        assert {tp for tp, v in fenced["kafka_topic_partition_leader_is_preferred"].items() if v == 0.0} == led
    finally:
        kafka.restart("broker-3")
    assert wait(lambda: controller_signals(kafka)["ActiveBrokerCount"] == 3.0, 90), controller_signals(kafka)


def test_cluster_ids_are_kafkas_and_never_read_as_an_option():
    # one id in 64 starts with '-' by chance; kafka-storage then takes it for an option
    import base64

    from realkafka.cluster import random_cluster_id
    ids = [random_cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == 2000


# Beans Kafka creates on their first event (a rejected or failed produce, that error code): absent from
# a healthy cluster, so not items a template may poll unconditionally
FIRST_EVENT = {"produce_not_enough_replicas", "bytes_rejected", "failed_produce"}


def produce_and_consume(cluster: RealCluster, topic: str, records: int = 200) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers()})
    [future] = admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})]).values()
    future.result(timeout=60)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all"})
    for i in range(records):
        producer.produce(topic, key=str(i % 10), value=b"x" * 100)
    assert producer.flush(60) == 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": "catalog-check",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read, deadline = 0, time.monotonic() + 60
    while read < records and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            read += 1
    consumer.close()
    assert read == records


def test_every_catalog_item_resolves_on_its_role(kafka):
    from exporter.catalog.model import load_catalog
    produce_and_consume(kafka, "catalog-check")
    catalog = load_catalog()
    offered: dict[str, set[tuple[str, str]]] = {}
    for name in kafka.nodes:
        source = JmxSource(name, kafka.urls()[name], includes=["kafka.*:*", "java.lang:*"])
        offered[name] = {(on, attr) for on, attr, _ in source.describe()}
    missing, unexpected = [], []
    for m in catalog.metrics:
        if m.discovers or m.lld == "attribute":
            # discovered where Kafka has them: each broker's registration on the controllers that saw it
            # register, the heartbeat ages and the KIP-853 counts on the active controller only
            role_nodes = [n for n, node in kafka.nodes.items() if m.on(node.role)]
            holders = [n for n in role_nodes if any(
                attr == m.attribute and (_discovered(on, m.base, m.discovers) if m.discovers
                                         else _offers({(on, attr)}, m.mbean, m.attribute))
                for on, attr in offered[n])]
            if not holders:
                missing.append(f"{m.id}: on no {m.role}")
            elif (m.lld == "attribute" or m.id == "broker_heartbeat_age") and len(holders) != 1:
                unexpected.append(f"{m.id} on {holders} (the active controller only)")
            continue
        # a topic item is the all-topics bean and, by discovery, the bean of each topic
        beans = [m.mbean] + ([f"{m.mbean},topic=catalog-check"] if m.lld == "topic" else [])
        for name, node in kafka.nodes.items():
            if not m.on(node.role):
                continue
            here = all(_offers(offered[name], mbean, m.attribute) for mbean in beans)
            if m.id in FIRST_EVENT:
                if here:
                    unexpected.append(f"{m.id} on {name}")
            elif not here:
                missing.append(f"{m.id} on {name}: {beans} {m.attribute}")
    assert not missing, "\n".join(missing)
    assert not unexpected, "present on a healthy cluster: " + ", ".join(unexpected)


def _discovered(on: str, base: str, prop: str) -> bool:
    """on is base with prop added, whatever the order (a JVM puts name= first: java.lang:name=G1 Young
    Generation,type=GarbageCollector)."""
    from kafka_common.names import ObjectName
    props = dict(ObjectName.parse(on).props)
    return prop in props and {k: v for k, v in props.items() if k != prop} == dict(ObjectName.parse(base).props) \
        and on.split(":")[0] == base.split(":")[0]


def _offers(offered: set[tuple[str, str]], mbean: str, attribute: str) -> bool:
    """Key properties in another order name the same bean; HeapMemoryUsage.used is a key of a CompositeData
    attribute, which MBeanInfo declares as HeapMemoryUsage."""
    from kafka_common.names import ObjectName
    want = ObjectName.parse(mbean).canonical
    attribute = attribute.split(".")[0]
    return any(attr == attribute and ObjectName.parse(on).canonical == want for on, attr in offered)


def test_consumer_groups_of_both_protocols_are_read_with_their_type_members_and_lag(kafka):
    """The lag collection on real Kafka: a classic group left Empty with committed offsets, and a KIP-848
    group (group.protocol=consumer: DescribeGroups calls it Dead with no members, which peers report)."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from exporter.lag.reader import Filter, KafkaReader
    bootstrap = kafka.bootstrap_servers()
    admin = AdminClient({"bootstrap.servers": bootstrap})       # kept: its futures need the client alive
    admin.create_topics([NewTopic("lagged", 3, 3)])["lagged"].result(60)
    # compressed batches, the records' own times (CreateTime): what lag in seconds reads back
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": "zstd", "linger.ms": 50})
    written = int(time.time() * 1000) - 60_000
    for i in range(30):
        p.produce("lagged", value=str(i).encode(), partition=i % 3, timestamp=written + i)
    assert p.flush(30) == 0
    commit_when_ready(bootstrap, "old-style", "lagged", 3, 4)
    modern = Consumer({"bootstrap.servers": bootstrap, "group.id": "new-style", "group.protocol": "consumer",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    modern.subscribe(["lagged"])
    reader = KafkaReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 10.0)
    try:
        got = 0
        deadline = time.monotonic() + 60
        while got < 30 and time.monotonic() < deadline:
            got += sum(1 for m in modern.consume(30, 1.0) if m.error() is None)
        assert got == 30
        modern.commit(asynchronous=False)
        snap = reader.read()
        old, new = snap.groups["old-style"], snap.groups["new-style"]
        assert (old.type, old.state, old.members) == ("classic", "Empty", 0)
        assert [snap.lag("old-style", ("lagged", i)) for i in range(3)] == [6, 6, 6]
        # the record at offset 4 of partition p is the 13th + p written
        assert [snap.lag_seconds("old-style", ("lagged", i)) for i in range(3)] == pytest.approx(
            [snap.taken_at - (written + 12 + i) / 1000.0 for i in range(3)], abs=1e-6)
        assert (new.type, new.state, new.members) == ("consumer", "Stable", 1)
        assert (old.assigned, new.assigned) == ({}, {"lagged": 3})
        assert [snap.lag("new-style", ("lagged", i)) for i in range(3)] == [0, 0, 0]
    finally:
        modern.close()
        reader.close()


def test_records_retention_deleted_before_a_group_read_them_are_counted_lost(kafka):
    """A group stopped at offset 0 of a topic that keeps 1 MiB: once Kafka's retention has deleted 4 MB of it,
    the lag collection counts what the group lost, and says it has no margin left; 4.4's brokers publish
    RetentionSizeInPercent (KIP-1257) as the embedded cluster does."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from exporter.lag.reader import Filter, KafkaReader
    from exporter.lag.trends import TrendTracker
    bootstrap = kafka.bootstrap_servers()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    retention = {"retention.bytes": "1048576", "segment.bytes": "1048576"}
    admin.create_topics([NewTopic("retained", 1, 3, config=retention)])["retained"].result(60)
    commit_when_ready(bootstrap, "late", "retained", 1, 0)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(4_000):
        p.produce("retained", value=b"x" * 1_000, key=str(i).encode())
        p.poll(0)
    assert p.flush(60) == 0
    reader = KafkaReader({"bootstrap.servers": bootstrap}, Filter(allow="^late$"), Filter(allow="^retained$"), 10.0)
    tracker = TrendTracker(window_s=60)
    try:
        snap = wait(lambda: (s := reader.read()).starts.get(("retained", 0)) and s, timeout=60, step=1.0)
        assert snap, "Kafka's retention deleted nothing within 60 s"
        start = snap.starts[("retained", 0)]
        trends = tracker.update(snap)
        assert 900 < start < 4_000 and trends.lost[("late", "retained")] == start        # a segment or more
        trend = trends.by_group_topic[("late", "retained")]
        assert (trend.margin_records, trend.margin_seconds) == (0, 0.0)
        assert snap.retention["retained"] == (604_800_000, 1_048_576)
        assert tracker.update(reader.read()).lost[("late", "retained")] >= start        # counted once
    finally:
        reader.close()
    if kafka.line != "4.1":
        # every replica's log runs the retention check that sets it (RF 3: each broker has one), each on its
        # own schedule: a follower's may come a check later than the leader's deletion
        bean = "kafka.log:type=Log,name=RetentionSizeInPercent,topic=retained,partition=0"
        broker = next(name for name, node in kafka.nodes.items() if node.role == "broker")
        percent = wait(lambda: (v := values(kafka, broker, [bean])[(bean, "Value")]) > 0 and v, timeout=30, step=1.0)
        assert percent and percent < 300, percent


def test_share_groups_are_read_over_sasl_and_tls_with_their_members_start_offsets_and_lag(kafka):
    """KIP-932 share groups (production-ready from Kafka 4.2; off in 4.1, whose reader finds none), read
    through a SASL listener: librdkafka and the reader's own connection (exporter/lag/connection.py)
    both authenticate with SCRAM; PLAIN works, a wrong password is named. And through a TLS listener
    (a CA made for the cluster): both verify the broker's certificate."""
    from confluent_kafka import Producer, ShareConsumer
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewTopic,
        ResourceType,
    )

    from exporter.lag.connection import BrokerConnection, KafkaProtocolError
    from exporter.lag.filters import Filter
    from exporter.lag.reader import KafkaReader
    sasl = {"bootstrap.servers": kafka.sasl_bootstrap_servers(), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "monitor", "sasl.password": "s3cret"}
    host, port = kafka.sasl_bootstrap_servers().split(",")[0].split(":")
    plain = BrokerConnection(host, int(port), {**sasl, "sasl.mechanism": "PLAIN"}, 5.0)
    plain.close()
    with pytest.raises(KafkaProtocolError, match="SASL authentication failed"):
        BrokerConnection(host, int(port), {**sasl, "sasl.password": "wrong"}, 5.0)
    bootstrap = kafka.bootstrap_servers()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("queued", 2, 3)])["queued"].result(60)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})

    def produce(n: int) -> None:
        for i in range(n):
            p.produce("queued", value=str(i).encode(), partition=i % 2)
        assert p.flush(30) == 0
    produce(40)
    reader = KafkaReader(sasl, Filter(), Filter(deny="^__.*"), 10.0)
    tls = KafkaReader({"bootstrap.servers": kafka.tls_bootstrap_servers(), "security.protocol": "SSL",
                       "ssl.ca.location": str(kafka.tls_ca)}, Filter(), Filter(deny="^__.*"), 10.0)
    try:
        over_tls = tls.read()
        assert over_tls.errors == [] and over_tls.partitions["queued"] == 2
        if kafka.line == "4.1":
            snap = reader.read()
            assert [g for g in snap.groups.values() if g.type == "share"] == [] and snap.errors == []
            return
        group = ConfigResource(ResourceType.GROUP, "workers", incremental_configs=[ConfigEntry(
            "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([group])[group].result(30)
        consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "workers"})
        consumer.subscribe(["queued"])
        got, deadline = 0, time.monotonic() + 60
        while got < 40 and time.monotonic() < deadline:
            got += sum(1 for m in consumer.poll(1.0) if m.error() is None)
        assert got == 40
        consumer.poll(0.5)          # acknowledges the last records (implicit acknowledgement)
        live = reader.read().groups["workers"]
        assert (live.type, live.state, live.members, live.assigned) == ("share", "Stable", 1, {"queued": 2})
        consumer.close()
        produce(10)

        def stopped_with_lag():
            snap = reader.read()
            g = snap.groups.get("workers")
            lags = [snap.lag("workers", ("queued", i)) for i in range(2)]
            return (g is not None and (g.state, g.members) == ("Empty", 0) and lags == [5, 5]
                    and all(snap.lag_seconds("workers", ("queued", i)) > 0 for i in range(2)) and snap)
        snap = wait(stopped_with_lag, 60)
        assert snap, reader.read()
        assert snap.errors == []
        over_tls = tls.read()
        assert over_tls.groups["workers"].type == "share" and over_tls.errors == []
        assert [over_tls.lag("workers", ("queued", i)) for i in range(2)] == [5, 5]
    finally:
        reader.close()
        tls.close()


def test_a_kafka_streams_application_is_read_as_a_streams_group_with_its_tasks_and_lag(kafka):
    """A Kafka Streams 4.4 application (realkafka/java/StreamsApp.java: a count, so it reads its input and a
    repartition topic). On 4.4 with group.protocol=streams (KIP-1071), a streams group, which librdkafka
    neither lists nor describes: its state, members, the partitions its active tasks process and its lag, also
    once it stopped. 4.1 serves no streams groups: the same application with the classic protocol is a
    classic group there."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from exporter.lag.reader import Filter, KafkaReader
    from realkafka.streams import StreamsApp
    require_streams()
    bootstrap = kafka.bootstrap_servers()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic("words", 3, 3), NewTopic("counts", 3, 3)]).values():
        future.result(60)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})

    def produce(n: int, prefix: str) -> None:
        for i in range(n):
            p.produce("words", value=f"{prefix}{i % 5}".encode(), partition=i % 3)
        assert p.flush(30) == 0
    produce(30, "a")
    streams = kafka.line != "4.1"
    app = StreamsApp(bootstrap, "counter", "words", "counts", protocol="streams" if streams else "classic")
    repartition = "counter-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition"
    reader = KafkaReader({"bootstrap.servers": bootstrap}, Filter(allow="^counter$"), Filter(deny="^__.*"), 10.0)
    try:
        app.start(timeout_s=180)        # javac in memory, then Kafka Streams: minutes on a loaded machine

        def caught_up():
            snap = reader.read()
            g = snap.groups.get("counter")
            return (g is not None and g.state == "Stable" and [snap.lag("counter", ("words", i)) for i in range(3)] == [0] * 3
                    and snap)
        snap = wait(caught_up, 120, step=1.0)
        assert snap, (reader.read(), app.output[-20:])
        live = snap.groups["counter"]
        assert snap.errors == [] and (live.type, live.members) == ("streams" if streams else "classic", 1), snap.errors
        # its one member runs every task: each of the input's and the repartition topic's partitions
        assert live.assigned == {"words": 3, repartition: 3}
        assert all(live.committed[(repartition, i)] >= 0 for i in range(3))
        app.stop()
        produce(12, "b")

        def stopped_with_lag():
            snap = reader.read()
            g = snap.groups.get("counter")
            return (g is not None and (g.state, g.members) == ("Empty", 0)
                    and [snap.lag("counter", ("words", i)) for i in range(3)] == [4, 4, 4] and snap)
        snap = wait(stopped_with_lag, 90, step=1.0)
        assert snap, reader.read()
        assert snap.errors == [] and all(snap.lag_seconds("counter", ("words", i)) > 0 for i in range(3)), snap.errors
    finally:
        app.stop()
        reader.close()
