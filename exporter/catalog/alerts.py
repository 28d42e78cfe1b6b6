"""Prometheus alerting rules from the catalog's triggers (same checks, Strimzi-profile names)."""
from __future__ import annotations

import re

import yaml

from exporter.catalog.groups import ConsumerGroups
from exporter.catalog.model import Catalog

HEADER = "# Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand.\n"


def _summary(text: str, catalog: Catalog, per_node: bool) -> str:
    """A problem name with Zabbix macros turned into alert template fields or their defaults; a
    node's alert names the node (Zabbix shows the host beside the problem)."""
    if per_node:
        text = text.replace("Kafka:", "Kafka {{ $labels.node }}:", 1)
    text = text.replace("{$KAFKA.CLUSTER.GROUP}", "{{ $labels.cluster }}")
    text = text.replace("{ITEM.LASTVALUE1}", "{{ $value }}")
    return re.sub(r"\{\$[A-Z0-9_.]+\}", lambda m: catalog.macro(m.group(0)).value, text)


_UNITS_S = {"s": 1, "m": 60, "h": 3600}


def _seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)([smh])", duration)
    if m is None:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {duration!r}")
    return int(m.group(1)) * _UNITS_S[m.group(2)]


def _capped(expr: str, hold_max: str | None) -> str:
    """Range windows capped at hold_max; a changes() window at three times that: it must span the outage
    it detects (a restarted node's series are absent while it is down, and a window shorter than the gap
    sees only the new start time)."""
    if hold_max is None:
        return expr
    cap = _seconds(hold_max)

    def window(m: re.Match) -> str:
        limit = 3 * cap if m.group(1) else cap
        return m.group(0) if _seconds(m.group(2)) <= limit else f"{m.group(1) or ''}[{limit}s]"
    return re.sub(r"(changes\([^\[\]()]*)?\[(\d+[smh])\]", window, expr)


def render(catalog: Catalog, brokers_min: int | None = None, election_latency_max_ms: float | None = None,
           hold_max: str | None = None, lag_seconds_max: float | None = None) -> dict:
    """hold_max caps every alert's `for` and range window (alert rehearsals: the faults are real,
    the waits short; an ISR shrink then stops firing after hold_max instead of 5 minutes)."""
    params = {
        "brokers_min": brokers_min if brokers_min is not None else int(catalog.macro("{$KAFKA.BROKERS.MIN}").value),
        "election_latency_max": election_latency_max_ms if election_latency_max_ms is not None
        else float(catalog.macro("{$KAFKA.ELECTION.LATENCY.MAX.WARN}").value),
        # a period the expression compares with a value in ms: capped like the windows
        "raft_no_leader_ms": 1000 * min(_seconds(catalog.macro("{$KAFKA.RAFT.NO_LEADER.PERIOD}").value),
                                        _seconds(hold_max) if hold_max else 10 ** 9),
    }
    rules = []
    for t in catalog.triggers:
        a = t.alert
        rules.append({
            "alert": a.name,
            "expr": _capped(re.sub(r"\{(brokers_min|election_latency_max|raft_no_leader_ms)\}", lambda m: f"{params[m.group(1)]:g}",
                                   a.expr), hold_max),
            "for": a.for_ if hold_max is None or _seconds(a.for_) <= _seconds(hold_max) else hold_max,
            "labels": {"severity": a.severity, "scope": t.zabbix_scope},
            "annotations": {"summary": _summary(t.problem, catalog, t.scope == "host"), "description": t.description},
        })
    groups = [{"name": "kafka-4x", "rules": rules}]
    cg = catalog.groups
    if cg.triggers:
        lag_max = lag_seconds_max if lag_seconds_max is not None else float(cg.macro("{$KAFKA.LAG.SECONDS.MAX}"))
        group_rules = []
        for t in cg.triggers:
            a = t.alert
            group_rules.append({
                "alert": a.name,
                "expr": _capped(a.expr.replace("{lag_seconds_max}", f"{lag_max:g}"), hold_max),
                "for": a.for_ if hold_max is None or _seconds(a.for_) <= _seconds(hold_max) else hold_max,
                "labels": {"severity": a.severity, "scope": t.zabbix_scope},
                "annotations": {"summary": _group_summary(t.problem, cg, lag_max, cg.item(t.metric).units == "s"),
                                "description": _group_summary(t.description, cg, lag_max, False)},
            })
        groups.append({"name": "kafka-4x-consumer-groups", "rules": group_rules})
    return {"groups": groups}


def _group_summary(text: str, cg: ConsumerGroups, lag_max: float, seconds: bool) -> str:
    """A consumer-group problem with the discovered names as labels and macros as their defaults."""
    text = text.replace("{#GROUP}", "{{ $labels.consumergroup }}").replace("{#TOPIC}", "{{ $labels.topic }}")
    text = text.replace("{ITEM.LASTVALUE1}", "{{ $value | humanizeDuration }}" if seconds else "{{ $value }}")
    text = re.sub(r'\{\$KAFKA\.LAG\.SECONDS\.MAX(:"[^"]*")?\}', f"{lag_max:g}", text)
    return re.sub(r'\{\$([A-Z0-9_.]+)(:"[^"]*")?\}', lambda m: cg.macro("{$" + m.group(1) + "}"), text)


def serialize(doc: dict) -> str:
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
