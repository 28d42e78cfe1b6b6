"""templates/zabbix/ITEMS.md: every item, cluster aggregate, trigger and macro of the templates, with
the MBean each item reads, from the catalog."""
from __future__ import annotations

from exporter.catalog.model import Catalog, Metric

HEADER = ("<!-- Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand. -->\n")
ROLES = {"broker": "broker", "controller": "controller", "both": "broker, controller"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _how(m: Metric) -> str:
    if m.lld == "bean" and m.discovers:
        return (f"one per {m.discovers}, discovered from its MBeans (JMX) or sent by the exporter (trapper); "
                "only where Kafka has them")
    if m.lld == "bean":
        return "discovered once the MBean exists (it appears on its first event)"
    if m.lld == "attribute":
        return "discovered where the attribute exists (the quorum leader); a plain item in the trapper templates"
    parts = ["item"]
    if m.lld == "topic":
        parts.append("and per topic, discovered from the topic's own MBean")
    if m.zabbix.nan is not None:
        parts.append(f"(NaN stored as {m.zabbix.nan})")
    return " ".join(parts)


def render(catalog: Catalog) -> str:
    out = [HEADER, "# What the Zabbix templates hold\n",
           "Every item reads one MBean attribute over JMX (the Java gateway) or gets it pushed by the exporter "
           "(trapper templates, same keys). Role: which templates have it.\n",
           "## Items\n", "| Item | MBean | Attribute | Role | Type | Units | How |", "|---|---|---|---|---|---|---|"]
    for m in catalog.metrics:
        z = m.zabbix
        out.append(f"| {_cell(z.name)} | `{m.mbean}` | `{m.attribute}` | {ROLES[m.role]} | {z.value_type} | "
                   f"{_cell(z.units)} | {_how(m)} |")
    out += ["", "## Cluster aggregates (template \"Apache Kafka 4.x cluster\")\n",
            "| Item | Over the cluster's hosts | Of each host's | Source item |", "|---|---|---|---|"]
    for c in catalog.cluster_items:
        m = catalog.metric(c.metric)
        out.append(f"| {_cell(c.name)} | {c.function} | {c.per_host} within {{$KAFKA.AGGREGATE.PERIOD}} | "
                   f"{_cell(m.zabbix.name)} (`{m.mbean}` `{m.attribute}`) |")
    out += ["", "## Triggers and Prometheus alerts\n",
            "| Trigger | Priority | On | Zabbix expression | Prometheus alert |", "|---|---|---|---|---|"]
    for t in catalog.triggers:
        on = f"each host with {_cell(catalog.metric(t.metric).zabbix.name)}" if t.scope == "host" and t.metric else "the cluster"
        out.append(f"| {_cell(t.name)} | {t.priority} | {on} | `{_cell(t.expression)}` | "
                   f"{t.alert.name}: `{_cell(t.alert.expr)}` for {t.alert.for_} |")
    out += ["", "## Macros\n", "| Macro | Default | Meaning |", "|---|---|---|"]
    for mac in catalog.macros:
        out.append(f"| `{mac.macro}` | {'(secret)' if mac.secret else f'`{mac.value}`' if mac.value else ''} | "
                   f"{_cell(mac.description)} |")
    cg = catalog.groups
    if cg.items:
        out += ["", "## Consumer groups (template \"Apache Kafka 4.x consumer groups by trapper\")\n",
                "Read through the Kafka protocol by the exporter (its `kafka:` section) and pushed to the cluster's "
                "host; discovered per group and per group x topic.\n",
                "| Item | Key | Type | Units | Prometheus |", "|---|---|---|---|---|"]
        for it in cg.items:
            out.append(f"| {_cell(it.name)} | `{_cell(it.key)}` | {it.value_type} | {it.units} | `{it.prometheus}` |")
        out += ["", "| Trigger | Priority | Zabbix expression | Prometheus alert |", "|---|---|---|---|"]
        for gt in cg.triggers:
            out.append(f"| {_cell(gt.name)} | {gt.priority} | `{_cell(gt.expression)}` | "
                       f"{gt.alert.name}: `{_cell(gt.alert.expr)}` for {gt.alert.for_} |")
        out += ["", "| Macro | Default | Meaning |", "|---|---|---|"]
        for macro, value, description in cg.macros:
            out.append(f"| `{macro}` | `{value}` | {_cell(description)} |")
    return "\n".join(out) + "\n"
