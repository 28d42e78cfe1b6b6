"""Prometheus alerting rules from the catalog's triggers (same checks, Strimzi-profile names).

An alert's `expr` and `for` name their thresholds and periods with the Zabbix macros of the same
trigger (`{$KAFKA.URP.PERIOD}`; `{$X|ms}` for a duration in milliseconds, `{$X|ratio}` for a percent
as a fraction), and its annotations are the trigger's texts with those macros filled in from the
same values: an alert can never say one threshold and check another. A macro in an alert's text
that neither its expression nor its `for` uses is refused (the alert would state what it does not
check); such an alert gets its own `description` in the catalog."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from exporter.catalog.model import Catalog

HEADER = "# Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand.\n"
# {$NAME}, {$NAME:"context"} (the context is Zabbix's; an alert takes the macro's value) and {$NAME|ms|ratio}
PLACEHOLDER = re.compile(r'\{\$([A-Z0-9_.]+)(?::"[^"]*")?(?:\|(ms|ratio))?\}')
CLUSTER_GROUP = "{$KAFKA.CLUSTER.GROUP}"
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# the scrape and evaluation interval the README's quickstart configures: the shipped rules' windows are made for it
SCRAPE_INTERVAL = "15s"
RANGE = re.compile(r"\[(\d+[smhd])(?::[^\]]*)?\]")


class AlertError(ValueError):
    """An alert of the catalog that cannot be rendered truthfully; the message names it."""


def duration_seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", duration)
    if m is None:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {duration!r}")
    return int(m.group(1)) * _UNITS_S[m.group(2)]


def _capped(expr: str, hold_max: str | None) -> str:
    """Range windows capped at hold_max; a changes() window at three times that: it must span the outage
    it detects (a restarted node's series are absent while it is down, and a window shorter than the gap
    sees only the new start time)."""
    if hold_max is None:
        return expr
    cap = duration_seconds(hold_max)

    def window(m: re.Match[str]) -> str:
        limit = 3 * cap if m.group(1) else cap
        return m.group(0) if duration_seconds(m.group(2)) <= limit else f"{m.group(1) or ''}[{limit}s]"
    return re.sub(r"(changes\([^\[\]()]*)?\[(\d+[smhd])\]", window, expr)


def macro_values(catalog: Catalog, brokers_min: int | None = None, election_latency_max_ms: float | None = None,
                 hold_max: str | None = None, lag_seconds_max: float | None = None,
                 retention_margin_min: float | None = None) -> dict[str, str]:
    """Every macro's value for one rendering: the catalog's defaults, the operator's thresholds, and
    with hold_max every period capped at it."""
    values = {m.macro: m.value for m in catalog.macros}
    values.update({macro: value for macro, value, _ in catalog.groups.macros})
    for macro, given in (("{$KAFKA.BROKERS.MIN}", brokers_min), ("{$KAFKA.ELECTION.LATENCY.MAX.WARN}",
                                                                  election_latency_max_ms),
                         ("{$KAFKA.LAG.SECONDS.MAX}", lag_seconds_max),
                         ("{$KAFKA.RETENTION.MARGIN.MIN}", retention_margin_min)):
        if given is not None:
            values[macro] = f"{given:g}"
    if hold_max is not None:
        cap = duration_seconds(hold_max)
        for macro, value in values.items():
            if re.fullmatch(r"\d+[smhd]", value) and duration_seconds(value) > cap:
                values[macro] = hold_max
    return values


def _fill(text: str, values: dict[str, str], auto: Callable[[str], str | None] = lambda _: None) -> str:
    """The placeholders filled from values; auto: the PromQL that stands for a macro's 0 (expressions only)."""
    def one(m: re.Match[str]) -> str:
        macro = "{$" + m.group(1) + "}"
        value = values[macro]
        if value == "0" and (fragment := auto(macro)) is not None:
            return fragment
        if m.group(2) == "ms":
            return f"{1000 * duration_seconds(value):g}"
        if m.group(2) == "ratio":
            return f"{float(value) / 100:g}"
        return value
    return PLACEHOLDER.sub(one, text)


def _bound(name: str, texts: list[str], expr: str, for_: str) -> None:
    used = {m.group(1) for m in PLACEHOLDER.finditer(expr + for_)}
    for text in texts:
        for m in PLACEHOLDER.finditer(text):
            if "{$" + m.group(1) + "}" != CLUSTER_GROUP and m.group(1) not in used:
                raise AlertError(f"alert {name}: its text names {{${m.group(1)}}}, which neither its expr nor its "
                                 "for uses: bind it there, or give the alert a description of its own")


def check_windows(doc: dict[str, Any], scrape_interval: str) -> None:
    """Every range window holds two samples at scrape_interval. Prometheus 3's windows are left-open: a window
    of N intervals holds N samples (2.x: N or N+1), so a window under two intervals leaves rate(), increase()
    and changes() one sample, and no result, at some phases of the scrapes."""
    step = duration_seconds(scrape_interval)
    for group in doc["groups"]:
        for rule in group["rules"]:
            for window in RANGE.findall(rule["expr"]):
                if duration_seconds(window) < 2 * step:
                    raise AlertError(f"alert {rule['alert']}: its window [{window}] holds fewer than two samples at "
                                     f"a scrape interval of {scrape_interval} (Prometheus 3's windows are left-open): "
                                     f"scrape at most every {duration_seconds(window) // 2}s, or widen the window")


def render(catalog: Catalog, brokers_min: int | None = None, election_latency_max_ms: float | None = None,
           hold_max: str | None = None, lag_seconds_max: float | None = None,
           scrape_interval: str | None = SCRAPE_INTERVAL, retention_margin_min: float | None = None) -> dict[str, Any]:
    """hold_max caps every alert's `for` and range window (alert rehearsals: the faults are real,
    the waits short; an ISR shrink then stops firing after hold_max instead of 5 minutes); scrape_interval:
    the interval every window must hold two samples of (check_windows)."""
    values = macro_values(catalog, brokers_min, election_latency_max_ms, hold_max, lag_seconds_max,
                          retention_margin_min)
    autos = {m.macro: m.prometheus_auto for m in catalog.macros if m.prometheus_auto}
    rules = []
    for t in catalog.triggers:
        a = t.alert
        description = a.description or t.description
        summary = t.problem.replace("{HOST.NAME}", "{{ $labels.node }}")
        rules.append(_rule(a.name, a.expr, a.for_, a.severity, t.zabbix_scope, summary, description, values, hold_max,
                           autos.get, "{{ $value }}"))
    groups = [{"name": "kafka-4x", "rules": rules}]
    cg = catalog.groups
    if cg.triggers:
        group_rules = []
        for gt in cg.triggers:
            ga = gt.alert
            seconds = cg.item(gt.metric).units == "s"
            value = "{{ $value | humanizeDuration }}" if seconds else "{{ $value }}"
            summary = gt.problem.replace("{#GROUP}", "{{ $labels.consumergroup }}").replace("{#TOPIC}", "{{ $labels.topic }}")
            description = gt.description.replace("{#GROUP}", "the group").replace("{#TOPIC}", "the topic")
            group_rules.append(_rule(ga.name, ga.expr, ga.for_, ga.severity, gt.zabbix_scope, summary, description, values,
                                     hold_max, lambda _: None, value))
        groups.append({"name": "kafka-4x-consumer-groups", "rules": group_rules})
    doc = {"groups": groups}
    if scrape_interval is not None:
        check_windows(doc, scrape_interval)
    return doc


def _rule(name: str, expr: str, for_: str, severity: str, scope: str, summary: str, description: str,
          values: dict[str, str], hold_max: str | None, auto: Callable[[str], str | None], value: str) -> dict[str, Any]:
    _bound(name, [summary, description], expr, for_)
    summary = summary.replace(CLUSTER_GROUP, "Kafka {{ $labels.cluster }}").replace("{ITEM.LASTVALUE1}", value)
    description = description.replace(CLUSTER_GROUP, "the cluster")
    for_ = _fill(for_, values)
    if hold_max is not None and duration_seconds(for_) > duration_seconds(hold_max):
        for_ = hold_max
    return {
        "alert": name,
        # windows written in the expression are capped before the placeholders are filled: a macro's
        # value is capped by macro_values, and an automatic threshold keeps its own window
        "expr": _fill(_capped(expr, hold_max), values, auto),
        "for": for_,
        "labels": {"severity": severity, "scope": scope},
        "annotations": {"summary": _fill(summary, values), "description": _fill(description, values)},
    }


def serialize(doc: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
