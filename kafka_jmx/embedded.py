"""The embedded cluster as the exporter sees it: a source that reads a node's MBean registry in-process
(no JVM), one target per node, and the cluster's wall-clock thread for `serve`'s `embedded:` scenario."""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from broker.clock import WallClock
from broker.cluster import Cluster, Process
from broker.scenario import load_scenario_file
from broker.simulation import Simulation
from exporter.collector import Target
from exporter.config import DaemonConfig
from exporter.sample import NO_VALUE, Collection, Sample, SourceError
from kafka_common.names import ObjectNamePattern


class EmbeddedSource:
    def __init__(self, name: str, node: Process, includes: Sequence[str] = (), excludes: Sequence[str] = (),
                 lock: AbstractContextManager[Any] | None = None) -> None:
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


def embedded_targets(cluster: Cluster, includes: Sequence[str] = (), excludes: Sequence[str] = (),
                     interval_s: float = 10.0, timeout_s: float = 10.0) -> list[Target]:
    """One target per node of an embedded cluster, read in-process."""
    return [Target(name, node.role, EmbeddedSource(name, node, list(includes), list(excludes), cluster.sched.lock),
                   str(node.node_id), {}, interval_s, timeout_s)
            for name, node in cluster.servers.items()]


class ClusterThread(threading.Thread):
    """Runs the embedded cluster on the wall clock. A simulation that stops on an error would leave
    every alert to fire for the wrong reason: whoever runs it ends with that error instead.
    until_ms None: the scenario's run_for."""

    def __init__(self, sim: Simulation, stop: threading.Event | None = None,
                 log: Callable[[str], None] = lambda text: None, until_ms: float | None = float("inf")) -> None:
        super().__init__(name="cluster", daemon=True)
        self.sim, self.log, self.until_ms = sim, log, until_ms
        self.stopping = stop if stop is not None else threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sim.run(until_ms=self.until_ms, stop=self.stopping)
        except Exception as e:
            self.error = e
            self.log("the embedded cluster stopped:\n" + "".join(traceback.format_exception(e)))
        finally:
            self.stopping.set()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the embedded cluster stopped on an error: {self.error!r}") from self.error


def embedded_cluster(config: DaemonConfig) -> tuple[list[Target], ClusterThread]:
    """`serve`'s embedded: scenario, on the wall clock, read at the targets' interval."""
    assert config.embedded is not None
    sim = Simulation(load_scenario_file(config.embedded), WallClock())
    sim.start()
    interval = config.targets[0].interval_s if config.targets else 10.0
    return (embedded_targets(sim.cluster, config.includes, config.excludes, interval, interval),
            ClusterThread(sim, log=lambda text: print(f"kafka-jmx: {text}", flush=True)))
