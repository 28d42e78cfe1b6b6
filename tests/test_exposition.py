"""The incremental exposition writes exactly what prometheus_client's generate_latest writes."""
from __future__ import annotations

import math

import pytest
from conftest import make_cluster
from prometheus_client.parser import text_string_to_metric_families
from straightforward_view import Recording, health_registry, straightforward_exposition

from exporter.collector import Target, TargetWorker, exposition
from exporter.rules import MatchedSample, MetricType, RuleSet
from exporter.rulesets import builtin_rules
from exporter.sample import Collection
from kafka_jmx.embedded import embedded_targets


class Fixed:
    """A source whose rule-made samples the test sets directly."""

    def __init__(self, matched: list[MatchedSample]) -> None:
        self.matched = matched

    def read(self) -> Collection:
        return Collection([], {})

    def close(self) -> None:
        pass


class Passthrough(RuleSet):
    def __init__(self, source: Fixed) -> None:
        super().__init__([])
        self.source = source

    def apply(self, samples, cache=None):
        return list(self.source.matched)


class RecordingPassthrough(Recording):
    def __init__(self, source: Fixed) -> None:
        super().__init__(Passthrough(source))


def worker(name: str, matched: list[MatchedSample], **labels: str) -> TargetWorker:
    source = Fixed(matched)
    w = TargetWorker(Target(name, "broker", source, name[-1], labels), RecordingPassthrough(source), lambda w: None,
                     cluster="c")
    w.collect_once()
    return w


@pytest.mark.slow
def test_a_whole_cluster_through_the_builtin_rules_renders_as_generate_latest():
    c = make_cluster(brokers=3, controllers=3)
    c.create_topic("orders", 6, 3)
    c.run_until(lambda: c.topic_exists("orders"), 30_000)
    c.run_for(5_000)
    rules = Recording(builtin_rules())
    workers = [TargetWorker(t, rules, lambda w: None, cluster="prod") for t in embedded_targets(c)]
    for round_ in range(3):     # the second and third renders come from the prefix cache
        for w in workers:
            w.collect_once()
        body = b"".join(exposition(workers, health_registry(workers, "prod")))
        assert body == straightforward_exposition(workers, "prod"), f"round {round_}"
        c.run_for(2_000)
    assert body.count(b"\n") > 1000


def test_mixed_types_duplicates_counters_escapes_and_special_values_render_as_generate_latest():
    ms = MatchedSample
    a = [
        ms("requests_total", (("topic", "a"),), 5.0, MetricType.COUNTER, "Requests.", "k:type=A,topic=a"),
        ms("requests_total", (("topic", 'q"uo\\te\nnl'),), 1e21, MetricType.COUNTER, "Requests.", "k:type=A,topic=b"),
        ms("mixed", (), math.nan, MetricType.GAUGE, "Help with \\ and\nnewline.", "k:type=M"),
        ms("dup", (("x", "1"),), 1.0, MetricType.GAUGE, "d", "k:type=D,name=one"),
        ms("dup", (("x", "1"),), 2.0, MetricType.GAUGE, "d", "k:type=D,name=two"),
        ms("overlap", (("node", "from-rule"),), -math.inf, MetricType.GAUGE, "o", "k:type=O"),
        ms("plain", (), 1234567.0, MetricType.UNTYPED, "p", "k:type=P"),
    ]
    b = [
        ms("mixed", (), math.inf, MetricType.COUNTER, "Other help.", "k:type=M"),
        ms("requests_total", (("topic", "a"),), 7.0, MetricType.COUNTER, "Requests.", "k:type=A,topic=a"),
        ms("only_b", (("le", "0.5"),), 0.000123, MetricType.GAUGE, "b only", "k:type=B"),
    ]
    workers = [worker("b1", a, rack="r1"), worker("b2", b)]
    for _ in range(2):
        body = b"".join(exposition(workers, health_registry(workers, "c")))
        assert body == straightforward_exposition(workers, "c")
        for w in workers:
            w.collect_once()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["mixed"].type == "unknown"
    assert families["requests"].type == "counter"
    assert {s.labels.get("_objectname") for s in families["dup"].samples} == {"k:type=D,name=one", "k:type=D,name=two"}


def test_a_series_that_disappears_leaves_the_last_render():
    m1 = MatchedSample("g", (("topic", "gone"),), 1.0, MetricType.GAUGE, "g", "k:type=G,topic=gone")
    m2 = MatchedSample("g", (("topic", "stays"),), 1.0, MetricType.GAUGE, "g", "k:type=G,topic=stays")
    w = worker("b1", [m1, m2])
    assert w.series.count("g") == 2
    w.target.source.matched = [m2]
    w.collect_once()
    assert w.series.count("g") == 1
    assert b"gone" not in b"".join(exposition([w], health_registry([w], "c")))
