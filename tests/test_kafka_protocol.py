"""The embedded brokers speak the Kafka protocol: real clients (confluent-kafka: librdkafka 2.x)
produce to and consume from the wall-clock cluster, through the simulation's own request handling."""
import itertools
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from conftest import wait, wall_clock_cluster
from jvm_support import free_port_block, require_real_kafka

from broker.structs import TopicPartition as SimTP
from broker.wire.listener import start_listeners

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
    _cluster, bootstrap = wire
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


def test_an_isolated_broker_never_answers(wire):
    import time
    cluster, bootstrap = wire
    with cluster.sched.lock:
        cluster.isolate("broker-3")
    try:
        started = time.monotonic()
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": bootstrap.split(",")[2]}).list_topics(timeout=3)
        assert time.monotonic() - started >= 2.5          # a timeout, not a refusal
    finally:
        with cluster.sched.lock:
            cluster.heal("broker-3")
    assert wait(lambda: cluster.ready(), 30)


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
        _low, high = c.get_watermark_offsets(TopicPartition("orders", 0), timeout=10)
        with cluster.sched.lock:
            end = cluster.brokers[f"broker-{state.leader}"].replica_manager.partitions[SimTP("orders", 0)].log.end_offset
        assert high < end
        c.assign([TopicPartition("orders", 0, high - 1 if high else 0)])
        offsets: list[int] = []
        deadline = time.monotonic() + 20            # a loaded machine: the fetch may take seconds
        while not offsets and time.monotonic() < deadline:
            offsets = [m.offset() for m in c.consume(100, 1.0) if m.error() is None]
        offsets += [m.offset() for m in c.consume(100, 2.0) if m.error() is None]     # anything above would come now
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
    # SIGTERM stops `cluster run` as Ctrl-C does: what it started is stopped (with real Kafka: its JVMs)
    assert proc.returncode == 0


def produce_keyed(bootstrap: str, prefix: str, n: int = 60) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(n):
        p.produce("orders", key=f"{prefix}{i}".encode(), value=f"{prefix}{i}".encode())
    assert p.flush(30) == 0


def poll(consumers) -> None:
    for c in consumers:
        c.consume(100, 0.5)


def owned_by(c) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def split_and_catch_up(first, second) -> dict[int, int]:
    """first joins and takes every partition of orders; second joins and the group splits them, each owned
    once; both read until each partition's owner is at its end (a partition handed over is read again from
    its commit). Returns the ends."""
    first.subscribe(["orders"])
    assert wait(lambda: (poll([first]), owned_by(first) == {0, 1, 2})[1], 60)
    second.subscribe(["orders"])
    assert wait(lambda: (poll([first, second]), owned_by(first) | owned_by(second) == {0, 1, 2}
                         and not owned_by(first) & owned_by(second) and owned_by(second))[1], 60)
    ends = {i: first.get_watermark_offsets(TopicPartition("orders", i), timeout=10)[1] for i in range(3)}

    def positions() -> dict[int, int]:
        return {tp.partition: tp.offset for c in (first, second) for tp in c.position(c.assignment())}
    assert wait(lambda: (poll([first, second]), positions() == ends)[1], 60), (positions(), ends)
    return ends


def test_a_group_of_real_consumers_shares_the_partitions_commits_and_rebalances(wire):
    from confluent_kafka import ConsumerGroupTopicPartitions
    _cluster, bootstrap = wire
    produce_keyed(bootstrap, "g")
    config = {"bootstrap.servers": bootstrap, "group.id": "billing", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    first, second = Consumer(config), Consumer(config)
    try:
        ends = split_and_catch_up(first, second)
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
        second = None
        assert wait(lambda: (poll([first]), owned_by(first) == {0, 1, 2})[1], 60)
    finally:
        for c in (first, second):
            if c is not None:           # a member left open would keep the group rebalancing for the next tests
                c.close()


def test_real_consumers_of_the_new_group_protocol_share_rebalance_commit_and_are_described(wire):
    """librdkafka with group.protocol=consumer (KIP-848): the coordinator assigns over ConsumerGroupHeartbeat
    (partitions by topic id), a second member gets its share once the first let go, commits go by member epoch,
    the admin client lists and describes a consumer group with its members; the first takes all back when the
    second leaves."""
    from confluent_kafka import ConsumerGroupTopicPartitions, ConsumerGroupType
    _cluster, bootstrap = wire
    produce_keyed(bootstrap, "k")
    config = {"bootstrap.servers": bootstrap, "group.id": "billing-848", "group.protocol": "consumer",
              "auto.offset.reset": "earliest", "enable.auto.commit": False}
    first, second = Consumer(config), Consumer(config)
    try:
        ends = split_and_catch_up(first, second)
        for c in (first, second):
            assert all(tp.error is None for tp in c.commit(asynchronous=False))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = {g.group_id: g for g in admin.list_consumer_groups().result(timeout=10).valid}
        assert listed["billing-848"].type == ConsumerGroupType.CONSUMER
        [offsets] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("billing-848")]).values()
        assert {tp.partition: tp.offset for tp in offsets.result(timeout=10).topic_partitions} == ends
        [described] = admin.describe_consumer_groups(["billing-848"]).values()
        group = described.result(timeout=10)
        assert group.type == ConsumerGroupType.CONSUMER and str(group.state).endswith("STABLE")
        assert sorted(tp.partition for m in group.members for tp in m.assignment.topic_partitions) == [0, 1, 2]
        second.close()
        second = None
        assert wait(lambda: (poll([first]), owned_by(first) == {0, 1, 2})[1], 60)
    finally:
        for c in (first, second):
            if c is not None:           # a member left open would keep the group rebalancing for the next tests
                c.close()


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
    _cluster, bootstrap = wire
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


def test_kafkas_own_console_consumer_joins_with_the_new_group_protocol(wire):
    """Kafka's Java consumer with group.protocol=consumer (its AsyncKafkaConsumer) reads and commits through the
    embedded coordinator; Kafka's group tool describes the group's members and lag."""
    require_real_kafka("4.1")
    _cluster, bootstrap = wire
    kafka_tool("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bootstrap, "--topic", "orders",
               stdin="".join(f"new-protocol-{i}\n" for i in range(10)))
    out = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", bootstrap,
                     "--topic", "orders", "--from-beginning", "--group", "cli-848", "--timeout-ms", "20000",
                     "--consumer-property", "group.protocol=consumer",
                     "--consumer-property", "auto.commit.interval.ms=100")
    assert sum(1 for line in out.splitlines() if line.startswith("new-protocol-")) == 10
    described = kafka_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                           bootstrap, "--describe", "--group", "cli-848")
    rows = [line.split() for line in described.splitlines() if line.startswith("cli-848 ")]
    assert sorted(int(r[2]) for r in rows) == [0, 1, 2]
    assert all(int(r[5]) == 0 for r in rows), described          # it committed all it read: no lag


def test_the_admin_client_describes_configs_and_deletes_topics(wire):
    from confluent_kafka.admin import ConfigResource, NewTopic
    cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [made] = admin.create_topics([NewTopic("doomed", 2, 3, config={"min.insync.replicas": "2"})]).values()
    made.result(timeout=30)
    [topic] = admin.describe_configs([ConfigResource("topic", "doomed")]).values()
    entries = topic.result(timeout=10)
    assert entries["min.insync.replicas"].value == "2" and entries["min.insync.replicas"].source == 1
    assert entries["unclean.leader.election.enable"].value == "false"
    [broker] = admin.describe_configs([ConfigResource("broker", "2")]).values()
    entries = broker.result(timeout=10)
    assert entries["replica.lag.time.max.ms"].value == "2000"       # the cluster's own setting
    assert entries["replica.lag.time.max.ms"].source == 4 and entries["replica.lag.time.max.ms"].is_read_only
    [deleted] = admin.delete_topics(["doomed"]).values()
    deleted.result(timeout=30)
    assert wait(lambda: "doomed" not in admin.list_topics(timeout=10).topics, 30)
    with cluster.sched.lock:
        assert not any(tp.topic == "doomed" for b in cluster.brokers.values() for tp in b.log_manager.disk.logs)
    [again] = admin.delete_topics(["doomed"]).values()
    with pytest.raises(KafkaException) as e:
        again.result(timeout=30)
    assert e.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART"         # librdkafka's name for it


def test_a_consumer_finds_offsets_by_time(wire):
    import time
    _cluster, bootstrap = wire
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    marks = []
    for i in range(3):
        marks.append(int(time.time() * 1000))
        p.produce("orders", value=f"t{i}".encode(), partition=1)
        assert p.flush(10) == 0
        time.sleep(0.3)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "by-time"})
    try:
        found = c.offsets_for_times([TopicPartition("orders", 1, marks[1])], timeout=10)[0].offset
        c.assign([TopicPartition("orders", 1, found)])
        [first] = [m for m in c.consume(1, 10) if m.error() is None]
        assert first.value() == b"t1" and first.timestamp()[1] >= marks[1]
        later = c.offsets_for_times([TopicPartition("orders", 1, int(time.time() * 1000) + 60_000)], timeout=10)
        assert later[0].offset == -1        # nothing written after then: the end (librdkafka's -1)
    finally:
        c.close()


def test_kafka_python_consumes_in_a_group_what_confluent_kafka_produced_keyed(wire):
    from confluent_kafka.admin import NewTopic
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP
    from kafka.partitioner.default import murmur2
    _cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("keyed", 4, 3, config={"min.insync.replicas": "2"})])["keyed"].result(timeout=30)
    # Java's partitioner (murmur2), as a Java producer would place the keys
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "partitioner": "murmur2_random"})
    placed: dict[bytes, set[int]] = {}
    for i in range(120):
        key = f"user-{i % 12}".encode()
        p.produce("keyed", key=key, value=str(i).encode(),
                  on_delivery=lambda err, msg: placed.setdefault(msg.key(), set()).add(msg.partition()))
    assert p.flush(30) == 0
    assert all(parts == {(murmur2(k) & 0x7FFFFFFF) % 4} for k, parts in placed.items())
    consumer = KafkaConsumer("keyed", bootstrap_servers=bootstrap, group_id="kp", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000, api_version_auto_timeout_ms=10_000)
    try:
        order: dict[bytes, list[int]] = {}
        for m in consumer:
            order.setdefault(m.key, []).append(int(m.value))
            if sum(map(len, order.values())) == 120:
                break
        assert sum(map(len, order.values())) == 120
        assert all(values == sorted(values) for values in order.values())     # per-key order
        consumer.commit()
        ends = consumer.end_offsets([KpTP("keyed", i) for i in range(4)])
        assert {tp.partition: consumer.committed(tp) for tp in ends} == {tp.partition: end for tp, end in ends.items()}
    finally:
        consumer.close()


def test_kcat_lists_produces_and_consumes(wire):
    import shutil
    import subprocess
    _cluster, bootstrap = wire
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing: make system-deps installs it (Debian package kcat)"
    listing = subprocess.run([kcat, "-b", bootstrap, "-L", "-t", "orders"], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    assert "3 brokers:" in listing.stdout and 'topic "orders" with 3 partitions' in listing.stdout
    produced = subprocess.run([kcat, "-b", bootstrap, "-P", "-t", "orders", "-p", "2", "-K", ":"],
                              input="".join(f"kc{i}:kcat-{i}\n" for i in range(5)), capture_output=True, text=True,
                              timeout=30)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", "orders", "-p", "2", "-o", "beginning", "-e",
                               "-f", "%k=%s\n"], capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    assert [line for line in consumed.stdout.splitlines() if line.startswith("kc")] == [f"kc{i}=kcat-{i}" for i in range(5)]


def test_bad_frames_close_only_their_connection(wire, caplog):
    import logging
    import socket
    import struct
    _cluster, bootstrap = wire
    host, port = bootstrap.split(",")[0].split(":")
    frames = {
        "garbage": b"\x00\x00\x00\x08" + b"\xde\xad\xbe\xef" * 2,            # an API key no broker has
        "truncated": struct.pack(">ihhi", 40, 3, 12, 7) + b"\x00\x05ab",     # Metadata v12, body cut short
        "oversized": struct.pack(">i", 200 * 1024 * 1024),                  # above socket.request.max.bytes
        "negative": struct.pack(">i", -5),
        "undecodable": struct.pack(">i", 12) + struct.pack(">hhi", 3, 12, 9) + b"\xff\xff\xff\xff",
    }
    with caplog.at_level(logging.INFO, logger="kafka_jmx.wire"):
        for name, frame in frames.items():
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(frame)
                if name == "truncated":
                    s.shutdown(socket.SHUT_WR)
                assert s.recv(1024) == b"", name        # the broker closed it without an answer
    reasons = [r.getMessage() for r in caplog.records if r.name == "kafka_jmx.wire"]
    assert len(reasons) >= len(frames), reasons
    assert any("socket.request.max.bytes" in r for r in reasons) and any("API key" in r for r in reasons)
    # the broker and other clients go on
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]


def test_real_clients_lose_no_acknowledged_record_over_a_fault_schedule(wire):
    """The durability checker's promise through real clients: an idempotent acks=all producer while
    partition leaders and the active controller are killed and restarted; every acknowledged record is
    in the log exactly once and in order, read back by a real consumer."""
    import random
    import threading
    import time

    from confluent_kafka.admin import NewTopic
    cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("audit", 3, 3, config={"min.insync.replicas": "2"})])["audit"].result(timeout=30)
    acked: list[int] = []
    failed: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": 60_000})

        def report(err, msg) -> None:
            (failed.append(str(err)) if err else acked.append(int(msg.value())))
        i = 0
        while not stop.is_set():
            p.produce("audit", key=f"k{i % 6}".encode(), value=str(i).encode(), on_delivery=report)
            p.poll(0)
            i += 1
            time.sleep(0.002)
        p.flush(90)
    producer = threading.Thread(target=produce)
    producer.start()
    rng = random.Random(11)
    faults = []
    try:
        for _ in range(4):
            time.sleep(2.0)
            with cluster.sched.lock:
                if rng.random() < 0.25 and cluster.active_controller() is not None:
                    victim = cluster.active_controller().name
                else:
                    leader = cluster.active_controller().image.partition("audit", rng.randrange(3)).leader
                    victim = f"broker-{leader}"
                if victim.startswith("broker") and sum(b.alive for b in cluster.brokers.values()) < 3:
                    continue
                cluster.kill(victim)
            faults.append(victim)
            time.sleep(3.0)                      # the leader moves; the producer retries to the new one
            with cluster.sched.lock:
                cluster.restart(victim)
            assert wait(lambda: cluster.ready(), 30)
    finally:
        stop.set()
        producer.join(120)
    assert faults and acked, (faults, failed[:3])
    assert wait(lambda: all(len(p.isr) == 3 for p in cluster.active_controller().image.topics["audit"].partitions), 60)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "auditor", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    ends = {i: c.get_watermark_offsets(TopicPartition("audit", i), timeout=10)[1] for i in range(3)}
    c.assign([TopicPartition("audit", i, 0) for i in range(3)])
    log: dict[int, list[int]] = {i: [] for i in range(3)}
    deadline = time.monotonic() + 60
    while any(len(log[i]) < ends[i] for i in range(3)) and time.monotonic() < deadline:
        for m in c.consume(500, 1.0):
            if m.error() is None:
                log[m.partition()].append(int(m.value()))
    c.close()
    values = [v for vs in log.values() for v in vs]
    lost = set(acked) - set(values)
    duplicated = len(values) - len(set(values))
    out_of_order = sum(1 for vs in log.values() for a, b in itertools.pairwise(vs) if b < a)
    assert (len(lost), duplicated, out_of_order) == (0, 0, 0), (faults, sorted(lost)[:10])
