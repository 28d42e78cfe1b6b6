"""The exporter daemon: targets collected in the background, /metrics served from the last results."""
from __future__ import annotations

import logging
import signal
import threading

from broker.clock import WallClock
from broker.cluster import Cluster
from broker.scenario import load_scenario_file
from broker.simulation import Simulation
from exporter.collector import Renderer, Target, TargetWorker
from exporter.catalog.model import load_catalog
from exporter.config import DaemonConfig, PrometheusSpec, SourceSpec, TargetSpec
from exporter.http import MetricsServer
from exporter.rules import RuleSet
from exporter.rulesets import builtin_rules
from exporter.sources import Source
from exporter.sources.embedded import EmbeddedSource
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from exporter.trapper import TrapperSink
from exporter.yamlconf import read_text

log = logging.getLogger("kafka_jmx.daemon")


def make_source(spec: TargetSpec, includes: tuple[str, ...], excludes: tuple[str, ...]) -> Source:
    s: SourceSpec = spec.source
    timeout_ms = spec.timeout_s * 1000.0
    if s.kind == "jmx":
        return JmxSource(spec.name, s.url, s.username, s.password, s.ssl, s.truststore, s.truststore_password,
                         list(includes), list(excludes), timeout_ms)
    return JolokiaSource(spec.name, s.url, s.username, s.password, s.verify, list(includes), list(excludes), timeout_ms,
                         null_as_nan=s.null_as_nan)


def embedded_targets(cluster: Cluster, includes: tuple[str, ...] = (), excludes: tuple[str, ...] = (),
                     interval_s: float = 10.0, timeout_s: float = 10.0) -> list[Target]:
    """One target per node of an embedded cluster, read in-process."""
    return [Target(name, node.role, EmbeddedSource(name, node, list(includes), list(excludes), cluster.sched.lock),
                   str(node.node_id), {}, interval_s, timeout_s)
            for name, node in cluster.servers.items()]


class Daemon:
    def __init__(self, cluster: str, targets: list[Target], rules: RuleSet, prometheus: PrometheusSpec,
                 simulation: Simulation | None = None, zabbix: TrapperSink | None = None) -> None:
        self.simulation = simulation
        self.zabbix = zabbix
        self.renderer: Renderer
        self.workers = [TargetWorker(t, rules, lambda w: self.renderer.mark_dirty(), zabbix.offer if zabbix else None,
                                     cluster) for t in targets]
        self.renderer = Renderer(self.workers, cluster, extra=[zabbix] if zabbix else [])
        self.server = MetricsServer(prometheus.host, prometheus.port, lambda: self.renderer.body_parts,
                                    lambda: [self.renderer.body_gzip], prometheus.cert, prometheus.key,
                                    prometheus.username, prometheus.password)
        self._sim_stop = threading.Event()
        self._sim_thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: DaemonConfig) -> "Daemon":
        rules = RuleSet.from_yaml(read_text(config.rules_file), config.rules_file) if config.rules_file \
            else builtin_rules()
        for warning in rules.warnings:
            log.warning("%s", warning)
        targets = [Target(t.name, t.role, make_source(t, config.includes, config.excludes), t.node_id, t.labels,
                          t.interval_s, t.timeout_s) for t in config.targets]
        sim = None
        if config.embedded:
            sim = Simulation(load_scenario_file(config.embedded), WallClock())
            interval = config.targets[0].interval_s if config.targets else 10.0
            targets += embedded_targets(sim.cluster, config.includes, config.excludes, interval, interval)
        sink = None
        if config.zabbix is not None:
            z = config.zabbix
            sink = TrapperSink(z.server, z.port, load_catalog(), config.cluster, z.host_name, z.batch_size,
                               z.spool_limit, z.send_interval_s, psk=z.psk)
        return cls(config.cluster, targets, rules, config.prometheus, sim, sink)

    @property
    def url(self) -> str:
        scheme = "https" if self.server.httpd.socket.__class__.__name__ == "SSLSocket" else "http"
        return f"{scheme}://{self.server.httpd.server_address[0]}:{self.server.port}/metrics"

    def start(self) -> None:
        if self.simulation is not None and self._sim_thread is None:
            self.simulation.start()
            self._sim_thread = threading.Thread(target=lambda: self.simulation.run(until_ms=float("inf"),  # type: ignore[union-attr]
                                                                                  stop=self._sim_stop),
                                                name="cluster", daemon=True)
            self._sim_thread.start()
        if self.zabbix is not None:
            self.zabbix.start()
        for w in self.workers:
            w.start()
        self.renderer.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        for w in self.workers:
            w.stop()
        self.renderer.stop()
        self._sim_stop.set()
        for w in self.workers:
            w.join(2.0)
            w.target.source.close()
        if self.zabbix is not None:
            self.zabbix.stop()
        JmxReader.stop_all()

    def serve_forever(self) -> None:
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        log.info("serving %s for %d targets", self.url, len(self.workers))
        done.wait()
        self.stop()
