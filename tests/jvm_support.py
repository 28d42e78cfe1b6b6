"""Helpers for tests that need a real JVM: in CI a missing JDK fails the test instead of skipping it."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from typing import NoReturn

import pytest

from kafka_common.jvm import jolokia_available


def unavailable(message: str) -> NoReturn:
    """What a test needs is not installed: in CI (which installs everything) a failure, elsewhere a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_jdk() -> None:
    if not (shutil.which("java") and shutil.which("javac")):
        unavailable("a JDK is needed (make test installs openjdk-17-jdk-headless)")


def require_jolokia() -> None:
    require_jdk()
    if not jolokia_available():
        unavailable("Jolokia core is needed (make test installs libjolokia-core-java)")


def _worker_share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's own part of [low, high): two workers choosing ports at the same moment never
    pick overlapping blocks (between the check and the service's bind, the other could take one)."""
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def free_port_block(n: int, low: int | None = None, high: int = 32000) -> int:
    """A first port p with p..p+n-1 free on 127.0.0.1 right now; with low, searched in this worker's share of
    [low, high) (Zabbix accepts listen ports up to 32767 only). A block of several ports always comes from
    below the ephemeral range (Linux's starts at 32768): there, the outgoing connections of the services
    around it (scrapes, pushes, notifications) cannot take one of its ports before it is bound (a JMX
    endpoint failed to start so, with Prometheus, Alertmanager and an OTLP push running beside it)."""
    import random
    if low is None and n > 1:
        low = 20000
    if low is not None:
        low, high = _worker_share(low, high)
    for _ in range(200):
        if low is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                base = s.getsockname()[1]
        else:
            base = random.randrange(low, high - n)
        if base + n >= 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", p))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports found")


@contextlib.contextmanager
def hung_jmx_url() -> Iterator[str]:
    """A JMX URL whose port accepts connections and never answers: a hung JVM."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{listener.getsockname()[1]}/jmxrmi"
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def require_real_kafka(version: str) -> None:
    """Real Kafka's jars from Maven (make test runs scripts/install-realkafka)."""
    require_jdk()
    from realkafka.install import NotInstalled, exact_version, line_of
    try:
        exact_version(line_of(version))
    except NotInstalled as e:
        unavailable(str(e))


def require_streams() -> None:
    """Kafka Streams 4.4's jars from Maven (scripts/install-realkafka's streams-4.4 profile)."""
    require_jdk()
    from realkafka.install import NotInstalled
    from realkafka.streams import streams_classpath
    try:
        streams_classpath()
    except NotInstalled as e:
        unavailable(str(e))


def healthy_topic(bootstrap: str, topic: str = "healthy", records: int = 100) -> None:
    """A topic of 3 partitions and 3 replicas on real Kafka with records written (acks=all): the traffic that
    makes Kafka create its per-topic MBeans."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [created] = admin.create_topics([NewTopic(topic, 3, 3)]).values()
    created.result(timeout=60)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(records):
        producer.produce(topic, key=str(i), value=b"x")
    assert producer.flush(60) == 0, f"{records} records to {topic} not all written"


def kafka_port_block(n: int = 24) -> int:
    """Ports for real Kafka JVMs, below the ephemeral range: between our check and the JVM's bind,
    no outgoing connection may take one (a broker connecting on loopback to a controller port not
    yet listened on can even be handed that very port and connect to itself)."""
    return free_port_block(n, low=10000, high=20000)


CONFORMANCE_FLOOR = 0.95      # the share of real Kafka's (ObjectName, attribute) pairs the embedded cluster has


def assert_conforms(scenario_text: str, version: str, tmp_path, roles: set[str]) -> list:
    """The scenario on real Kafka (that line) and on the embedded cluster (realkafka/conformance.py): per role,
    nothing under kafka.* that real Kafka lacks, every declared type Kafka's, at least CONFORMANCE_FLOOR of
    its pairs covered, the cluster signals our alerts read equal healthy and after each fault, and after each
    fault nothing the real nodes have dropped (a dead leader's fetcher metrics, ...)."""
    from realkafka import conformance
    require_real_kafka(version)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(scenario_text)
    diffs = conformance.run(str(scenario), version, warmup_s=30.0, base_port=kafka_port_block())
    assert {d.role for d in diffs} == roles
    for d in diffs:
        assert d.invented == [] and d.types == [], (d.role, d.invented[:10], d.types[:10])
        assert d.coverage >= CONFORMANCE_FLOOR, (d.role, d.coverage, d.missing[:20])
        assert d.signals == [], (d.role, d.signals)
        assert d.invented_after == [], (d.role, d.invented_after[:10])
    return diffs


def commit_when_ready(bootstrap: str, group: str, topic: str, partitions: int, offset: int,
                      timeout_s: float = 60.0) -> None:
    """Commits `offset` on each partition for a group without members, retried while the coordinator still
    loads the offsets topic (it answers NOT_COORDINATOR for a while on a new cluster)."""
    import time

    from confluent_kafka import Consumer, KafkaException, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, offset) for p in range(partitions)], asynchronous=False)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
