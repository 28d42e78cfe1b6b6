"""Every series something reads is made by something: the names in the alert rules, the Grafana panels, the
promtool cases and the Zabbix calculated items are produced by the built-in rules on a simulated cluster,
the lag families or the exporter's own metrics. An alert on a name nobody makes would never fire."""
import json
import re

import pytest
import yaml
from conftest import ROOT
from prometheus_client.registry import CollectorRegistry
from test_prometheus_rules import CASES

from exporter.catalog.model import load_catalog
from exporter.collector import HealthView, Target, TargetWorker, exposition
from exporter.exposition import sample_name
from exporter.jvm import FAMILIES as JVM_FAMILIES
from exporter.lag.families import render
from exporter.lag.isolated import IsolatedReader
from exporter.lag.model import Group, Layout, Snapshot
from exporter.lag.trends import TrendTracker
from exporter.lag.worker import LagWorker
from exporter.rules import MetricType
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_jmx.embedded import EmbeddedSource

KEYWORDS = {"by", "on", "without", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
            "inf", "nan"}


def promql_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords, label
    names (in {...} or by/on/without/ignoring (...)) or parts of strings and ranges."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"label_values\(\s*([^,)]*)(,[^)]*)?\)", r"\1", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    return {m.group(0) for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e)
            if not e[m.end():].lstrip().startswith("(") and m.group(0).lower() not in KEYWORDS}


def exposed(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def produced(faulted_cluster) -> set[str]:
    """The names the exporter serves for a busy cluster with a consumer group."""
    rules = builtin_rules()
    workers = []
    for name, node in faulted_cluster.servers.items():
        if node.alive:
            target = Target(name, node.role, EmbeddedSource(name, node), str(node.node_id))
            worker = TargetWorker(target, rules, lambda w: None, cluster="prod")
            worker.collect_once()
            workers.append(worker)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthView(workers, "prod", brokers_expected=5))
    lag = LagWorker(IsolatedReader(deadline_s=1.0), "prod", 30.0, 600.0, True, 1000, lambda w: None, None)
    registry.register(lag)
    sink = TrapperSink("127.0.0.1", 10051, load_catalog(), "prod")
    registry.register(sink)
    names = exposed(b"".join(exposition(workers, registry)).decode())
    snap = Snapshot(1.0, {"billing": Group("billing", "classic", "Stable", 1, {("orders", 0): 5}, {}, {"orders": 1})},
                    {"orders": 1}, {("orders", 0): 9}, {("orders", 0): 0}, {("billing", ("orders", 0)): 0.5})
    snap.brokers = {1: "b1:9092"}
    snap.layouts = {("orders", 0): Layout(1, (1,), (1,))}
    for family in render(snap, {"billing": 0}, "prod", True, 1000).families:
        names.update(s.name for s in family.samples)
    # a second collection 30 s later, the group gaining: the rates, the trend, the time to catch up and the
    # retention margin (retention.ms 7 days)
    later = Snapshot(31.0, {"billing": Group("billing", "classic", "Stable", 1, {("orders", 0): 27}, {}, {"orders": 1})},
                     {"orders": 1}, {("orders", 0): 29}, {("orders", 0): 0}, {("billing", ("orders", 0)): 20.0})
    later.retention = {"orders": (604_800_000, -1)}
    trends = TrendTracker(60.0)
    trends.update(snap)
    for family in render(later, {"billing": 0}, "prod", True, 1000, trends=trends.update(later)).families:
        names.update(s.name for s in family.samples)
    # the JVM targets' families (tests/test_jvm_metrics.py holds them to jmx_exporter's agents)
    for f in JVM_FAMILIES:
        name = f.names.get("1.x")
        if name is not None:
            names.update((name + "_count", name + "_sum") if f.type is MetricType.SUMMARY else (name,))
    names.update(sample_name(m.name, m.type) for w in workers for m in rules.apply(w.target.source.read().samples))
    return names


def alert_exprs() -> dict[str, str]:
    doc = yaml.safe_load((ROOT / "templates" / "prometheus" / "kafka-4x-alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def panel_queries() -> dict[str, str]:
    out = {}

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "datasource":         # a data source variable: its query is a plugin type
                return
            for k, v in node.items():
                if k in ("expr", "query") and isinstance(v, str) and v:
                    out[f"{where} {v[:60]}"] = v
                else:
                    walk(v, where)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)
    for path in sorted((ROOT / "dashboards" / "grafana").glob("*.json")):
        walk(json.loads(path.read_text()), path.name)
    return out


def test_the_name_parser_sees_selectors_not_functions_labels_or_keywords():
    assert promql_names('max by (cluster) (increase(a_total{role="x"}[5m])) > 0 unless on (node) b') == {"a_total", "b"}
    assert promql_names("label_values(kafkajmx_target_up{cluster=\"$c\"}, node)") == {"kafkajmx_target_up"}


def test_every_alert_reads_series_the_exporter_makes(produced):
    missing = {alert: sorted(promql_names(expr) - produced) for alert, expr in alert_exprs().items()}
    assert {a: m for a, m in missing.items() if m} == {}


def test_every_dashboard_panel_reads_series_the_exporter_makes(produced):
    queries = panel_queries()
    assert len(queries) > 40
    missing = {where: sorted(promql_names(q) - produced) for where, q in queries.items()}
    assert {w: m for w, m in missing.items() if m} == {}


def test_every_promtool_case_uses_series_the_exporter_makes(produced):
    used = {series.split("{")[0] for firing, healthy, *_ in CASES.values() for series in (*firing, *healthy)}
    assert sorted(used - produced) == []


def test_every_zabbix_calculated_item_aggregates_an_attribute_the_nodes_have(faulted_cluster):
    text = (ROOT / "templates" / "zabbix" / "kafka-4x-6.0.yaml").read_text()
    keys = set(re.findall(r'jmx\["([^"]+)","([^"]+)"\]\?\[group=', text))
    assert len(keys) > 5
    have = {(str(on), attr) for node in faulted_cluster.servers.values() if node.alive
            for on, bean in node.mbeans.items() for attr in node.mbeans.read(on)}
    assert sorted(keys - have) == []
