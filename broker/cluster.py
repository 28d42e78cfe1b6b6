"""The embedded cluster: controllers, brokers and clients on one scheduler and network.

    cluster = Cluster(brokers=5, controllers=3, seed=7)
    cluster.start()
    cluster.run_until(cluster.ready, 30_000)
    cluster.create_topic("orders", partitions=12, replication_factor=3, min_insync_replicas=2)
    cluster.kill("broker-3"); cluster.run_for(15_000)
    cluster.value("active-controller", "kafka.controller:type=KafkaController,name=ActiveBrokerCount")  # 4

Cluster(brokers=0, controllers=0, combined=3) runs three combined nodes (process.roles=broker,controller,
node.id 1..3, combined-1..): their broker and controller parts are in `brokers` and `controllers` under the
node's name, the process in `servers`. Brokers beside combined nodes take the node.ids after theirs.

All randomness comes from the seed (one Random per node, derived from it), so a scenario
replays exactly on the virtual clock.
"""
from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from broker.broker import BrokerNode
from broker.clock import Clock, VirtualClock
from broker.combined import CombinedNode
from broker.config import KafkaConfig, KafkaConfigError
from broker.consumer import Consumer, OnRecords
from broker.controller import ControllerNode
from broker.errors import (
    InvalidConfigurationError,
    InvalidReplicationFactorError,
    UnknownNodeError,
)
from broker.net import Network, RequestFailed
from broker.node import Node
from broker.producer import Producer
from broker.protocol import CreateTopicsRequest
from broker.sched import Scheduler
from broker.server import ServerNode
from broker.share_consumer import ShareConsumer
from broker.versions import DEFAULT_LINE, kafka_line
from kafka_common.names import ObjectNamePattern
from kafka_common.roles import parts

VIRTUAL_WALL_BASE_MS = 1_767_225_600_000.0    # 2026-01-01T00:00:00Z: wall time of virtual t=0
ACTIVE_CONTROLLER = "active-controller"
Process = ServerNode | CombinedNode           # a Kafka process: one JVM, one MBean server
CONTROLLERS = "controllers"           # kill: every running controller; restart: every stopped one
LEADER_OF = "leader:"                 # leader:orders-0, the broker leading that partition when the fault comes


@dataclass
class Failover:
    """A controller failover: when the active controller was lost and when another took over."""
    lost_at_ms: float
    old: str
    elected_at_ms: float | None = None
    new: str | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.elected_at_ms is None else self.elected_at_ms - self.lost_at_ms


class Cluster:
    def __init__(self, brokers: int = 5, controllers: int = 3, seed: int = 42,
                 config: dict[str, Any] | KafkaConfig | None = None, clock: Clock | None = None,
                 latency_ms: float = 1.0, kafka_version: str = DEFAULT_LINE, combined: int = 0) -> None:
        if brokers < 0 or controllers < 0 or combined < 0:
            raise KafkaConfigError("node counts cannot be negative")
        if brokers + combined < 1:
            raise KafkaConfigError(f"a cluster needs at least one broker or combined node, got {brokers} and {combined}")
        if controllers + combined < 1:
            raise KafkaConfigError(f"a cluster needs at least one controller or combined node, got {controllers} "
                                   f"and {combined}")
        try:
            self.kafka = kafka_line(kafka_version)
        except ValueError as e:
            raise KafkaConfigError(str(e)) from None
        self.seed = seed
        self.cfg = config if isinstance(config, KafkaConfig) else KafkaConfig(config)
        self.clock = clock or VirtualClock()
        self.sched = Scheduler(self.clock)
        self.net = Network(self.sched, random.Random(f"{seed}:net"), latency_ms)
        wall_base = VIRTUAL_WALL_BASE_MS if isinstance(self.clock, VirtualClock) else time.time() * 1000.0
        self.cluster_id = base64.urlsafe_b64encode(hashlib.md5(f"cluster-{seed}".encode()).digest()).decode().rstrip("=")
        combined_names = {i: f"combined-{i}" for i in range(1, combined + 1)}
        voters = {**{1000 + i: f"controller-{1000 + i}" for i in range(1, controllers + 1)}, **combined_names}
        broker_names = {**combined_names, **{i: f"broker-{i}" for i in range(combined + 1, combined + brokers + 1)}}
        self.combined = {name: CombinedNode(nid, name, self.sched, self.net, self.rng(name), self.cfg, self.cluster_id,
                                            voters, broker_names, wall_base, self.kafka)
                         for nid, name in combined_names.items()}
        self.controllers = {name: ControllerNode(nid, name, self.sched, self.net, self.rng(name), self.cfg,
                                                 self.cluster_id, voters, wall_base, self.kafka)
                            for nid, name in voters.items() if name not in self.combined}
        self.controllers.update({name: node.controller for name, node in self.combined.items()})
        self.brokers = {name: node.broker for name, node in self.combined.items()}
        self.brokers.update({name: BrokerNode(nid, name, self.sched, self.net, self.rng(name), self.cfg,
                                              self.cluster_id, voters, broker_names, wall_base, self.kafka)
                             for nid, name in broker_names.items() if name not in self.combined})
        # every Kafka process: controllers, combined nodes, brokers (the cluster's nodes never change)
        self.servers: dict[str, Process] = {
            **{n: c for n, c in self.controllers.items() if n not in self.combined}, **self.combined,
            **{n: b for n, b in self.brokers.items() if n not in self.combined}}
        self.clients: dict[str, Node] = {}
        self.failovers: list[Failover] = []
        for c in self.controllers.values():
            c.on_activate.append(self._on_activate)

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    # -- nodes --------------------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return list(self.servers)

    def node(self, name: str) -> Process:
        if name == ACTIVE_CONTROLLER:
            active = self.active_controller()
            if active is None:
                raise UnknownNodeError("there is no active controller right now")
            return self.servers[active.name]
        if name.startswith(LEADER_OF):
            return self._leader_of(name.removeprefix(LEADER_OF))
        found = self.servers.get(name)
        if found is None:
            raise UnknownNodeError(f"unknown node {name!r} (nodes: {', '.join(self.node_names())}, {ACTIVE_CONTROLLER}, "
                                   f"{LEADER_OF}TOPIC-PARTITION)")
        return found

    def _leader_of(self, partition: str) -> Process:
        topic, _, idx = partition.rpartition("-")
        active = self.active_controller()
        state = active.image.partition(topic, int(idx)) if active and idx.isdigit() and topic else None
        if state is None or state.leader < 0:
            raise UnknownNodeError(f"partition {partition!r} has no leader right now")
        return self.servers[next(n for n, b in self.brokers.items() if b.node_id == state.leader)]

    def active_controller(self) -> ControllerNode | None:
        active = [c for c in self.controllers.values() if c.alive and c.active]
        return max(active, key=lambda c: c.raft.epoch) if active else None

    def start(self) -> None:
        for node in self.servers.values():
            node.start()

    def ready(self) -> bool:
        """An active controller that sees every live broker registered and unfenced."""
        active = self.active_controller()
        if active is None:
            return False
        counts = active.image.counts()
        return counts["ActiveBrokerCount"] == sum(1 for b in self.brokers.values() if b.alive)

    # -- faults -------------------------------------------------------------------------------------------
    def kill(self, name: str) -> str:
        if name == CONTROLLERS:
            return self._every_controller(alive=True, action=self.kill)
        node = self.node(name)
        if self._is_active(node):
            self.failovers.append(Failover(self.sched.now_ms(), node.name))
        node.kill()
        return node.name

    def _is_active(self, node: Node) -> bool:
        controller = self.controllers.get(node.name)
        return controller is not None and controller.active

    def restart(self, name: str) -> str:
        if name == CONTROLLERS:
            return self._every_controller(alive=False, action=self.restart)
        node = self.node(name)
        node.start()
        return node.name

    def _every_controller(self, alive: bool, action: Callable[[str], str]) -> str:
        names = [action(n) for n, node in self.controllers.items() if node.alive == alive]
        if not names:
            raise ValueError(f"no controller is {'running' if alive else 'stopped'}")
        return " ".join(names)

    def corrupt_metadata(self, name: str) -> str:
        """The active controller commits a metadata record no node can apply (what a corrupted
        metadata log or a controller bug leaves behind). As in Kafka, brokers count it as a load error
        and carry on; standby controllers count it and halt, so the quorum is lost."""
        node = self.node(name)
        if not self._is_active(node):
            raise ValueError(f"{node.name} is not the active controller")
        self.controllers[node.name].append_unreadable_record()
        return node.name

    def elect_preferred_leaders(self) -> int:
        """A preferred leader election over every partition (kafka-leader-election --election-type
        PREFERRED --all-topic-partitions): the active controller moves each leadership to the first
        replica where that replica is alive and in the ISR. Returns how many partitions it moves."""
        active = self.active_controller()
        if active is None:
            raise ValueError("there is no active controller right now")
        return active.elect_preferred_leaders()

    def fail_log_dir(self, name: str, log_dir: str | None = None) -> str:
        """One of a broker's log.dirs fails; returns the directory."""
        node = self.node(name)
        if node.name not in self.brokers or not node.alive:
            raise ValueError(f"{node.name} is not a running broker")
        return self.brokers[node.name].fail_log_dir(log_dir)

    def isolate(self, name: str) -> str:
        node = self.node(name)
        if self._is_active(node):
            self.failovers.append(Failover(self.sched.now_ms(), node.name))
        self.net.isolate(node.name)
        return node.name

    def heal(self, name: str | None = None) -> None:
        if name is None:
            self.net.heal()
            for b in self.brokers.values():
                b.fetch_delay_ms = 0.0
                b.disk_delay_ms = 0.0
            for c in self.controllers.values():
                c.event_delay_ms = 0.0
            return
        node = self.node(name)
        self.net.heal(node.name)
        if node.name in self.brokers:
            self.brokers[node.name].fetch_delay_ms = 0.0
            self.brokers[node.name].disk_delay_ms = 0.0
        if node.name in self.controllers:
            self.controllers[node.name].event_delay_ms = 0.0

    def slow(self, name: str, fetch_delay_ms: float = 0.0, event_delay_ms: float = 0.0,
             disk_delay_ms: float = 0.0) -> str:
        """A slow follower (its replica fetchers pause fetch_delay_ms between fetches), a slow disk
        (every append takes disk_delay_ms longer: produce requests hold their handler thread that
        long) or a slow controller (every event on its queue takes event_delay_ms longer)."""
        node = self.node(name)
        broker, controller = self.brokers.get(node.name), self.controllers.get(node.name)
        if broker is not None:
            broker.fetch_delay_ms = fetch_delay_ms
            broker.disk_delay_ms = disk_delay_ms
        if controller is not None:
            # a combined node's event loop slows only when asked to (its broker takes fetch_delay_ms)
            controller.event_delay_ms = event_delay_ms if broker is not None else event_delay_ms or fetch_delay_ms
        return node.name

    def _on_activate(self, controller: ControllerNode) -> None:
        for f in self.failovers:
            if f.elected_at_ms is None:
                f.elected_at_ms, f.new = self.sched.now_ms(), controller.name

    # -- admin ---------------------------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int, replication_factor: int,
                     min_insync_replicas: int | None = None, configs: dict[str, Any] | None = None,
                     on_done: Callable[[str], None] | None = None) -> None:
        """Create a topic through the active controller (retried until one answers)."""
        if replication_factor > len(self.brokers):
            raise InvalidReplicationFactorError(
                f"Unable to replicate the partition {replication_factor} time(s): The target replication factor "
                f"of {replication_factor} cannot be reached because only {len(self.brokers)} broker(s) are registered.")
        if partitions < 1:
            raise KafkaConfigError(f"topic {name!r}: partitions must be at least 1, got {partitions}")
        topic_configs = dict(configs or {})
        if min_insync_replicas is not None:
            topic_configs["min.insync.replicas"] = min_insync_replicas
        for key, value in topic_configs.items():
            topic_configs[key] = self.cfg.with_overrides({key: value}, f"topic {name!r}")[key]
        min_isr = topic_configs.get("min.insync.replicas")
        if isinstance(min_isr, int) and min_isr > replication_factor:
            raise InvalidConfigurationError(
                f"topic {name!r}: min.insync.replicas={min_isr} is greater than replication factor "
                f"{replication_factor}; acks=all produce requests could never succeed")
        req = CreateTopicsRequest(name, partitions, replication_factor, tuple(sorted(topic_configs.items())))
        admin = self._admin()

        def attempt() -> None:
            active = self.active_controller()
            if active is None or not self.ready():
                admin.after(100.0, attempt)
                return

            def done(resp: Any) -> None:
                if isinstance(resp, RequestFailed) or resp.error in ("NOT_CONTROLLER", "INVALID_REPLICATION_FACTOR"):
                    admin.after(100.0, attempt)
                elif on_done:
                    on_done(resp.error if resp.error == "NONE" else f"{resp.error}: {resp.message}")

            admin.request(active.name, req, done, self.cfg["request.timeout.ms"])

        attempt()

    def _admin(self) -> Node:
        admin = self.clients.get("admin")
        if admin is None:
            admin = Node("admin", self.sched, self.net, self.rng("admin"))
            self.clients["admin"] = admin
            admin.start()
        return admin

    def topic_exists(self, name: str) -> bool:
        active = self.active_controller()
        return active is not None and name in active.image.topics and all(
            name in b.image.topics for b in self.brokers.values() if b.alive)

    # -- clients -------------------------------------------------------------------------------------------
    def _client_config(self, overrides: dict[str, Any] | None, who: str) -> KafkaConfig:
        return self.cfg.with_overrides(overrides or {}, who)

    def _attach(self, client: Node) -> None:
        if client.name in self.clients or client.name in self.servers:
            raise ValueError(f"a node named {client.name!r} already exists")
        self.clients[client.name] = client
        client.start()

    def producer(self, name: str, config: dict[str, Any] | None = None, partitioner: str = "sticky") -> Producer:
        p = Producer(name, self.sched, self.net, self.rng(name), self._client_config(config, f"producer {name}"),
                     list(self.brokers), partitioner)
        self._attach(p)
        return p

    def consumer(self, name: str, group_id: str, topics: Iterable[str], config: dict[str, Any] | None = None,
                 commit: str = "auto", processing_ms: float = 0.0, on_records: OnRecords | None = None) -> Consumer:
        c = Consumer(name, self.sched, self.net, self.rng(name), self._client_config(config, f"consumer {name}"),
                     list(self.brokers), group_id, tuple(topics), commit, processing_ms, on_records)
        self._attach(c)
        return c

    def share_consumer(self, name: str, group_id: str, topics: Iterable[str], config: dict[str, Any] | None = None,
                       processing_ms: float = 0.0, on_records: OnRecords | None = None) -> ShareConsumer:
        c = ShareConsumer(name, self.sched, self.net, self.rng(name), self._client_config(config, f"share consumer {name}"),
                          list(self.brokers), group_id, tuple(topics), processing_ms, on_records)
        self._attach(c)
        return c

    # -- running --------------------------------------------------------------------------------------------
    def now_ms(self) -> float:
        return self.sched.now_ms()

    def run_for(self, duration_ms: float) -> None:
        self.sched.run_for(duration_ms)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: float, step_ms: float = 10.0) -> bool:
        """Run until predicate() holds (checked every step_ms of cluster time); False on timeout."""
        deadline = self.now_ms() + timeout_ms
        while not predicate():
            if self.now_ms() >= deadline:
                return False
            self.sched.run(min(deadline, self.now_ms() + step_ms))
        return True

    # -- MBeans ------------------------------------------------------------------------------------------------
    def value(self, node: str, mbean: str, attr: str = "Value") -> Any:
        return self.node(node).mbeans.read(mbean)[attr]

    def values(self, mbean: str, attr: str = "Value", role: str | None = None) -> dict[str, Any]:
        """The attribute on every live node that has the MBean."""
        out = {}
        for name, node in self.servers.items():
            if node.alive and (role is None or role in (node.role, *parts(node.role))) and mbean in node.mbeans:
                out[name] = node.mbeans.read(mbean)[attr]
        return out

    def snapshot(self, patterns: Iterable[str] = ()) -> dict[str, Any]:
        """The dump shape of `kafka-jmx simulate --dump`."""
        pats = [ObjectNamePattern(p) for p in patterns]
        nodes = {}
        for name, node in self.servers.items():
            nodes[name] = {"role": node.role, "node_id": node.node_id, "alive": node.alive,
                           "mbeans": node.mbeans.snapshot(pats) if node.alive else {}}
        return {"time_ms": int(self.now_ms()), "nodes": nodes}
