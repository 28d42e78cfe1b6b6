"""OTLP/HTTP push of the served metrics: what /metrics shows, at an interval, to an OpenTelemetry receiver
(Prometheus 3's --web.enable-otlp-receiver, an OpenTelemetry Collector, Zabbix 8.0).

The request is built from OTLP's own protobuf definitions (opentelemetry-proto), not the OpenTelemetry SDK's
exporter: the SDK's data model has neither summaries (the JVM's garbage collection is one) nor data point
flags, and a series that disappears (a node that stops answering, a partition moved away) must be sent once
with NO_RECORDED_VALUE, which Prometheus stores as the staleness marker a scrape would have left; without
it, a dead node's last values stay in queries for five minutes.

Every node is a resource (service.name kafka-jmx, service.instance.id cluster/node, and the cluster, node,
node_id and role labels as attributes); the series keep all their labels as data point attributes, so a
receiver that promotes no resource attribute still gets the labels the alert rules and dashboards use.
Names are the exposition's own (a counter's with _total): the receiver must not add suffixes
(Prometheus: otlp.translation_strategy UnderscoreEscapingWithoutSuffixes)."""
from __future__ import annotations

import gzip
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collector import VERSION
from exporter.config import OtlpSpec
from exporter.periodic import PeriodicWorker

log = logging.getLogger("kafka_jmx.otlp")
RESOURCE_LABELS = ("cluster", "node", "node_id", "role")
NO_RECORDED_VALUE = pb.DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
CUMULATIVE = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
Labels = tuple[tuple[str, str], ...]
# a series: (resource, metric name, kind, labels); kind is gauge, sum or summary
SeriesKey = tuple[Labels, str, str, Labels]


@dataclass
class _Point:
    kind: str                                       # gauge | sum | summary
    help: str
    value: float = 0.0
    count: float = 0.0
    sum: float = 0.0


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


# the exposition's own lines (exporter/exposition.py and prometheus_client write them alike): read with two
# regular expressions, 2 to 2.6 times faster than prometheus_client's parser, which reads any exposition
# (benchmarks/otlp_push.py)
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPES = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_SUFFIXES = ("_total", "_count", "_sum", "_created", "_info")


def _unescape(value: str) -> str:
    return re.sub(r'\\[\\n"]', lambda m: _ESCAPES[m.group(0)], value) if "\\" in value else value


def points(exposition: str) -> dict[SeriesKey, _Point]:
    """Every series of a Prometheus text exposition, keyed by its node's resource labels, name and labels."""
    out: dict[SeriesKey, _Point] = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for line in exposition.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = _unescape(parts[3]) if len(parts) == 4 else ""
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, label_text, value_text = m.groups()
        family = name
        if name not in types:
            family = next((name[:-len(s)] for s in _SUFFIXES if name.endswith(s) and name[:-len(s)] in types), name)
        mtype = types.get(family, "untyped")
        labels = dict((k, _unescape(v)) for k, v in _LABEL.findall(label_text)) if label_text else {}
        resource = tuple((k, labels[k]) for k in RESOURCE_LABELS if k in labels)
        key_labels = tuple(sorted(labels.items()))
        value = float(value_text)
        if mtype == "summary":
            if "quantile" in labels:
                continue                    # the JVM's summaries have none; a receiver gets count and sum
            point = out.setdefault((resource, family, "summary", key_labels), _Point("summary", helps.get(family, "")))
            if name.endswith("_count"):
                point.count = value
            elif name.endswith("_sum"):
                point.sum = value
            continue
        kind = "sum" if mtype == "counter" and name.endswith("_total") else "gauge"
        out[(resource, name, kind, key_labels)] = _Point(kind, helps.get(family, ""), value)
    return out


def request(current: dict[SeriesKey, _Point], gone: Iterable[tuple[SeriesKey, str]], now_ns: int,
            start_ns: int, version: str) -> ExportMetricsServiceRequest:
    """One export: the current series, and the gone ones (with the help they had) flagged NO_RECORDED_VALUE."""
    by_resource: dict[Labels, dict[tuple[str, str], tuple[str, list[tuple[Labels, _Point | None]]]]] = {}
    for key, point in current.items():
        resource, name, kind, labels = key
        metrics = by_resource.setdefault(resource, {})
        metrics.setdefault((name, kind), (point.help, []))[1].append((labels, point))
    for key, help_ in gone:
        resource, name, kind, labels = key
        metrics = by_resource.setdefault(resource, {})
        metrics.setdefault((name, kind), (help_, []))[1].append((labels, None))
    req = ExportMetricsServiceRequest()
    scope = InstrumentationScope(name="kafka-jmx", version=version)
    for resource, metrics in by_resource.items():
        attrs = dict(resource)
        rm = req.resource_metrics.add()
        rm.resource.CopyFrom(Resource(attributes=[
            _kv("service.name", "kafka-jmx"),
            _kv("service.instance.id", "/".join(v for v in (attrs.get("cluster"), attrs.get("node")) if v)),
            *(_kv(k, v) for k, v in resource)]))
        sm = rm.scope_metrics.add()
        sm.scope.CopyFrom(scope)
        for (name, kind), (help_, series) in metrics.items():
            metric = sm.metrics.add(name=name, description=help_)
            if kind == "summary":
                for labels, p in series:
                    dp = metric.summary.data_points.add(time_unix_nano=now_ns, start_time_unix_nano=start_ns,
                                                        attributes=[_kv(k, v) for k, v in labels])
                    if p is None:
                        dp.flags = NO_RECORDED_VALUE
                    else:
                        dp.count, dp.sum = int(p.count), p.sum
                continue
            if kind == "sum":
                metric.sum.is_monotonic = True
                metric.sum.aggregation_temporality = CUMULATIVE
                data = metric.sum.data_points
            else:
                data = metric.gauge.data_points
            for labels, p in series:
                number = data.add(time_unix_nano=now_ns, attributes=[_kv(k, v) for k, v in labels])
                if kind == "sum":
                    number.start_time_unix_nano = start_ns
                if p is None:
                    number.flags = NO_RECORDED_VALUE
                else:
                    number.as_double = p.value
    return req


class OtlpPusher(PeriodicWorker):
    """Every interval, the exposition's series to the receiver; a series gone since the last export is sent
    once more, as stale. A failed export is logged and the next interval sends the state then (metrics are
    a state, not a queue: what a receiver missed is the values between, as with a missed scrape)."""

    def __init__(self, spec: OtlpSpec, exposition: Callable[[], bytes]) -> None:
        super().__init__("otlp", spec.interval_s, lambda _: None)
        self.spec, self.exposition = spec, exposition
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                                     **dict(spec.headers)})
        self.started_ns = time.time_ns()
        self.last: dict[SeriesKey, str] = {}          # what the last successful export held, with its help
        self.exports = self.failures = 0
        self.last_error: str | None = None

    def collect(self) -> Iterable[Metric]:
        """The push's own health, beside the series it pushes."""
        for name, doc, value in (("kafkajmx_otlp_exports", "OTLP exports the receiver accepted.", self.exports),
                                 ("kafkajmx_otlp_export_failures", "OTLP exports that failed.", self.failures)):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], float(value))
            yield c
        up = GaugeMetricFamily("kafkajmx_otlp_up", "1 when the last OTLP export reached the receiver.")
        up.add_metric([], 1.0 if self.exports and not self.last_error else 0.0)
        yield up

    def collect_once(self) -> None:
        try:
            self.push()
        except (requests.RequestException, ValueError) as e:
            self.failures += 1
            self.last_error = f"OTLP export to {self.spec.endpoint} failed: {e}"
            log.warning("%s (the next one in %.0f s)", self.last_error, self.spec.interval_s)
        except Exception as e:      # a bug must not stop the pushes, nor the daemon's other work
            self.failures += 1
            self.last_error = f"OTLP export failed: {type(e).__name__}: {e}"
            log.exception("OTLP export failed")

    def push(self) -> None:
        current = points(self.exposition().decode())
        gone = [(key, help_) for key, help_ in self.last.items() if key not in current]
        self._send(request(current, gone, time.time_ns(), self.started_ns, VERSION))
        self.last = {key: p.help for key, p in current.items()}

    def close(self) -> None:
        """Stops the pushes and sends every series once more as stale: a stopped exporter's last values leave
        the receiver's queries at once, as a scraped one's do."""
        self.stop()
        self.join(self.spec.timeout_s)
        if not self.last:
            return
        try:
            self._send(request({}, list(self.last.items()), time.time_ns(), self.started_ns, VERSION))
            self.last = {}
        except (requests.RequestException, ValueError) as e:
            log.warning("OTLP: the last export (every series stale) to %s failed: %s", self.spec.endpoint, e)

    def _send(self, req: ExportMetricsServiceRequest) -> None:
        body = gzip.compress(req.SerializeToString(), compresslevel=1)
        r = self.session.post(self.spec.endpoint, data=body, timeout=self.spec.timeout_s)
        if r.status_code // 100 != 2:
            raise ValueError(f"HTTP {r.status_code}: {r.text[:300]}")
        self.exports += 1
        self.last_error = None
