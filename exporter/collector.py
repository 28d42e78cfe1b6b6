"""Background collection per target, and the Prometheus view of the last complete results.

Each target has its own thread, schedule and timeout; a slow or dead target never delays the
others or a scrape. Each target renders its own series right after its collection
(exporter.exposition); /metrics serves bytes assembled from those chunks after collections, never
on the request path. A failed target reports up 0 and none of its series (no stale values).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.clock import SYSTEM, Clock
from exporter.exposition import FamilyChunk, TargetSeries, assemble
from exporter.jvm import JvmView
from exporter.periodic import PeriodicWorker
from exporter.rules import RuleCache, RuleError, RuleSet
from exporter.sample import Collection, SourceError
from exporter.sources import Source
from kafka_common.roles import is_broker

log = logging.getLogger("kafka_jmx.collector")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_malloc_trim = getattr(_libc, "malloc_trim", None)        # glibc only
_mallopt = getattr(_libc, "mallopt", None)
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas: the pages the collection threads free stay spread
    over a dozen of them. Called before the threads start; without glibc it does nothing."""
    if _mallopt is not None:
        _mallopt(M_ARENA_MAX, arenas)
# Rules and rendering hold the GIL anyway: one target at a time through them keeps one target's
# samples, matches and new lines in memory at once instead of every target's that collects now.
_PROCESSING = threading.Lock()
VERSION = "0.1.0"
ERROR_KINDS = ("connect", "auth", "timeout", "tls", "protocol", "http", "config", "internal")


@dataclass
class Target:
    name: str
    role: str
    source: Source
    node_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    interval_s: float = 10.0
    timeout_s: float = 10.0


@dataclass
class TargetResult:
    up: bool
    series: int             # how many series the rules made
    duration_s: float
    finished_at: float
    error_kind: str | None = None
    error: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    chunks: dict[str, FamilyChunk] = field(default_factory=dict)


class TargetWorker(PeriodicWorker):
    """Collects one target on its own thread: read, apply the rules, publish the result."""

    def __init__(self, target: Target, rules: RuleSet, on_result: Callable[[TargetWorker], None],
                 on_collection: Callable[[Target, Collection], None] | None = None, cluster: str = "kafka",
                 target_labels: bool = True, clock: Clock = SYSTEM, jvm: JvmView | None = None) -> None:
        """jvm: also the JVM and process metrics of a JVM target (its source asked for the threads)."""
        super().__init__(f"collect-{target.name}", target.interval_s, on_result)
        self.target = target
        self.clock = clock
        self.series = TargetSeries({**target.labels, "cluster": cluster, "node": target.name,
                                    "node_id": target.node_id, "role": target.role} if target_labels else {})
        self.rules = rules
        self.jvm = jvm
        if jvm is not None and hasattr(target.source, "threads"):
            target.source.threads = True
        self.rule_cache = RuleCache()
        self.on_collection = on_collection          # the Zabbix sink takes the raw samples
        self.result: TargetResult | None = None
        self.errors = {kind: 0 for kind in ERROR_KINDS}
        self.last_success: float = 0.0
        self.running_since: float | None = None

    def collect_once(self) -> TargetResult:
        started = self.clock.monotonic()
        self.running_since = started
        try:
            collection = self.target.source.read()
            with _PROCESSING:
                if self.on_collection is not None:
                    self.on_collection(self.target, collection)
                matched = self.rules.apply(collection.samples, self.rule_cache)
                chunks = self.series.render(matched)
                if self.jvm is not None:
                    # a family the rules made too (a user's rules file) stays the rules'
                    for name, chunk in self.jvm.render(collection, self.series.constant_labels).items():
                        chunks.setdefault(name, chunk)
                series, skipped = len(matched), dict(collection.skipped)
                del collection, matched
            result = TargetResult(True, series, self.clock.monotonic() - started, self.clock.time(),
                                  skipped=skipped, chunks=chunks)
            self.last_success = result.finished_at
        except SourceError as e:
            result = TargetResult(False, 0, self.clock.monotonic() - started, self.clock.time(), e.kind, str(e))
        except RuleError as e:
            result = TargetResult(False, 0, self.clock.monotonic() - started, self.clock.time(), "config",
                                  f"{self.target.name}: {e}")
        except Exception as e:      # a bug or an unexpected answer must not stop the other targets
            log.exception("collecting %s failed", self.target.name)
            result = TargetResult(False, 0, self.clock.monotonic() - started, self.clock.time(), "internal",
                                  f"{self.target.name}: {type(e).__name__}: {e}")
        finally:
            self.running_since = None
        if not result.up and not self.stopping:       # a stopping daemon's JVMs may be gone already
            kind = result.error_kind if result.error_kind in self.errors else "internal"
            self.errors[kind] += 1
            if self.result is None or self.result.up or self.result.error != result.error:
                log.warning("%s", result.error)
        self.result = result
        return result

    def current(self) -> TargetResult | None:
        """The last result, or a timeout result while a collection runs past the target's timeout."""
        since = self.running_since
        if since is not None and self.clock.monotonic() - since > self.target.timeout_s:
            return TargetResult(False, 0, self.clock.monotonic() - since, self.clock.time(), "timeout",
                                f"{self.target.name}: collection running for more than {self.target.timeout_s:.0f} s")
        return self.result


class HealthView:
    """A prometheus_client collector of the targets' health metrics and the build info."""

    def __init__(self, workers: Iterable[TargetWorker], cluster: str, brokers_expected: int | None = None) -> None:
        """brokers_expected: how many brokers the cluster should have active (default: the broker targets)."""
        self.workers = list(workers)
        self.cluster = cluster
        self.brokers_expected = brokers_expected if brokers_expected is not None else \
            sum(1 for w in self.workers if is_broker(w.target.role))

    def collect(self) -> Iterable[Metric]:
        health = {name: GaugeMetricFamily(name, doc, labels=["cluster", "node", "node_id", "role"]) for name, doc in (
            ("kafkajmx_target_up", "1 when the last collection of the target succeeded."),
            ("kafkajmx_collection_duration_seconds", "How long the last collection of the target took."),
            ("kafkajmx_target_samples", "Samples the rules made from the target's last collection."),
            ("kafkajmx_last_success_timestamp_seconds", "When the target was last collected successfully."))}
        errors = CounterMetricFamily("kafkajmx_collection_errors", "Failed collections by kind.",
                                     labels=["cluster", "node", "node_id", "role", "kind"])
        skipped = GaugeMetricFamily("kafkajmx_skipped_attributes", "Attributes skipped in the last collection, by reason.",
                                    labels=["cluster", "node", "node_id", "role", "reason"])
        for w in self.workers:
            t = w.target
            base = [self.cluster, t.name, t.node_id, t.role]
            for kind, n in w.errors.items():
                errors.add_metric(base + [kind], float(n))
            result = w.current()
            if result is None:
                continue        # its first collection runs (a JMX target's helper JVM may be compiling): not down
            up = result.up
            health["kafkajmx_target_up"].add_metric(base, 1.0 if up else 0.0)
            health["kafkajmx_collection_duration_seconds"].add_metric(base, result.duration_s)
            health["kafkajmx_target_samples"].add_metric(base, float(result.series) if up else 0.0)
            health["kafkajmx_last_success_timestamp_seconds"].add_metric(base, w.last_success)
            if up:
                for reason, n in result.skipped.items():
                    skipped.add_metric(base + [reason], float(n))
        yield from health.values()
        yield errors
        yield skipped
        if self.brokers_expected:
            expected = GaugeMetricFamily("kafkajmx_brokers_expected", "Brokers the cluster should have active (the "
                                         "config's brokers_expected, else its broker targets): the broker alert's "
                                         "threshold.", labels=["cluster"])
            expected.add_metric([self.cluster], float(self.brokers_expected))
            yield expected
        info = GaugeMetricFamily("kafkajmx_build_info", "The exporter's version.", labels=["version"])
        info.add_metric([VERSION], 1.0)
        yield info


def exposition(workers: Iterable[TargetWorker], registry: CollectorRegistry) -> list[bytes]:
    """The series of every target that is up, then what `registry` (health and the like) holds."""
    fragments = []
    for w in workers:
        result = w.current()
        if result is not None and result.up:
            fragments.append(result.chunks)
    return assemble(fragments, generate_latest(registry))


class Renderer:
    """Renders the exposition after collections, at most every min_interval_s, off the request path."""

    def __init__(self, workers: list[TargetWorker], cluster: str, min_interval_s: float = 0.2,
                 extra: Iterable[Collector] = (), brokers_expected: int | None = None) -> None:
        self.workers = workers
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HealthView(workers, cluster, brokers_expected))
        for collector in extra:
            self.registry.register(collector)
        self.min_interval_s = min_interval_s
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self.body_parts: list[bytes] = []
        self.body_gzip = b""        # Prometheus always asks for gzip: compressed here, not while it waits
        self.render_seconds = 0.0
        # renders publish in the order they read the results: an older one never overwrites a newer one
        self._render_lock = threading.Lock()
        self.render()
        self._thread = threading.Thread(target=self._loop, name="render", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def mark_dirty(self, *_: object) -> None:
        self._dirty.set()

    def body(self) -> bytes:
        return b"".join(self.body_parts)

    def render(self) -> None:
        with self._render_lock:
            started = time.monotonic()
            parts = exposition(self.workers, self.registry)
            gz = zlib.compressobj(1, zlib.DEFLATED, 31)     # wbits 31: the gzip container
            self.body_gzip = b"".join([gz.compress(p) for p in parts] + [gz.flush()])
            self.body_parts = parts
            self.render_seconds = time.monotonic() - started
        if _malloc_trim is not None:
            # a render frees a whole exposition; hand the pages back instead of keeping the peak
            _malloc_trim(0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            self.render()
            self._stop.wait(self.min_interval_s)
