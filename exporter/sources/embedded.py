"""The embedded source: reads a node's MBean registry in-process (no JVM)."""
from __future__ import annotations

import time
from typing import Any, ContextManager, Sequence

from broker.mbeans.names import ObjectNamePattern
from broker.server import ServerNode
from exporter.sample import NO_VALUE, Collection, Sample, SourceError


class EmbeddedSource:
    def __init__(self, name: str, node: ServerNode, includes: Sequence[str] = (), excludes: Sequence[str] = (),
                 lock: ContextManager[Any] | None = None) -> None:
        self.name = name
        self.node = node
        self.includes = [ObjectNamePattern(p) for p in includes]
        self.excludes = [ObjectNamePattern(p) for p in excludes]
        self.lock = lock      # the cluster scheduler's lock when the cluster runs in another thread

    def read(self) -> Collection:
        if self.lock is not None:
            with self.lock:
                return self._read()
        return self._read()

    def _read(self) -> Collection:
        if not self.node.alive:
            raise SourceError("connect", f"{self.name}: the node is not running")
        now_ms = time.time() * 1000.0
        sim_now = self.node.now()
        samples: list[Sample] = []
        for name, bean in self.node.mbeans.items():
            if self.includes and not any(p.matches(name) for p in self.includes):
                continue
            if any(p.matches(name) for p in self.excludes):
                continue
            for attr, value in bean.read(sim_now).items():
                samples.append(Sample(name.domain, name.props, (), attr, NO_VALUE if value is None else value, now_ms))
        return Collection(samples, {})

    def close(self) -> None:
        pass
