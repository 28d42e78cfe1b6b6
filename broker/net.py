"""The simulated network: latency, loss and partitions between named endpoints.

Nodes never check for partitions themselves; the network drops what cannot cross. A request is
answered at most once: by the reply, or by a timeout when the reply never comes (dead peer,
partitioned link, dropped message), as a TCP client would see it.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from broker.sched import Scheduler


class Endpoint(Protocol):
    name: str
    alive: bool
    incarnation: int

    def handle(self, src: str, request: Any, reply: Callable[[Any], None]) -> None: ...


class RequestFailed:
    """What on_reply receives instead of a response: 'timeout' when nothing came back in time
    (partitioned link, lost message, hung peer), 'refused' when the peer process is not running
    (the connection is refused or reset at once, as the OS of a live host does)."""

    def __init__(self, dst: str, request: Any, reason: str = "timeout") -> None:
        self.dst = dst
        self.request = request
        self.reason = reason

    def __repr__(self) -> str:
        return f"RequestFailed({self.dst}, {type(self.request).__name__}, {self.reason})"


class Network:
    def __init__(self, sched: Scheduler, rng: random.Random, latency_ms: float = 1.0) -> None:
        self.sched = sched
        self.rng = rng
        self.latency_ms = latency_ms
        self.loss = 0.0
        self._endpoints: dict[str, Endpoint] = {}
        self._blocked: set[frozenset[str]] = set()
        self._isolated: set[str] = set()
        self._link_latency: dict[frozenset[str], float] = {}
        # requests a process has received and not answered yet: they fail when it dies
        self._open: dict[str, dict[int, Callable[[Any], None]]] = {}
        self._next_id = 0
        self.messages_sent = 0
        self.messages_dropped = 0

    def attach(self, endpoint: Endpoint) -> None:
        if endpoint.name in self._endpoints:
            raise ValueError(f"endpoint {endpoint.name!r} is already attached")
        self._endpoints[endpoint.name] = endpoint

    def endpoint(self, name: str) -> Endpoint:
        return self._endpoints[name]

    # -- faults ---------------------------------------------------------------------------------
    def partition(self, side_a: set[str], side_b: set[str]) -> None:
        """Block every link between the two sides (both directions)."""
        for a in side_a:
            for b in side_b:
                self._blocked.add(frozenset((a, b)))

    def isolate(self, name: str) -> None:
        self._isolated.add(name)

    def heal(self, name: str | None = None) -> None:
        """Heal one node's links, or every fault when name is None."""
        if name is None:
            self._blocked.clear()
            self._isolated.clear()
            return
        self._isolated.discard(name)
        self._blocked = {link for link in self._blocked if name not in link}

    def reset_connections(self, name: str) -> None:
        """A process died: every request it was holding fails at its sender, as a TCP reset."""
        for _rid, finish in list(self._open.pop(name, {}).items()):
            self.sched.call_later(self.latency_ms, lambda f=finish: f(RequestFailed(name, None, "refused")))

    def set_link_latency(self, a: str, b: str, latency_ms: float) -> None:
        self._link_latency[frozenset((a, b))] = latency_ms

    def connected(self, a: str, b: str) -> bool:
        if a == b:
            return True
        if a in self._isolated or b in self._isolated:
            return False
        return frozenset((a, b)) not in self._blocked

    # -- delivery -------------------------------------------------------------------------------
    def _latency(self, a: str, b: str) -> float:
        return self._link_latency.get(frozenset((a, b)), self.latency_ms)

    def _crosses(self, a: str, b: str) -> bool:
        self.messages_sent += 1
        if not self.connected(a, b) or (self.loss and self.rng.random() < self.loss):
            self.messages_dropped += 1
            return False
        return True

    def request(self, src: str, dst: str, request: Any, on_reply: Callable[[Any], None],
                timeout_ms: float) -> None:
        """Deliver request to dst; on_reply gets the response or a RequestFailed."""
        sender = self._endpoints[src]
        src_inc = sender.incarnation
        state = {"done": False}

        self._next_id += 1
        rid = self._next_id

        def finish(response: Any) -> None:
            if state["done"]:
                return
            state["done"] = True
            timer.cancel()
            self._open.get(dst, {}).pop(rid, None)
            if sender.alive and sender.incarnation == src_inc:
                on_reply(response)

        timer = self.sched.call_later(timeout_ms, lambda: finish(RequestFailed(dst, request)))
        target = self._endpoints.get(dst)
        if target is None:
            return
        if not self._crosses(src, dst):
            return
        dst_inc = target.incarnation if target.alive else -1

        def deliver() -> None:
            if state["done"]:
                return
            if not target.alive or target.incarnation != dst_inc:
                refused = RequestFailed(dst, request, "refused")
                self.sched.call_later(self._latency(src, dst), lambda: finish(refused))
                return
            if not self.connected(src, dst):
                self.messages_dropped += 1
                return

            self._open.setdefault(dst, {})[rid] = finish

            def reply(response: Any) -> None:
                if state["done"] or not target.alive or target.incarnation != dst_inc:
                    return
                if not self._crosses(dst, src):
                    return
                self.sched.call_later(self._latency(src, dst), lambda: finish(response)
                                      if self.connected(src, dst) else None)

            target.handle(src, request, reply)

        self.sched.call_later(self._latency(src, dst), deliver)
