"""The straightforward exporter view: a prometheus_client collector that builds every family from
the targets' last samples on each call. The incremental exposition must equal its generate_latest
byte for byte (tests), and the benchmark compares against rendering it per scrape."""
from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample as PromSample

from exporter.collector import HealthView, TargetWorker
from exporter.rules import MatchedSample, MetricType, RuleCache, RuleSet
from exporter.sample import Sample

FAMILIES = {MetricType.GAUGE: GaugeMetricFamily, MetricType.COUNTER: CounterMetricFamily,
            MetricType.UNTYPED: UnknownMetricFamily}


class Recording:
    """Rules that keep what they matched last for each cache (that is, for each target)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.last: dict[int, list[MatchedSample]] = {}

    def apply(self, samples: Iterable[Sample], cache: RuleCache | None = None) -> list[MatchedSample]:
        matched = self.rules.apply(samples, cache)
        self.last[id(cache)] = matched
        return matched


class StraightforwardView:
    def __init__(self, workers: Iterable[TargetWorker], cluster: str) -> None:
        self.workers = list(workers)
        self.cluster = cluster

    def collect(self) -> Iterable[Metric]:
        families: dict[str, tuple[MetricType, str, list[tuple[dict[str, str], float, str]]]] = {}
        for w in self.workers:
            result = w.current()
            if result is None or not result.up:
                continue
            t = w.target
            target_labels = {**t.labels, "cluster": self.cluster, "node": t.name, "node_id": t.node_id, "role": t.role}
            for m in w.rules.last[id(w.rule_cache)]:
                fam = families.get(m.name)
                if fam is None:
                    fam = families[m.name] = (m.type, m.help, [])
                elif fam[0] != m.type:
                    families[m.name] = fam = (MetricType.UNTYPED, fam[1], fam[2])
                fam[2].append(({**target_labels, **dict(m.labels)}, m.value, m.object_name))   # the rule wins
        for name, (mtype, help_, samples) in sorted(families.items()):
            keys = [tuple(sorted(labels.items())) for labels, _, _ in samples]
            duplicated = len(set(keys)) < len(keys)
            metric = FAMILIES[mtype](name, help_)
            for labels, value, object_name in samples:
                if duplicated:
                    labels = {**labels, "_objectname": object_name}
                suffix = "_total" if metric.type == "counter" else ""
                metric.samples.append(PromSample(metric.name + suffix, labels, value))
            yield metric


def health_registry(workers: list[TargetWorker], cluster: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthView(workers, cluster))
    return registry


def straightforward_registry(workers: list[TargetWorker], cluster: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StraightforwardView(workers, cluster))
    registry.register(HealthView(workers, cluster))
    return registry


def straightforward_exposition(workers: list[TargetWorker], cluster: str) -> bytes:
    return generate_latest(straightforward_registry(workers, cluster))
