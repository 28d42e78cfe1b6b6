"""The exporter daemon: targets collected in the background, /metrics served from the last results."""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Protocol

from prometheus_client.registry import Collector

from exporter.catalog.model import load_catalog
from exporter.collector import Renderer, Target, TargetWorker
from exporter.config import DaemonConfig, JvmSpec, KafkaSpec, OtlpSpec, PrometheusSpec, SourceSpec, TargetSpec
from exporter.http import MetricsServer
from exporter.jvm import JvmView
from exporter.lag.filters import Filter
from exporter.lag.isolated import IsolatedReader
from exporter.lag.worker import LagWorker
from exporter.rules import RuleSet
from exporter.rulesets import builtin_rules
from exporter.sources import Source
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from exporter.trapper import TrapperSink
from kafka_common.yamlconf import ConfigError, read_text

log = logging.getLogger("kafka_jmx.daemon")


def make_source(spec: TargetSpec, includes: tuple[str, ...], excludes: tuple[str, ...]) -> Source:
    s: SourceSpec = spec.source
    timeout_ms = spec.timeout_s * 1000.0
    if s.kind == "jmx":
        return JmxSource(spec.name, s.url, s.username, s.password, s.ssl, s.truststore, s.truststore_password,
                         list(includes), list(excludes), timeout_ms)
    return JolokiaSource(spec.name, s.url, s.username, s.password, s.verify, list(includes), list(excludes), timeout_ms,
                         null_as_nan=s.null_as_nan)


class Background(Protocol):
    """Something the daemon runs beside its targets (an embedded cluster): started first, stopped with the
    targets. Its error, once set, ends serve_forever."""

    error: BaseException | None

    def start(self) -> None: ...

    def stop(self) -> None: ...


# what builds the targets of a config's `embedded:` scenario; the toolkit above the simulator provides it
EmbeddedFactory = Callable[[DaemonConfig], tuple[list[Target], Background]]


class Daemon:
    def __init__(self, cluster: str, targets: list[Target], rules: RuleSet, prometheus: PrometheusSpec,
                 background: Background | None = None, zabbix: TrapperSink | None = None,
                 kafka: KafkaSpec | None = None, zabbix_targets: bool = True,
                 brokers_expected: int | None = None, jvm: JvmSpec | None = None, otlp: OtlpSpec | None = None) -> None:
        """zabbix_targets=False: the targets' values do not go to Zabbix (its Java gateway polls them),
        only the consumer groups'. brokers_expected: published for the broker alert (default: the broker
        targets)."""
        self.background = background
        self.zabbix = zabbix
        self.renderer: Renderer
        offer = zabbix.offer if zabbix and zabbix_targets else None
        jvm = jvm or JvmSpec()
        view = JvmView(jvm.names, jvm.disabled) if jvm.enabled else None
        self.workers = [TargetWorker(t, rules, lambda w: self.renderer.mark_dirty(), offer, cluster, jvm=view)
                        for t in targets]
        self.lag = None
        if kafka is not None:
            # each phase of a collection waits at most timeout + 5 s
            reader = IsolatedReader(kafka.client, Filter(kafka.groups_allow, kafka.groups_deny),
                                    Filter(kafka.topics_allow, kafka.topics_deny), kafka.timeout_s, kafka.lag_seconds,
                                    deadline_s=6 * (kafka.timeout_s + 5.0))
            self.lag = LagWorker(reader, cluster, kafka.interval_s, kafka.status_window_s, kafka.partition_series,
                                 kafka.max_series, lambda w: self.renderer.mark_dirty(),
                                 zabbix.offer_groups if zabbix else None, disabled=kafka.disabled,
                                 rate_window_s=kafka.rate_window_s)
        self.otlp = None
        if otlp is not None:
            from exporter.otlp import OtlpPusher
            self.otlp = OtlpPusher(otlp, lambda: self.renderer.body())
        extra: list[Collector] = [c for c in (self.lag, zabbix, self.otlp) if c is not None]
        self.renderer = Renderer(self.workers, cluster, extra=extra, brokers_expected=brokers_expected)
        self.server = MetricsServer(prometheus.host, prometheus.port, lambda: self.renderer.body_parts,
                                    lambda: [self.renderer.body_gzip], prometheus.cert, prometheus.key,
                                    prometheus.username, prometheus.password)

    @classmethod
    def from_config(cls, config: DaemonConfig, embedded: EmbeddedFactory | None = None) -> Daemon:
        rules = RuleSet.from_yaml(read_text(config.rules_file), config.rules_file) if config.rules_file \
            else builtin_rules()
        for warning in rules.warnings:
            log.warning("%s", warning)
        targets = [Target(t.name, t.role, make_source(t, config.includes, config.excludes), t.node_id, t.labels,
                          t.interval_s, t.timeout_s) for t in config.targets]
        background = None
        if config.embedded:
            if embedded is None:
                raise ConfigError([f"{config.source}: embedded: an embedded cluster is served by `kafka-jmx serve`, "
                                   "not by the exporter library alone"])
            more, background = embedded(config)
            targets += more
        sink = None
        if config.zabbix is not None:
            z = config.zabbix
            sink = TrapperSink(z.server, z.port, load_catalog(), config.cluster, z.host_name, z.batch_size,
                               z.spool_limit, z.send_interval_s, psk=z.psk, topics=z.topics)
        return cls(config.cluster, targets, rules, config.prometheus, background, sink, config.kafka,
                   brokers_expected=config.brokers_expected, jvm=config.jvm, otlp=config.otlp)

    @property
    def url(self) -> str:
        scheme = "https" if self.server.httpd.socket.__class__.__name__ == "SSLSocket" else "http"
        return f"{scheme}://{self.server.httpd.server_address[0]!s}:{self.server.port}/metrics"

    def start(self) -> None:
        if self.background is not None:
            self.background.start()
        if self.zabbix is not None:
            self.zabbix.start()
        for w in self.workers:
            w.start()
        if self.lag is not None:
            self.lag.start()
        self.renderer.start()
        self.server.start()
        if self.otlp is not None:
            self.otlp.start()

    def stop(self) -> None:
        if self.otlp is not None:
            self.otlp.close()
        self.server.stop()
        for w in self.workers:
            w.stop()
        if self.lag is not None:
            self.lag.stop()
        self.renderer.stop()
        if self.background is not None:
            self.background.stop()
        for w in self.workers:
            w.join(2.0)
            w.target.source.close()
        if self.lag is not None:
            self.lag.join(2.0)
        if self.zabbix is not None:
            self.zabbix.stop()
        JmxReader.stop_all()

    def serve_forever(self) -> int:
        """Serves until SIGINT or SIGTERM (0), or until the background fails (1, after logging why)."""
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        log.info("serving %s for %d targets%s", self.url, len(self.workers),
                 " and consumer groups through the Kafka protocol" if self.lag else "")
        failed = None
        while not done.wait(1.0):
            failed = self.background.error if self.background is not None else None
            if failed is not None:
                log.error("stopping: the embedded cluster stopped on an error: %r", failed)
                break
        self.stop()
        return 1 if failed is not None else 0
