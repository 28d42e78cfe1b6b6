"""The lag collection in the daemon: its own thread and interval (one collection per interval however
often Prometheus scrapes), the last complete result served, and its health."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.clock import SYSTEM, Clock
from exporter.lag.families import Rendered, render
from exporter.lag.isolated import IsolatedReader, LagReadError
from exporter.lag.model import Snapshot
from exporter.lag.status import StatusTracker
from exporter.lag.trends import Trends, TrendTracker
from exporter.periodic import PeriodicWorker

log = logging.getLogger("kafka_jmx.lag")


class LagWorker(PeriodicWorker):
    def __init__(self, reader: IsolatedReader, cluster: str, interval_s: float, status_window_s: float,
                 partition_series: bool = True, max_series: int = 100_000,
                 on_result: Callable[[LagWorker], None] = lambda w: None,
                 on_snapshot: Callable[[Snapshot, dict[str, int], Trends], None] | None = None,
                 clock: Clock = SYSTEM, disabled: frozenset[str] = frozenset(), rate_window_s: float = 300.0) -> None:
        super().__init__("collect-kafka-lag", interval_s, on_result)
        self.clock = clock
        self.reader, self.cluster = reader, cluster
        self.status = StatusTracker(status_window_s)
        self.trends = TrendTracker(rate_window_s)
        self.partition_series, self.max_series = partition_series, max_series
        self.disabled = disabled
        self.on_snapshot = on_snapshot
        self.rendered: Rendered | None = None
        self.snapshot: Snapshot | None = None          # the last successful collection
        self.up = False
        self.duration_s = 0.0
        self.last_success = 0.0
        self.partitions_unread = 0
        self.groups_unread = 0
        self.read_errors = 0
        self.failures = 0
        self.dropped_total = 0
        self.last_problem = ""                 # what the last failed collection said (logged once)

    def join(self, timeout: float) -> None:
        super().join(timeout)
        self.reader.close()

    def collect_once(self) -> None:
        started = self.clock.monotonic()
        try:
            snap = self.reader.read()
            verdicts = self.status.update(snap)
            trends = self.trends.update(snap)
            rendered = render(snap, verdicts, self.cluster, self.partition_series, self.max_series, self.disabled,
                              trends)
        except LagReadError as e:
            self._failed(f"kafka: {e}")
        except Exception as e:      # an unexpected answer must not stop the daemon's other collections
            log.exception("kafka lag collection failed")
            self._failed(f"kafka: {type(e).__name__}: {e}")
        else:
            self.rendered, self.snapshot, self.up = rendered, snap, True
            self.last_success = self.clock.time()
            self.partitions_unread = len(snap.unread)
            self.groups_unread = len(snap.unread_groups)
            self.read_errors += len(snap.errors)
            self.dropped_total += rendered.dropped
            problem = "; ".join(snap.errors)
            if problem and problem != self.last_problem:
                log.warning("kafka lag collection: %s", problem)
            self.last_problem = problem
            if self.on_snapshot is not None:
                self.on_snapshot(snap, verdicts, trends)
        finally:
            self.duration_s = self.clock.monotonic() - started

    def _failed(self, message: str) -> None:
        self.up, self.rendered, self.snapshot = False, None, None       # no stale lag: the series go until the next success
        self.failures += 1
        if message != self.last_problem:
            log.warning("%s", message)
        self.last_problem = message

    # -- prometheus_client collector ----------------------------------------------------------------------------
    def collect(self) -> Iterable[Metric]:
        rendered = self.rendered
        if rendered is not None:
            yield from rendered.families
        labels = ["cluster"]
        for name, doc, value in (
                ("kafkajmx_kafka_up", "1 when the last consumer-group collection through the Kafka protocol succeeded.",
                 1.0 if self.up else 0.0),
                ("kafkajmx_kafka_collection_duration_seconds", "How long the last consumer-group collection took.",
                 self.duration_s),
                ("kafkajmx_kafka_last_success_timestamp_seconds", "When consumer groups were last collected.",
                 self.last_success),
                ("kafkajmx_kafka_partitions_unread", "Partitions whose offsets could not be read in the last "
                 "collection (their leader did not answer): their lag is not reported.", float(self.partitions_unread)),
                ("kafkajmx_kafka_groups_unread", "Groups whose committed offsets could not be read in the last "
                 "collection (their coordinator did not answer, also to a new client): their series are left out.",
                 float(self.groups_unread)),
                ("kafkajmx_kafka_series", "Lag series of the last collection.",
                 float(rendered.series if rendered else 0))):
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric([self.cluster], value)
            yield g
        for name, doc, value in (
                ("kafkajmx_kafka_collection_errors", "Consumer-group collections that failed.", self.failures),
                ("kafkajmx_kafka_read_errors", "Reads that failed within consumer-group collections that went on "
                 "(the group listing, a group, partition offsets); the log names them.", self.read_errors),
                ("kafkajmx_kafka_series_dropped", "Lag series left out by kafka.max_series, over all collections.",
                 self.dropped_total)):
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric([self.cluster], float(value))
            yield c
