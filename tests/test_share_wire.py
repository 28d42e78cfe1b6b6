"""Share groups (KIP-932) through the Kafka protocol: Kafka's own console share consumer (the Java
KafkaShareConsumer of each tested line) reads through the embedded cluster's share sessions, and the exporter's
share-group reader reports the group (type, state, members, start offsets, lag) as it does for real Kafka."""
import subprocess

import pytest
from conftest import wait, wall_clock_cluster
from jvm_support import free_port_block, require_real_kafka

from broker.wire.listener import start_listeners

pytestmark = pytest.mark.slow
FAST = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000, "offsets.topic.replication.factor": 3,
        "replica.lag.time.max.ms": 2000}
# Kafka 4.1 serves share groups as a preview behind the switch; 4.4 has them on
LINES = {"4.1": {"group.share.enable": True}, "4.4": {}}


@pytest.fixture(scope="module", params=sorted(LINES))
def wire(request):
    line = request.param
    with wall_clock_cluster(3, 1, 7, {**FAST, **LINES[line]}, ("orders", 3, 3, 2), kafka_version=line) as cluster:
        port = free_port_block(3, low=20000)
        listeners = start_listeners(cluster, port)
        yield line, cluster, ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        for listener in listeners:
            listener.stop()


def started_partitions(cluster, group: str) -> int:
    with cluster.sched.lock:
        return sum(1 for b in cluster.brokers.values() if b.alive for g, _ in b.share_partitions.partitions if g == group)


def test_kafkas_console_share_consumer_reads_and_the_exporter_reports_the_group(wire):
    from confluent_kafka import Producer

    from exporter.lag.connection import Connections
    from exporter.lag.coordinated import CoordinatedGroupReader
    from exporter.lag.filters import Filter
    from exporter.lag.model import Snapshot
    from realkafka.install import classpath
    line, cluster, bootstrap = wire
    require_real_kafka(line)
    group = f"cli-share-{line}"
    consumer = subprocess.Popen(
        ["java", "-Xmx256m", "-cp", classpath(line), "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
         "--bootstrap-server", bootstrap, "--topic", "orders", "--group", group, "--max-messages", "12",
         "--timeout-ms", "60000", "--property", "print.offset=true", "--property", "print.delivery=true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    connections = Connections({"bootstrap.servers": bootstrap}, 10.0)
    reader = CoordinatedGroupReader(connections, Filter(), Filter(deny="^__.*"))
    try:
        # share.auto.offset.reset is latest: records written once each share partition has started are read
        assert wait(lambda: started_partitions(cluster, group) == 3, 60, step=0.5), consumer.stderr
        live = Snapshot(1.0)
        reader.read(live)
        assert live.errors == [] and live.groups[group].state == "Stable" and live.groups[group].members == 1
        assert live.groups[group].assigned == {"orders": 3}
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(12):
            producer.produce("orders", value=f"queued-{i}".encode(), partition=i % 3)
        assert producer.flush(10) == 0
        out, err = consumer.communicate(timeout=90)
        assert consumer.returncode == 0, err[-2000:]
        delivered = sorted(line.split("\t")[-1] for line in out.splitlines() if "queued-" in line)
        assert delivered == sorted(f"queued-{i}" for i in range(12))
        assert all("Delivery:1" in line for line in out.splitlines() if "queued-" in line)
        # it left: what it read is delivered for good, six more records wait for the group
        for i in range(6):
            producer.produce("orders", value=f"waiting-{i}".encode(), partition=i % 3)
        assert producer.flush(10) == 0
        after = Snapshot(2.0)
        reader.read(after)
        g = after.groups[group]
        assert after.errors == [] and (g.type, g.state, g.members) == ("share", "Empty", 0)
        assert g.committed == {("orders", p): 4 for p in range(3)}
        # DescribeShareGroupOffsets says the lag from 4.2 on; before, the exporter counts it from the end offsets
        assert g.lags == ({("orders", p): 2 for p in range(3)} if line == "4.4" else {})
    finally:
        if consumer.poll() is None:
            consumer.kill()
        connections.close()


def test_librdkafkas_share_consumers_split_the_records_and_acknowledge_them(wire):
    """confluent-kafka's ShareConsumer (librdkafka 2.16, implicit acknowledgement): two members of one share
    group read every record once between them, and what they accepted moves each start offset to the end."""
    import time

    from confluent_kafka import Producer, ShareConsumer
    _line, cluster, bootstrap = wire
    group = "rdk-share"
    members = [ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group}) for _ in range(2)]
    for m in members:
        m.subscribe(["orders"])
    got: list[tuple[int, int]] = []

    def poll() -> None:
        for m in members:
            got.extend((msg.partition(), msg.offset()) for msg in m.poll(0.1) if not msg.error())
    try:
        assert wait(lambda: (poll(), started_partitions(cluster, group) == 3)[1], 60, step=0.1)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(60):
            producer.produce("orders", value=str(i).encode(), partition=i % 3)
        assert producer.flush(10) == 0
        deadline = time.monotonic() + 30
        while len(got) < 60 and time.monotonic() < deadline:
            poll()
        assert len(got) == len(set(got)) == 60
        for m in members:
            m.commit_sync()         # implicit mode: the last poll's records are accepted with the commit
    finally:
        for m in members:
            m.close()
    with cluster.sched.lock:
        starts = {tp.partition: sp.start_offset for b in cluster.brokers.values() if b.alive
                  for (g, tp), sp in b.share_partitions.partitions.items() if g == group}
        ends = {tp.partition: p.high_watermark for b in cluster.brokers.values() if b.alive
                for tp, p in b.partitions.items() if tp.topic == "orders" and p.is_leader}
    assert starts == ends
