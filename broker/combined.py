"""A combined node (process.roles=broker,controller): one Kafka process running a controller and a broker.

As in Kafka's KafkaRaftServer, the process starts its controller first, then its broker; both share the
process's raft client (the controller's: the broker runs no observer of its own), its metadata log and
its MBean server, where a name both register (app-info, the socket servers' gauges, MetadataLoader, ...)
exists once. The process is one endpoint on the network: requests reach the part that serves them (a
CreateTopics the broker would forward goes straight to the controller when it is the active one), and a
kill, a restart or an isolation takes both parts.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from broker.broker import BrokerNode
from broker.controller import ControllerNode
from broker.mbeans.registry import MBeanRegistry
from broker.net import Network
from broker.node import Node
from broker.sched import Scheduler
from broker.versions import KafkaLine
from kafka_common.roles import COMBINED


class CombinedNode(Node):
    role = COMBINED

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str, voters: dict[int, str], broker_names: dict[int, str],
                 wall_base_ms: float, kafka: KafkaLine) -> None:
        super().__init__(name, sched, net, rng)
        self.node_id = node_id
        self.mbeans = MBeanRegistry(self.now, rng, shared=True)
        self.controller = ControllerNode(node_id, name, sched, net, random.Random(f"{rng.random()}:controller"),
                                         config, cluster_id, voters, wall_base_ms, kafka, process=self)
        self.broker = BrokerNode(node_id, name, sched, net, random.Random(f"{rng.random()}:broker"), config,
                                 cluster_id, voters, broker_names, wall_base_ms, kafka, process=self)
        for part in (self.controller, self.broker):
            part.process_registry = lambda: self.mbeans
            part.handler_share = 0.5        # two request handler pools of num.io.threads each
        self.broker.controller_raft = lambda: self.controller.raft

    def on_start(self) -> None:
        self.mbeans = MBeanRegistry(self.now, self.rng, shared=True)
        self.controller.start()
        self.broker.start()

    def on_kill(self) -> None:
        for part in (self.broker, self.controller):
            if part.alive:
                part.kill()

    def handle(self, src: str, request: Any, reply: Callable[[Any], None]) -> None:
        kind = type(request)
        to_controller = kind in self.controller.routes and (
            kind not in self.broker.routes or src == self.name or self.controller.active)
        (self.controller if to_controller else self.broker).handle(src, request, reply)
