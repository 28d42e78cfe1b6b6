"""The `kafka` cluster engine: a scenario file played on a real KRaft cluster.

The same file as the embedded engine: the cluster's size and Kafka settings, topics (created with
the admin client), the workload (confluent-kafka producers and consumer groups on their own
threads) and the timeline. What real processes on one host can take: kill (SIGKILL), restart,
pause (SIGSTOP: a hung JVM) and resume, heal (resumes every paused node). A fault it cannot take
is refused before anything starts, with the file, line and field.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from broker.cluster import LEADER_OF
from broker.scenario import Fault, Scenario
from broker.workload import ConsumerGroupSpec, ProducerSpec
from kafka_common.roles import is_controller
from realkafka.cluster import RealCluster

SUPPORTED = ("kill", "restart", "pause", "resume", "heal", "elect_leaders", "bounce", "stop_consumer", "slow_consumer",
             "resume_consumer")


class EngineError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def check(scenario: Scenario) -> None:
    """Refuse what a real cluster on one host cannot be made to do."""
    problems = []
    for i, f in enumerate(scenario.timeline):
        if f.action not in SUPPORTED:
            problems.append(f"{scenario.source}:{f.line}: timeline[{i}].{f.action}: the kafka engine cannot "
                            f"{f.action} real processes on one host (it can: {', '.join(SUPPORTED)})")
    if problems:
        raise EngineError(problems)


@dataclass
class Engine:
    """A scenario running on a RealCluster; events are (seconds since start, text)."""

    scenario: Scenario
    cluster: RealCluster
    out: IO[str] = sys.stdout

    def __post_init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self._threads: list[threading.Thread] = []
        self.acked = 0
        self.consumed = 0
        self._lock = threading.Lock()
        # per workload group: the event that stops its members, and each record's processing time now
        self._group_stop: dict[str, threading.Event] = {}
        self._processing_ms: dict[str, float] = {}

    def log(self, message: str) -> None:
        self.events.append((time.monotonic() - self.t0, message))

    # -- topics and workload --------------------------------------------------------------------------
    def create_topics(self, timeout_s: float = 60.0) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.cluster.bootstrap_servers()})
        topics = []
        for t in self.scenario.topics:
            configs = {k: str(v) for k, v in t.configs.items()}
            if t.min_insync_replicas is not None:
                configs["min.insync.replicas"] = str(t.min_insync_replicas)
            topics.append(NewTopic(t.name, t.partitions, t.replication_factor, config=configs))
        for name, future in (admin.create_topics(topics, request_timeout=timeout_s).items() if topics else ()):
            future.result(timeout_s)
            self.log(f"topic {name} created")

    def start_workload(self) -> None:
        for spec in self.scenario.producers:
            self._thread(f"producer-{spec.name}", lambda s=spec: self._produce(s))
        for group in self.scenario.groups:
            self._processing_ms[group.group] = group.processing_ms
            self._start_group(group)
        self.log("workload started")

    def _start_group(self, spec: ConsumerGroupSpec) -> None:
        stop = self._group_stop[spec.group] = threading.Event()
        consume = self._consume_shared if spec.share else self._consume
        for member in range(spec.members):
            self._thread(f"{spec.group}-{member}", lambda s=spec: consume(s, stop))

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _produce(self, spec: ProducerSpec) -> None:
        from confluent_kafka import Producer
        conf = {"bootstrap.servers": self.cluster.bootstrap_servers(), "acks": spec.acks,
                "client.id": spec.name, "partitioner": "murmur2_random", **spec.config}
        producer = Producer(conf)
        keys = [f"key-{i}".encode() for i in range(spec.keys)]
        payload = b"x" * spec.record_size
        interval = spec.batch_interval_ms / 1000.0
        carry, sent = 0.0, 0

        def delivered(err: object, _msg: object) -> None:
            if err is None:
                with self._lock:
                    self.acked += 1

        while not self.stop.is_set():
            started = time.monotonic()
            carry += spec.rate * interval
            n, carry = int(carry), carry - int(carry)
            for _ in range(n):
                key = keys[sent % len(keys)] if keys else None
                try:
                    producer.produce(spec.topic, payload, key, on_delivery=delivered)
                except BufferError:
                    producer.poll(0.1)
                sent += 1
            producer.poll(0)
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))
        producer.flush(5)

    def _consume(self, spec: ConsumerGroupSpec, stop: threading.Event) -> None:
        from confluent_kafka import Consumer
        conf = {"bootstrap.servers": self.cluster.bootstrap_servers(), "group.id": spec.group,
                "auto.offset.reset": "earliest", "enable.auto.commit": spec.commit == "auto",
                **spec.config}
        consumer = Consumer(conf)
        consumer.subscribe([spec.topic])
        try:
            while not (self.stop.is_set() or stop.is_set()):
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                if spec.commit == "before":
                    consumer.commit(message=msg, asynchronous=True)
                # the record takes the group's pace, read again while it lasts (resume_consumer ends it)
                started = time.monotonic()
                while not stop.is_set() and time.monotonic() - started < self._processing_ms[spec.group] / 1000.0:
                    stop.wait(0.05)
                with self._lock:
                    self.consumed += 1
                if spec.commit == "after":
                    consumer.commit(message=msg, asynchronous=True)
        finally:
            consumer.close()

    def _consume_shared(self, spec: ConsumerGroupSpec, stop: threading.Event) -> None:
        """A share group member (librdkafka's share consumer, implicit acknowledgement: a poll accepts the
        records of the one before); the records take the group's pace."""
        from confluent_kafka import ShareConsumer
        consumer = ShareConsumer({"bootstrap.servers": self.cluster.bootstrap_servers(), "group.id": spec.group,
                                  **spec.config})
        consumer.subscribe([spec.topic])
        try:
            while not (self.stop.is_set() or stop.is_set()):
                for msg in consumer.poll(0.5):
                    if msg.error():
                        continue
                    started = time.monotonic()
                    while not stop.is_set() and time.monotonic() - started < self._processing_ms[spec.group] / 1000.0:
                        stop.wait(0.05)
                    with self._lock:
                        self.consumed += 1
            consumer.commit_sync()
        finally:
            consumer.close()

    # -- faults ---------------------------------------------------------------------------------------
    def resolve(self, target: str) -> str:
        """active-controller and leader:TOPIC-N, as the fault comes; node names as they are."""
        if target == "active-controller":
            return self.active_controller()
        if target.startswith(LEADER_OF):
            topic, _, idx = target.removeprefix(LEADER_OF).rpartition("-")
            from confluent_kafka.admin import AdminClient
            meta = AdminClient({"bootstrap.servers": self.cluster.bootstrap_servers()}).list_topics(topic, timeout=10)
            return f"broker-{meta.topics[topic].partitions[int(idx)].leader}"
        return target

    def elect_preferred_leaders(self) -> int:
        """ElectLeaders PREFERRED over every partition, as kafka-leader-election sends it."""
        from confluent_kafka import ElectionType, KafkaException
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.cluster.bootstrap_servers()})
        try:
            result = admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout=30)
        except KafkaException as e:
            raise RuntimeError(f"preferred leader election failed: {e}") from None
        # partitions already led by their preferred replica answer ELECTION_NOT_NEEDED
        return sum(1 for error in result.values() if error is None)

    def active_controller(self) -> str:
        """The controller whose ActiveControllerCount is 1, read over JMX."""
        from exporter.sources.jmx import JmxSource
        for name, node in self.cluster.nodes.items():
            if not is_controller(node.role) or not node.alive or node.paused:
                continue
            samples = JmxSource(name, node.jmx_url, includes=[
                "kafka.controller:type=KafkaController,name=ActiveControllerCount"], timeout_ms=5000).read().samples
            if any(s.value == 1 for s in samples):
                return name
        raise ValueError("no active controller right now")

    def apply(self, fault: Fault) -> None:
        c = self.cluster
        try:
            if fault.action == "heal":
                for name in [n for n, node in c.nodes.items() if node.paused and fault.node in (None, n)]:
                    c.resume(name)
                self.log(f"heal {fault.node or 'all'}")
                return
            if fault.action == "elect_leaders":
                self.log(f"elect_leaders all ({self.elect_preferred_leaders()} partitions to their preferred leader)")
                return
            if fault.node == "controllers" and fault.action in ("kill", "restart"):
                wanted = fault.action == "kill"
                names = [n for n, node in c.nodes.items() if is_controller(node.role) and node.alive == wanted]
                if not names:
                    raise ValueError(f"no controller is {'running' if wanted else 'stopped'}")
                for n in names:
                    if wanted:
                        c.kill(n)
                    else:
                        c.restart(n, wait=False)
                self.log(f"{fault.action} {' '.join(names)}")
                return
            if fault.action in ("stop_consumer", "slow_consumer", "resume_consumer"):
                self._consumer_action(fault)
                return
            name = self.resolve(str(fault.node))
            if fault.action == "bounce":
                c.kill(name)
                timer = threading.Timer(fault.down_ms / 1000.0, lambda: c.restart(name, wait=False))
                timer.daemon = True
                timer.start()
                self.log(f"bounce {name} (down {fault.down_ms / 1000:g}s)")
                return
            if fault.action == "kill":
                c.kill(name)
            elif fault.action == "restart":
                c.restart(name, wait=False)
            elif fault.action == "pause":
                c.pause(name)
            elif fault.action == "resume":
                c.resume(name)
            self.log(f"{fault.action} {name}")
        except (ValueError, RuntimeError) as e:
            self.log(f"{fault.action} {fault.node} skipped: {e}")

    def _consumer_action(self, fault: Fault) -> None:
        spec = next(g for g in self.scenario.groups if g.group == fault.node)
        if fault.action == "stop_consumer":
            self._group_stop[spec.group].set()        # each member closes its consumer: it leaves the group
            self.log(f"stop_consumer {spec.group} ({spec.members} members leave)")
        elif fault.action == "slow_consumer":
            self._processing_ms[spec.group] = fault.processing_ms
            self.log(f"slow_consumer {spec.group} ({fault.processing_ms:g} ms per record)")
        else:
            self._processing_ms[spec.group] = spec.processing_ms
            if self._group_stop[spec.group].is_set():
                self._start_group(spec)
            self.log(f"resume_consumer {spec.group}")

    # -- running --------------------------------------------------------------------------------------
    def run(self, duration_ms: float | None = None, on_event: Callable[[float, str], None] | None = None) -> None:
        end = (self.scenario.run_for_ms if duration_ms is None else duration_ms) / 1000.0
        pending = sorted(self.scenario.timeline, key=lambda f: f.at_ms)
        seen = 0
        while not self.stop.is_set():
            now = time.monotonic() - self.t0
            while pending and pending[0].at_ms / 1000.0 <= now:
                self.apply(pending.pop(0))
            for t, event in self.events[seen:]:
                if on_event:
                    on_event(t, event)
            seen = len(self.events)
            if now >= end:
                break
            self.stop.wait(0.1)
        self.close()

    def close(self) -> None:
        """Stop the workload's clients (before the cluster goes, so they do not retry into it)."""
        self.stop.set()
        for t in self._threads:
            t.join(10)
