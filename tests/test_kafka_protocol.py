"""The embedded brokers speak the Kafka protocol: real clients (confluent-kafka: librdkafka 2.x)
produce to and consume from the wall-clock cluster, through the simulation's own request handling."""
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from broker.structs import TopicPartition as SimTP
from broker.wire.listener import start_listeners
from conftest import wait, wall_clock_cluster
from jvm_support import free_port_block, require_real_kafka

pytestmark = pytest.mark.slow
FAST = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000, "offsets.topic.replication.factor": 3,
        "replica.lag.time.max.ms": 2000}


@pytest.fixture(scope="module")
def wire():
    with wall_clock_cluster(3, 1, 7, FAST, ("orders", 3, 3, 2)) as cluster:
        port = free_port_block(3, low=20000)
        listeners = start_listeners(cluster, port)
        yield cluster, ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        for listener in listeners:
            listener.stop()


def test_metadata_names_every_broker_and_partition_leader(wire):
    cluster, bootstrap = wire
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert md.cluster_id == cluster.cluster_id
    assert sorted(md.brokers) == [1, 2, 3]
    with cluster.sched.lock:
        leaders = [p.leader for p in cluster.active_controller().image.topics["orders"].partitions]
    assert [md.topics["orders"].partitions[i].leader for i in range(3)] == leaders
    assert md.topics["orders"].partitions[0].isrs and len(md.topics["orders"].partitions[0].replicas) == 3


def test_records_produced_with_acks_all_come_back_in_order_per_key(wire):
    cluster, bootstrap = wire
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": True})
    delivered = []
    for i in range(200):
        p.produce("orders", key=f"k{i % 10}".encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    assert p.flush(30) == 0
    assert len(delivered) == 200 and all(err is None for err, _, _ in delivered), delivered[:3]
    with cluster.sched.lock:
        messages_in = sum(b.mbeans.read("kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders")
                          ["Count"] for b in cluster.brokers.values()
                          if "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders" in b.mbeans)
    assert messages_in >= 200            # the simulation's own meters moved
    with cluster.sched.lock:             # idempotent: the batches carry the producer id the broker gave
        pids = {b.producer_id for node in cluster.brokers.values()
                for tp, part in node.replica_manager.partitions.items() if tp.topic == "orders" and part.is_leader
                for b in part.log.read(0, 1 << 30)}
    assert any(pid >= 0 for pid in pids)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition("orders", i, 0) for i in range(3)])
    seen: dict[bytes, list[int]] = {}
    try:
        def read() -> bool:
            for msg in c.consume(500, 1.0):
                if msg.error() is None and msg.value().startswith(b"v"):
                    seen.setdefault(msg.key(), []).append(int(msg.value()[1:]))
            return sum(len(v) for v in seen.values()) >= 200
        assert wait(read, 60), {k: len(v) for k, v in seen.items()}
    finally:
        c.close()
    for key, values in seen.items():
        assert values == sorted(values), key            # one key, one partition, in order


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_are_read_as_the_client_wrote_them(wire, codec):
    cluster, bootstrap = wire
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": codec, "linger.ms": 20})
    values = [f"{codec}-{i}-".encode() * 20 for i in range(50)]
    for v in values:
        p.produce("orders", value=v, partition=1)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"z-{codec}", "enable.auto.commit": False})
    c.assign([TopicPartition("orders", 1, 0)])
    got: list[bytes] = []
    try:
        assert wait(lambda: got.extend(m.value() for m in c.consume(500, 1.0)
                                       if m.error() is None and m.value() and m.value().startswith(codec.encode()))
                    or len(got) >= 50, 60)
    finally:
        c.close()
    assert got == values


def test_a_dead_broker_refuses_connections(wire):
    cluster, bootstrap = wire
    with cluster.sched.lock:
        cluster.kill("broker-3")
    try:
        only_dead = bootstrap.split(",")[2]
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": only_dead}).list_topics(timeout=3)
    finally:
        with cluster.sched.lock:
            cluster.restart("broker-3")


def test_under_min_isr_a_real_producer_gets_not_enough_replicas_with_acks_all_only(wire):
    from confluent_kafka import KafkaError
    cluster, bootstrap = wire
    with cluster.sched.lock:
        state = cluster.active_controller().image.partition("orders", 0)
        followers = [f"broker-{r}" for r in state.replicas if r != state.leader]
        for name in followers:
            cluster.kill(name)
    try:
        def isr_shrunk() -> bool:
            with cluster.sched.lock:
                return len(cluster.active_controller().image.partition("orders", 0).isr) == 1
        assert wait(isr_shrunk, 30)

        def produce(acks: str) -> list:
            reports: list = []
            p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "retries": 0, "message.timeout.ms": 5000})
            p.produce("orders", value=b"x", partition=0, on_delivery=lambda err, msg: reports.append(err))
            p.flush(15)
            return reports
        [err] = produce("all")
        assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS
        assert produce("1") == [None]
        # acknowledged by the leader alone: above the high watermark, invisible to consumers
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw", "enable.auto.commit": False})
        low, high = c.get_watermark_offsets(TopicPartition("orders", 0), timeout=10)
        with cluster.sched.lock:
            end = cluster.brokers[f"broker-{state.leader}"].replica_manager.partitions[SimTP("orders", 0)].log.end_offset
        assert high < end
        c.assign([TopicPartition("orders", 0, high - 1 if high else 0)])
        offsets = [m.offset() for _ in range(3) for m in c.consume(100, 1.0) if m.error() is None]
        c.close()
        assert offsets and max(offsets) < high
    finally:
        with cluster.sched.lock:
            for name in followers:
                cluster.restart(name)


def test_cluster_run_prints_the_bootstrap_servers_real_clients_use(tmp_path):
    import subprocess
    import sys
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {brokers: 3, controllers: 1}\n"
                        "topics:\n  - {name: events, partitions: 2, replication_factor: 3, min_insync_replicas: 2}\n")
    port = free_port_block(3, low=20000)
    proc = subprocess.Popen([sys.executable, "-m", "kafka_jmx", "cluster", "run", str(scenario), "--duration", "120s",
                             "--kafka-base-port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"bootstrap.servers=127.0.0.1:{port},127.0.0.1:{port + 1},127.0.0.1:{port + 2}"
        bootstrap = line.split("=", 1)[1]
        def led() -> bool:
            try:
                topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).topics
            except KafkaException:
                return False        # the cluster is still electing its controller
            return "events" in topics and all(p.leader >= 0 for p in topics["events"].partitions.values())
        assert wait(led, 60)
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        p.produce("events", key=b"k", value=b"hello")
        assert p.flush(30) == 0
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False})
        partition = next(i for i in range(2)
                         if c.get_watermark_offsets(TopicPartition("events", i), timeout=10)[1] == 1)
        c.assign([TopicPartition("events", partition, 0)])
        got = []
        assert wait(lambda: got.extend(m.value() for m in c.consume(10, 1.0) if m.error() is None) or got, 30)
        c.close()
        assert got == [b"hello"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_group_of_real_consumers_shares_the_partitions_commits_and_rebalances(wire):
    from confluent_kafka import ConsumerGroupTopicPartitions
    cluster, bootstrap = wire
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(60):
        p.produce("orders", key=f"g{i}".encode(), value=f"g{i}".encode())
    assert p.flush(30) == 0
    config = {"bootstrap.servers": bootstrap, "group.id": "billing", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    first, second = Consumer(config), Consumer(config)
    seen: dict[int, set[int]] = {}

    def drain(consumers) -> None:
        for c in consumers:
            for m in c.consume(100, 0.5):
                if m.error() is None:
                    seen.setdefault(m.partition(), set()).add(m.offset())

    def owned(c) -> set[int]:
        return {tp.partition for tp in c.assignment()}
    try:
        first.subscribe(["orders"])
        assert wait(lambda: (drain([first]), owned(first) == {0, 1, 2})[1], 60)
        second.subscribe(["orders"])
        # a second member: the group rebalances and every partition is owned once
        assert wait(lambda: (drain([first, second]), owned(first) | owned(second) == {0, 1, 2}
                             and not owned(first) & owned(second) and owned(second))[1], 60)
        ends = {i: first.get_watermark_offsets(TopicPartition("orders", i), timeout=10)[1] for i in range(3)}
        assert wait(lambda: (drain([first, second]), all(max(seen.get(i, {-1})) + 1 >= ends[i] for i in range(3)))[1], 60)
        for c in (first, second):
            c.commit(asynchronous=False)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        groups = admin.list_consumer_groups().result(timeout=10)
        assert "billing" in {g.group_id for g in groups.valid}
        [offsets] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("billing")]).values()
        committed = {tp.partition: tp.offset for tp in offsets.result(timeout=10).topic_partitions}
        assert committed == ends
        [described] = admin.describe_consumer_groups(["billing"]).values()
        assert len(described.result(timeout=10).members) == 2
        # the second member leaves: the first owns everything again
        second.close()
        assert wait(lambda: (drain([first]), owned(first) == {0, 1, 2})[1], 60)
    finally:
        first.close()


def test_the_admin_client_describes_the_cluster(wire):
    cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_cluster().result(timeout=10)
    assert described.cluster_id == cluster.cluster_id
    assert sorted(n.id for n in described.nodes) == [1, 2, 3]
    assert {n.port for n in described.nodes} == {int(b.split(":")[1]) for b in bootstrap.split(",")}


def test_the_admin_client_creates_topics_through_the_controller(wire):
    from confluent_kafka.admin import NewTopic
    cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [made] = admin.create_topics([NewTopic("made", 4, 3, config={"min.insync.replicas": "2"})]).values()
    made.result(timeout=30)
    assert wait(lambda: len(admin.list_topics(timeout=10).topics.get("made").partitions) == 4
                if "made" in admin.list_topics(timeout=10).topics else False, 30)
    with cluster.sched.lock:
        assert cluster.active_controller().image.topics["made"].configs.get("min.insync.replicas") == 2
    for topic, error in ((NewTopic("made", 1, 1), "TOPIC_ALREADY_EXISTS"),
                         (NewTopic("wide", 1, 5), "INVALID_REPLICATION_FACTOR"),
                         (NewTopic("bad", 1, 1, config={"min.insync.replicas": "many"}), "INVALID_CONFIG")):
        [future] = admin.create_topics([topic]).values()
        with pytest.raises(KafkaException) as e:
            future.result(timeout=30)
        assert e.value.args[0].name() == error


def kafka_tool(main_class: str, *args: str, stdin: str | None = None) -> str:
    """One of Kafka's own command-line tools (the 4.1 jars of realkafka/pom.xml), as kafka-*.sh runs it."""
    import subprocess
    from realkafka.install import classpath
    run = subprocess.run(["java", "-Xmx256m", "-cp", classpath("4.1"), main_class, *args], input=stdin,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_kafkas_own_tools_produce_consume_and_describe_the_groups_lag(wire):
    require_real_kafka("4.1")
    cluster, bootstrap = wire
    kafka_tool("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bootstrap, "--topic", "orders",
               "--property", "parse.key=true", "--property", "key.separator=:",
               stdin="".join(f"cli{i}:from-the-cli-{i}\n" for i in range(10)))
    out = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", bootstrap,
                     "--topic", "orders", "--from-beginning", "--group", "cli", "--timeout-ms", "20000",
                     "--consumer-property", "auto.commit.interval.ms=100")
    assert sum(1 for line in out.splitlines() if line.startswith("from-the-cli-")) == 10
    # what the group committed and the partitions' ends, as Kafka's tool and our client see them
    described = kafka_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                           bootstrap, "--describe", "--group", "cli")
    rows = [line.split() for line in described.splitlines() if line.startswith("cli ")]
    lag = {int(r[2]): (int(r[3]), int(r[4]), int(r[5])) for r in rows}      # current, log end, lag
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cli"})
    try:
        committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition("orders", i) for i in range(3)],
                                                                   timeout=10)}
        ends = {i: c.get_watermark_offsets(TopicPartition("orders", i), timeout=10)[1] for i in range(3)}
    finally:
        c.close()
    assert lag == {i: (committed[i], ends[i], ends[i] - committed[i]) for i in range(3)}
