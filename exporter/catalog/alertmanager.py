"""The Alertmanager routing tree and inhibitions for the Kafka alerts, from the catalog.

The file is a whole Alertmanager configuration (amtool checks it, an Alertmanager runs on it), but meant to be
merged into yours: the route under `routes:` (every Kafka alert, by severity), the three receivers (give them
your integrations) and the inhibit rules (generated from the catalog's `inhibitions:`, so that a cause pages
and what follows from it does not)."""
from __future__ import annotations

from typing import Any

import yaml

from exporter.catalog.alerts import duration_seconds
from exporter.catalog.model import Catalog

HEADER = """\
# Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand.
# Merge into your Alertmanager configuration: the route under `route.routes` (add it to your root route's
# routes), the receivers kafka-critical, kafka-warning and kafka-info (add your integrations to them:
# pagerduty_configs, email_configs, ...) and the inhibit_rules. As it stands it is a valid configuration whose
# receivers notify nobody (`amtool check-config` accepts it).
# Timing, per group of one alert in one cluster (group_by: cluster, alertname):
#   group_wait 30s       one notification carries every node that raises the same alert at once (an alert
#                        pending for longer than that, one with a `for:`, is sent as soon as it arrives)
#   group_interval 5m    new nodes joining a group's problem, and resolutions, at most every 5 minutes
#   repeat_interval      critical 1h (still broken: remind), warning 4h, info 24h (notices: an election, a
#                        restart, an upgrade; they resolve on their own)
# An inhibition holds back what its cause explains when the cause is firing by the time the consequence is
# sent: the catalog's periods order them so (KafkaFencedBrokers after 1m, under-replication after 5m).
"""
ROUTE_MATCHER = 'alertname=~"Kafka.+"'
SEVERITIES = {"critical": "1h", "warning": "4h", "info": "24h"}
TIMINGS = {"group_wait": "30s", "group_interval": "5m"}
# an alert rehearsal: notifications within seconds (the faults are real, the waits short)
FAST_TIMINGS = {"group_wait": "1s", "group_interval": "2s"}


def receiver(severity: str) -> str:
    return f"kafka-{severity}"


def render(catalog: Catalog, hold_max: str | None = None, webhook_url: str | None = None) -> dict[str, Any]:
    """hold_max (a rehearsal): grouping waits of seconds; webhook_url: every Kafka receiver posts there (with
    resolutions), where a rehearsal counts the notifications."""
    severities = {t.alert.severity for t in catalog.triggers} | {t.alert.severity for t in catalog.groups.triggers}
    unknown = severities - set(SEVERITIES)
    if unknown:
        raise ValueError(f"alert severities without an Alertmanager receiver: {sorted(unknown)} "
                         f"(exporter/catalog/alertmanager.py knows {', '.join(SEVERITIES)})")
    timings = FAST_TIMINGS if hold_max is not None else TIMINGS
    if hold_max is not None and duration_seconds(hold_max) < duration_seconds(FAST_TIMINGS["group_interval"]):
        raise ValueError(f"hold_max {hold_max} is shorter than a rehearsal's group_interval")
    kafka_route: dict[str, Any] = {
        "matchers": [ROUTE_MATCHER],
        "receiver": receiver("warning"),
        "group_by": ["cluster", "alertname"],
        **timings,
        "repeat_interval": SEVERITIES["warning"],
        "routes": [{"matchers": [f'severity="{s}"'], "receiver": receiver(s), "repeat_interval": repeat}
                   for s, repeat in SEVERITIES.items() if s != "warning"],
    }
    inhibit_rules = []
    for rule in catalog.inhibitions:
        sources = [catalog.alert_name(t) for t in rule.sources]
        if rule.targets:
            targets = [f'alertname=~"{"|".join(catalog.alert_name(t) for t in rule.targets)}"']
        else:
            targets = [ROUTE_MATCHER, f'alertname!~"{"|".join(sources)}"']
        inhibit_rules.append({"source_matchers": [f'alertname=~"{"|".join(sources)}"'],
                              "target_matchers": targets, "equal": list(rule.equal)})
    receivers: list[dict[str, Any]] = [{"name": "default"}]
    for s in SEVERITIES:
        r: dict[str, Any] = {"name": receiver(s)}
        if webhook_url:
            r["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
        receivers.append(r)
    return {"route": {"receiver": "default", "routes": [kafka_route]}, "inhibit_rules": inhibit_rules,
            "receivers": receivers}


def serialize(doc: dict[str, Any], catalog: Catalog) -> str:
    """The configuration, each inhibit rule with the reason the catalog gives for it."""
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    lines = body.splitlines(keepends=True)
    out, rules = [], iter(catalog.inhibitions)
    in_rules = False
    for line in lines:
        if line.startswith("inhibit_rules:"):
            in_rules = True
        elif not line.startswith((" ", "-")):
            in_rules = False
        if in_rules and line.startswith("- source_matchers:"):
            out.append(f"# {next(rules).why}\n")
        out.append(line)
    return HEADER + "".join(out)
