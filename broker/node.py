"""A process on the simulated network: it can be killed and restarted.

Timers a node schedules belong to one incarnation: after a kill (or a restart) they never fire,
as threads of a dead JVM would not. A node may be a part of another's process (the broker and the
controller of a combined node): then that process is the network endpoint, and it starts and kills
its parts.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from broker.log import DiskIo
from broker.net import Network
from broker.sched import Scheduler, Timer


class Node:
    role = "node"

    def __init__(self, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 process: Node | None = None) -> None:
        self.name = name
        self.process: Node = process or self
        self.disk_io: DiskIo = process.disk_io if process is not None else DiskIo()    # the process's /proc/self/io
        self.sched = sched
        self.net = net
        self.rng = rng
        self.alive = False
        self.incarnation = 0
        # request type -> handler(src, request, reply); components register what they serve
        self.routes: dict[type, Callable[[str, Any, Callable[[Any], None]], None]] = {}
        if process is None:
            net.attach(self)

    def now(self) -> float:
        return self.sched.now_ms()

    def after(self, delay_ms: float, fn: Callable[[], None]) -> Timer:
        inc = self.incarnation
        return self.sched.call_later(delay_ms, lambda: fn() if self.alive and self.incarnation == inc else None)

    def every(self, period_ms: float, fn: Callable[[], None], first_ms: float | None = None) -> Timer:
        inc = self.incarnation
        handle: Timer

        def guarded() -> None:
            if self.alive and self.incarnation == inc:
                fn()
            else:
                handle.cancel()

        handle = self.sched.call_every(period_ms, guarded, first_ms)
        return handle

    def request(self, dst: str, request: Any, on_reply: Callable[[Any], None], timeout_ms: float) -> None:
        self.net.request(self.name, dst, request, on_reply, timeout_ms)

    def start(self) -> None:
        if self.alive:
            raise ValueError(f"{self.name} is already running")
        self.alive = True
        self.incarnation += 1
        if self.process is self:
            self.disk_io.process_started()
        self.on_start()

    def kill(self) -> None:
        if not self.alive:
            raise ValueError(f"{self.name} is not running")
        self.alive = False
        self.incarnation += 1
        self.net.reset_connections(self.name)
        self.on_kill()

    def on_start(self) -> None:
        """Subclasses set up their in-memory state and timers here."""

    def on_kill(self) -> None:
        """Subclasses drop in-memory state here; what is on 'disk' survives."""

    def handle(self, src: str, request: Any, reply: Callable[[Any], None]) -> None:
        handler = self.routes.get(type(request))
        if handler is None:
            raise TypeError(f"{self.name} cannot handle {type(request).__name__}")
        handler(src, request, reply)
