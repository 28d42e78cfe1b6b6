"""Zabbix templates from the catalog (export format 6.0; 7.0 with template_groups and widget references;
8.0, which Zabbix's 7.0 -> 7.2 -> 7.4 -> 8.0 import converters leave as 7.0's for what we emit).

Templates, each self-contained (Zabbix refuses to link one template twice through two paths, so
the role templates share no parent): broker, controller and combined ("Apache Kafka 4.x by JMX",
for process.roles=broker,controller), their trapper twins with identical keys (fed by the
exporter), and the cluster template (calculated aggregates over the cluster's host group, so a
cluster-wide condition raises one problem per cluster).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from exporter.catalog import refs
from exporter.catalog.groups import GroupTrigger
from exporter.catalog.keys import GROUP_DISCOVERY, TOPIC_DISCOVERY, bean_discovery_key, cluster_key, jmx_key
from exporter.catalog.model import Catalog, Graph, Metric, TopicGraph, Trigger
from kafka_common.roles import BROKER, COMBINED, CONTROLLER

GROUP = "Templates/Applications"
JMX_ENDPOINT = "service:jmx:rmi:///jndi/rmi://{HOST.CONN}:{HOST.PORT}/jmxrmi"
TEMPLATE_NAMES = {
    ("jmx", BROKER): "Apache Kafka 4.x broker by JMX",
    ("jmx", CONTROLLER): "Apache Kafka 4.x controller by JMX",
    ("jmx", COMBINED): "Apache Kafka 4.x by JMX",
    ("trapper", BROKER): "Apache Kafka 4.x broker by trapper",
    ("trapper", CONTROLLER): "Apache Kafka 4.x controller by trapper",
    ("trapper", COMBINED): "Apache Kafka 4.x by trapper",
}
CLUSTER_TEMPLATE = "Apache Kafka 4.x cluster"
GROUPS_TEMPLATE = "Apache Kafka 4.x consumer groups by trapper"
GROUP_GRAPHS = ("group_members", "group_status", "group_lag", "group_lag_seconds")     # a graph prototype each
# a Java gateway reading NaN hands Zabbix the text "NaN", which a numeric item refuses
NAN_SCRIPT = "return value === 'NaN' ? '{}' : value;"
COLORS = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27")
# dashboard widgets: the grid's width, the graph widget's type and field per export version
GRID = {"6.0": (24, "GRAPH_CLASSIC", "GRAPH_PROTOTYPE", "graphid"),
        "7.0": (72, "graph", "graphprototype", "graphid.0"),
        "8.0": (72, "graph", "graphprototype", "graphid.0")}
VERSIONS = tuple(GRID)
HEADER = "# Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand.\n"


def uuid_for(*parts: str) -> str:
    """A v4-form uuid (32 hex) that depends only on parts, so regenerating changes nothing."""
    b = bytearray(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def _on(metric: Metric, slot: str) -> bool:
    return slot == COMBINED or metric.on(slot)


def _preprocessing(metric: Metric, transport: str) -> list[dict[str, Any]]:
    steps = []
    if metric.zabbix.nan is not None and transport == "jmx":
        steps.append({"type": "JAVASCRIPT", "parameters": [NAN_SCRIPT.format(metric.zabbix.nan)]})
    for kind, param in metric.zabbix.preprocessing:
        steps.append({"type": kind, "parameters": [param]})
    return steps


def _value_fields(value_type: str, units: str) -> dict[str, str]:
    """An item's value type (UNSIGNED is Zabbix's default) and its units (text keeps no trends: the import
    drops a trends field there)."""
    fields = {"value_type": value_type} if value_type != "UNSIGNED" else {}
    if units:
        fields["units"] = units
    return fields


def _item(metric: Metric, template: str, transport: str, key: str | None = None, name: str | None = None) -> dict[str, Any]:
    z = metric.zabbix
    item: dict[str, Any] = {"uuid": uuid_for(template, "item", key or metric.key), "name": name or z.name}
    if transport == "jmx":
        item["type"] = "JMX"
    else:
        item["type"] = "TRAP"
    item["key"] = key or metric.key
    if transport == "jmx":
        item["delay"] = "{$KAFKA.INTERVAL}"
    item["history"] = "7d"
    item.update(_value_fields(z.value_type, z.units))
    if transport == "jmx":
        item["username"] = "{$KAFKA.USER}"
        item["password"] = "{$KAFKA.PASSWORD}"
    item["description"] = metric.description
    if z.valuemap:
        item["valuemap"] = {"name": z.valuemap}
    steps = _preprocessing(metric, transport)
    if steps:
        item["preprocessing"] = steps
    if transport == "jmx":
        item["jmx_endpoint"] = JMX_ENDPOINT
    item["tags"] = [{"tag": "component", "value": z.component}]
    return item


def _host_expression(catalog: Catalog, t: Trigger, template: str, key: str) -> str:
    """{item} is the trigger's own item; {item:ID} another metric's item of the same template."""
    return refs.resolve(t.expression, item=lambda ref: f"/{template}/{catalog.metric(ref).key if ref else key}")


def _trigger(t: Trigger | GroupTrigger, template: str, expression: str) -> dict[str, Any]:
    out: dict[str, Any] = {"uuid": uuid_for(template, "trigger", t.id), "expression": expression, "name": t.name}
    if t.problem != t.name:
        out["event_name"] = t.problem
    if t.opdata:
        out["opdata"] = t.opdata
    out.update({"priority": t.priority, "description": t.description})
    if t.manual_close:
        out["manual_close"] = "YES"
    out["tags"] = [{"tag": "scope", "value": t.zabbix_scope}]
    return out


def _macros(catalog: Catalog, template: dict[str, Any]) -> list[dict[str, Any]]:
    text = yaml.safe_dump(template)
    used = sorted(set(re.findall(r"\{\$[A-Z0-9_.]+\}", text)))
    out = []
    for name in used:
        m = catalog.macro(name)
        entry: dict[str, Any] = {"macro": m.macro, "value": m.value}
        if m.secret:
            entry["type"] = "SECRET_TEXT"
        entry["description"] = m.description
        out.append(entry)
    return out


def _jmx_rule(template: str, uuid_key: str, name: str, key: str, description: str, prototypes: list[dict[str, Any]],
              delay: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"uuid": uuid_for(template, "lld", uuid_key), "name": name, "type": "JMX", "key": key,
                            "delay": delay, "username": "{$KAFKA.USER}", "password": "{$KAFKA.PASSWORD}",
                            "lifetime": "7d", "description": description}
    rule["item_prototypes"] = prototypes
    rule["jmx_endpoint"] = JMX_ENDPOINT
    return rule


def _topic_filter() -> dict[str, Any]:
    return {"evaltype": "AND", "conditions": [
        {"macro": "{#JMXTOPIC}", "value": "{$KAFKA.TOPIC.MATCHES}", "formulaid": "A"},
        {"macro": "{#JMXTOPIC}", "value": "{$KAFKA.TOPIC.NOT_MATCHES}", "operator": "NOT_MATCHES_REGEX",
         "formulaid": "B"}]}


def _trapper_bean_rule(m: Metric, template: str, transport: str) -> dict[str, Any]:
    prop = m.discovers or ""
    macro = "{#JMX" + prop.upper() + "}"
    proto = _item(m, template, transport, key=jmx_key(f"{m.base},{prop}={macro}", m.attribute))
    return {"uuid": uuid_for(template, "lld", f"bean {m.id}"), "name": re.sub(r"^.*\{#JMX\w+\}:\s*", f"Per {prop}: ",
                                                                             m.zabbix.name),
            "type": "TRAP", "key": bean_discovery_key(m.id), "lifetime": "1d",
            "description": f"Every {prop} of {m.base}, sent by the kafka-jmx exporter.", "item_prototypes": [proto]}


def _topic_key(m: Metric) -> str:
    return jmx_key(f"{m.mbean},topic={{#JMXTOPIC}}", m.attribute)


def _topic_graphs(catalog: Catalog) -> list[TopicGraph]:
    return [g for g in catalog.graphs if isinstance(g, TopicGraph)]


def _graph(g: Graph | TopicGraph, template: str, keys: list[str]) -> dict[str, Any]:
    return {"uuid": uuid_for(template, "graph", g.id), "name": g.name,
            "graph_items": [{"sortorder": str(i), "color": COLORS[i % len(COLORS)], "item": {"host": template, "key": k}}
                            for i, k in enumerate(keys)]}


def _node_graphs(catalog: Catalog, template: str, slot: str) -> list[dict[str, Any]]:
    out = []
    for g in catalog.graphs:
        if isinstance(g, Graph) and g.metrics and all(_on(catalog.metric(m), slot) for m in g.metrics):
            out.append(_graph(g, template, [catalog.metric(m).key for m in g.metrics]))
    return out


def _widget(template: str, name: str, prototype: bool, reference: int, version: str) -> dict[str, Any]:
    """A graph (or graph prototype) widget. 7.0 gives each a reference unique in its dashboard (AAAAA, AAAAB,
    ... as Zabbix's own 6.4 -> 7.0 converter does): a prototype's child graphs take their time period from it,
    and without one the frontend shows 'the parameter "from" is missing'."""
    _, graph_type, proto_type, field = GRID[version]
    fields: list[dict[str, Any]] = [{"type": "GRAPH_PROTOTYPE" if prototype else "GRAPH", "name": field,
                                     "value": {"host": template, "name": name}}]
    if version != "6.0":
        fields.append({"type": "STRING", "name": "reference",
                       "value": "".join(chr(65 + reference // 26 ** i % 26) for i in range(4, -1, -1))})
    return {"type": proto_type if prototype else graph_type, "name": name, "fields": fields}


def _laid_out(widgets: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """Graphs two a row; a graph prototype a row of its own, where its discovered graphs (two a row, Zabbix's
    default) get a graph's width and their legends stay whole."""
    grid = GRID[version][0]
    x = y = 0
    for w in widgets:
        width = grid if w["type"] == GRID[version][2] else grid // 2
        if x + width > grid:
            x, y = 0, y + 5
        w.update(x=str(x), y=str(y), width=str(width), height="5")
        x += width
    return widgets


def _dashboard(catalog: Catalog, template: str, graphs: set[str], prototypes: set[str], version: str,
               title: str = "Apache Kafka 4.x") -> list[dict[str, Any]]:
    """One dashboard per template: the catalog's pages, each with the graphs this template has."""
    pages = []
    references = 0
    for page in catalog.dashboard:
        widgets: list[dict[str, Any]] = []
        for g in page.graphs:
            name = next(x.name for x in catalog.graphs if x.id == g)
            if name not in graphs | prototypes:
                continue
            widgets.append(_widget(template, name, name in prototypes, references, version))
            references += 1
        if widgets:
            pages.append({"name": page.name, "widgets": _laid_out(widgets, version)})
    if not pages:
        return []
    return [{"uuid": uuid_for(template, "dashboard"), "name": title, "pages": pages}]


def _topic_prototype(m: Metric, template: str, transport: str) -> dict[str, Any]:
    key = _topic_key(m)
    proto = _item(m, template, transport, key=key, name=f"Topic {{#JMXTOPIC}}: {m.zabbix.name}")
    proto["tags"].append({"tag": "topic", "value": "{#JMXTOPIC}"})
    return proto


def _discovery_rules(catalog: Catalog, template: str, transport: str, slot: str) -> list[dict[str, Any]]:
    """Over JMX each per-topic metric is discovered from its own bean: Kafka creates a topic's meters
    on their first mark (BytesOut on the first consumer fetch, BytesRejected and FailedProduceRequests
    on the first such error), so an item exists only once its bean does. A bean that appears on its
    first event gets its own rule too. The trapper twin gets the topics from the exporter."""
    topic_metrics = [m for m in catalog.metrics if m.lld == "topic" and _on(m, slot)]
    if transport != "jmx":
        rules = [_trapper_bean_rule(m, template, transport) for m in catalog.metrics
                 if m.discovers and _on(m, slot)]
        if not topic_metrics:
            return rules
        rule: dict[str, Any] = {"uuid": uuid_for(template, "lld", "topics"), "name": "Topics", "type": "TRAP",
                                "key": TOPIC_DISCOVERY, "lifetime": "7d",
                                "description": "Topics led by this broker, sent by the kafka-jmx exporter.",
                                "filter": _topic_filter(),
                                "item_prototypes": [_topic_prototype(m, template, transport) for m in topic_metrics]}
        protos = [_graph(g, template, [_topic_key(catalog.metric(g.metric))]) for g in _topic_graphs(catalog)
                  if catalog.metric(g.metric) in topic_metrics]
        if protos:
            rule["graph_prototypes"] = protos
        return [rule] + rules
    rules = []
    for m in topic_metrics:
        rule = _jmx_rule(template, f"topics {m.id}", f"Topics: {m.zabbix.name}",
                         f'jmx.discovery[beans,"{m.mbean},topic=*"]',
                         f"Topics for which this broker has {m.mbean.split('name=')[-1]} (created on its first event).",
                         [_topic_prototype(m, template, transport)], "{$KAFKA.LLD.INTERVAL}")
        rule["filter"] = _topic_filter()
        protos = [_graph(g, template, [_topic_key(m)]) for g in _topic_graphs(catalog) if g.metric == m.id]
        if protos:
            rule["graph_prototypes"] = protos
        rules.append(rule)
    by_bean: dict[str, list[Metric]] = {}
    for m in catalog.metrics:
        if m.lld == "attribute" and _on(m, slot):
            by_bean.setdefault(m.mbean, []).append(m)
    for mbean, metrics in by_bean.items():
        # one rule per bean (a bean's attribute-discovery rules and prototypes would share keys); the
        # prototype's key is the fixed item's key with the attribute discovered
        first = metrics[0]
        proto = _item(first, template, transport, key=jmx_key(mbean, "{#JMXATTR}"),
                      name=f"{first.zabbix.component.capitalize()} {{#JMXATTR}}")
        proto["description"] = " ".join(f"{m.attribute}: {m.description}" for m in metrics)
        rule = _jmx_rule(template, f"attributes {mbean}", f"Attributes of {mbean}",
                         f'jmx.discovery[attributes,"{mbean}"]',
                         f"{', '.join(m.attribute for m in metrics)}: published only by some nodes (the quorum leader): "
                         "discovered, never unsupported.", [proto], "{$KAFKA.LLD.INTERVAL}")
        rule["lifetime"] = "0"
        rule["filter"] = {"evaltype": "AND", "conditions": [
            {"macro": "{#JMXATTR}", "value": "^(" + "|".join(re.escape(m.attribute) for m in metrics) + ")$",
             "formulaid": "A"}]}
        rules.append(rule)
    for m in catalog.metrics:
        if m.lld != "bean" or not _on(m, slot):
            continue
        prop = m.mbean.rpartition(",")[2].partition("=")[0]
        macro = "{#JMX" + prop.upper() + "}"
        key = jmx_key(f'{m.mbean.rsplit(",", 1)[0]},{prop}={macro}', m.attribute)
        proto = _item(m, template, transport, key=key)
        triggers = [_trigger(t, template, _host_expression(catalog, t, template, key))
                    for t in catalog.triggers if t.scope == "host" and t.metric == m.id]
        if triggers:
            proto["trigger_prototypes"] = triggers
        what = (f"One item per {prop} that has {m.base.split('name=')[-1]}" if m.discovers else
                f"{m.mbean} exists only after its first event")
        rule_name = re.sub(r"^.*\{#JMX\w+\}:\s*", f"Per {prop}: ", m.zabbix.name)
        rule = _jmx_rule(template, f"bean {m.id}", rule_name, f'jmx.discovery[beans,"{m.mbean}"]',
                         f"{what}: discovered, never unsupported.", [proto], "{$KAFKA.LLD.INTERVAL}")
        if m.discovers:
            rule["lifetime"] = "0"      # a bean that went (leadership moved) would only be polled in vain
        rules.append(rule)
    return rules


def _role_template(catalog: Catalog, transport: str, slot: str, version: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The template and its graphs (graphs sit beside the templates in an export)."""
    name = TEMPLATE_NAMES[(transport, slot)]
    metrics = [m for m in catalog.metrics if _on(m, slot)]
    items = []
    for m in metrics:
        if (m.lld in ("bean", "attribute") and transport == "jmx") or m.discovers:
            continue
        item = _item(m, name, transport)
        triggers = [_trigger(t, name, _host_expression(catalog, t, name, m.key))
                    for t in catalog.triggers if t.scope == "host" and t.metric == m.id]
        if triggers:
            item["triggers"] = triggers
        items.append(item)
    how = ("read by the Zabbix Java gateway over JMX" if transport == "jmx"
           else "pushed by the kafka-jmx exporter (trapper items with the JMX template's keys)")
    roles = {COMBINED: "Apache Kafka 4.x (KRaft) nodes that are broker and controller (process.roles=broker,controller)",
             BROKER: "Apache Kafka 4.x brokers (process.roles=broker)",
             CONTROLLER: "Apache Kafka 4.x KRaft controllers (process.roles=controller)"}
    template: dict[str, Any] = {"uuid": uuid_for(name), "template": name, "name": name,
                                "description": f"Metrics of {roles[slot]}, {how}. "
                                               "Generated from the kafka-jmx metric catalog."}
    template["groups"] = [{"name": GROUP}]
    template["items"] = items
    rules = _discovery_rules(catalog, name, transport, slot)
    if rules:
        template["discovery_rules"] = rules
    template["tags"] = [{"tag": "class", "value": "application"}, {"tag": "target", "value": "apache-kafka"}]
    macros = _macros(catalog, template)
    if macros:
        template["macros"] = macros
    graphs = _node_graphs(catalog, name, slot)
    prototypes = {p["name"] for r in rules for p in r.get("graph_prototypes", [])}
    dashboards = _dashboard(catalog, name, {g["name"] for g in graphs}, prototypes, version)
    if dashboards:
        template["dashboards"] = dashboards
    used = set(re.findall(r"'valuemap': \{'name': '([^']+)'", str(template)))
    valuemaps = [{"uuid": uuid_for(name, "valuemap", v.name), "name": v.name,
                  "mappings": [{"value": value, "newvalue": shown} for value, shown in v.mappings]}
                 for v in catalog.valuemaps if v.name in used]
    if valuemaps:
        template["valuemaps"] = valuemaps
    return template, graphs


def _template(name: str, description: str, **content: Any) -> dict[str, Any]:
    return {"uuid": uuid_for(name), "template": name, "name": name,
            "description": f"{description} Generated from the kafka-jmx metric catalog.",
            "groups": [{"name": GROUP}], **content,
            "tags": [{"tag": "class", "value": "application"}, {"tag": "target", "value": "apache-kafka"}]}


def _cluster_template(catalog: Catalog, version: str) -> dict[str, Any]:
    name = CLUSTER_TEMPLATE
    items = []
    for c in catalog.cluster_items:
        metric = catalog.metric(c.metric)
        # a window, not each host's last value: a dead node's last value would count forever
        over = f'{c.per_host}_foreach(/*/{metric.key}?[group="{{$KAFKA.CLUSTER.GROUP}}"],{{$KAFKA.AGGREGATE.PERIOD}})'
        # 6.0's count_foreach leaves out a host without values in the window, 7.0's counts it as 0 (measured
        # on 7.0.22: 'no controller reports data' never fired): from 7.0 the count skips those zeros
        params = f'{c.function}({over},"gt",0)' if c.function == "count" and version != "6.0" \
            else f"{c.function}({over})"
        item: dict[str, Any] = {"uuid": uuid_for(name, "item", c.key), "name": c.name, "type": "CALCULATED",
                                "key": c.key, "delay": "{$KAFKA.INTERVAL}", "history": "7d", "value_type": "FLOAT",
                                "params": params,
                                "description": f"{c.function} over the hosts of {{$KAFKA.CLUSTER.GROUP}} of each host's "
                                               f"{c.per_host} of {metric.mbean} {metric.attribute} within "
                                               "{$KAFKA.AGGREGATE.PERIOD} (hosts without values in it are left out).",
                                "tags": [{"tag": "component", "value": "cluster"}]}
        items.append(item)
    triggers = []
    for t in catalog.triggers:
        if t.scope != "cluster":
            continue
        expression = refs.resolve(t.expression, cluster=lambda ref: f"/{name}/{cluster_key(ref)}")
        triggers.append(_trigger(t, name, expression))
    template = _template(name, "Cluster-wide checks of an Apache Kafka 4.x (KRaft) cluster: aggregates of the "
                               "controllers' metrics over the host group {$KAFKA.CLUSTER.GROUP} (works with the JMX and "
                               "the trapper templates). Link it to one host per cluster.", items=items)
    template["macros"] = _macros(catalog, {"items": items, "triggers": triggers})
    keys = {c.id: c.key for c in catalog.cluster_items}
    graphs = [_graph(g, name, [keys[c] for c in g.cluster_items])
              for g in catalog.graphs if isinstance(g, Graph) and g.cluster_items]
    dashboards = _dashboard(catalog, name, {g["name"] for g in graphs}, set(), version, "Apache Kafka 4.x cluster")
    if dashboards:
        template["dashboards"] = dashboards
    return {"template": template, "triggers": triggers, "graphs": graphs}


def _groups_template(catalog: Catalog, version: str) -> dict[str, Any]:
    """Consumer groups and their lag, pushed by the exporter's Kafka-protocol collection to the
    cluster's host: one discovery of groups, one of group x topic pairs."""
    name = GROUPS_TEMPLATE
    cg = catalog.groups
    rules = []
    for per, what in (("group", "Consumer groups"), ("group_topic", "Consumer groups x topics")):
        protos = []
        for it in cg.items:
            if it.per != per:
                continue
            proto: dict[str, Any] = {"uuid": uuid_for(name, "item", it.key), "name": it.name, "type": "TRAP",
                                     "key": it.key, "history": "7d", **_value_fields(it.value_type, it.units)}
            proto["description"] = f"{it.description} Prometheus: {it.prometheus}."
            if it.valuemap:
                proto["valuemap"] = {"name": it.valuemap}
            proto["tags"] = [{"tag": "component", "value": "consumer-group"}, {"tag": "group", "value": "{#GROUP}"}] + \
                ([{"tag": "topic", "value": "{#TOPIC}"}] if per == "group_topic" else [])
            triggers = []
            for t in cg.triggers:
                if t.metric != it.id:
                    continue
                expression = refs.resolve(t.expression,
                                          item=lambda ref: f"/{name}/{cg.item(ref).key if ref else it.key}")
                triggers.append(_trigger(t, name, expression))
            if triggers:
                proto["trigger_prototypes"] = triggers
            protos.append(proto)
        conditions = [{"macro": "{#GROUP}", "value": "{$KAFKA.GROUP.MATCHES}", "formulaid": "A"},
                      {"macro": "{#GROUP}", "value": "{$KAFKA.GROUP.NOT_MATCHES}", "operator": "NOT_MATCHES_REGEX",
                       "formulaid": "B"}]
        rule: dict[str, Any] = {"uuid": uuid_for(name, "lld", per), "name": what, "type": "TRAP", "key": GROUP_DISCOVERY[per],
                "lifetime": "7d", "description": f"{what} with committed offsets, sent by the kafka-jmx exporter "
                                                 "(its kafka: section) after each collection.",
                "filter": {"evaltype": "AND", "conditions": conditions}, "item_prototypes": protos}
        graphs = [(f"{it.name.rsplit(': ', 1)[0]}: {it.name.rsplit(': ', 1)[1]}", it.key) for it in cg.items
                  if it.per == per and it.value_type in ("UNSIGNED", "FLOAT") and it.id in GROUP_GRAPHS]
        if graphs:
            rule["graph_prototypes"] = [{"uuid": uuid_for(name, "graph", title), "name": title, "graph_items": [
                {"sortorder": "0", "color": COLORS[0], "item": {"host": name, "key": key}}]} for title, key in graphs]
        rules.append(rule)
    template = _template(name, "Consumer groups of an Apache Kafka 4.x cluster: members, state, status and lag "
                               "(records and seconds) per group and topic, read through the Kafka protocol by the "
                               "kafka-jmx exporter and pushed as trapper values. Link it to the cluster's host.",
                         discovery_rules=rules)
    text = yaml.safe_dump(template)
    used = set(re.findall(r"\{\$([A-Z0-9_.]+)", text))
    own = {m: (v, d) for m, v, d in cg.macros}
    own["{$KAFKA.GROUP.MATCHES}"] = (".*", "Consumer groups to discover (regex).")
    own["{$KAFKA.GROUP.NOT_MATCHES}"] = ("CHANGE_IF_NEEDED", "Consumer groups not to discover (regex).")
    template["macros"] = [{"macro": m, "value": v, "description": d} for m, (v, d) in sorted(own.items())
                          if m[2:-1] in used]
    prototypes = [g["name"] for r in rules for g in r.get("graph_prototypes", [])]
    # the cluster's host has this dashboard and the cluster's: each named for what it shows
    template["dashboards"] = [{"uuid": uuid_for(name, "dashboard"), "name": "Apache Kafka 4.x consumer groups", "pages": [
        {"name": "Consumer groups", "widgets": _laid_out([_widget(name, title, True, n, version)
                                                          for n, title in enumerate(prototypes)], version)}]}]
    if cg.valuemap:
        template["valuemaps"] = [{"uuid": uuid_for(name, "valuemap", cg.valuemap[0]), "name": cg.valuemap[0],
                                  "mappings": [{"value": v, "newvalue": shown} for v, shown in cg.valuemap[1]]}]
    return template


def render(catalog: Catalog, version: str = "6.0") -> dict[str, Any]:
    if version not in VERSIONS:
        raise ValueError(f"unsupported Zabbix export version {version!r} (use one of {', '.join(VERSIONS)})")
    roles = [_role_template(catalog, transport, slot, version)
             for transport in ("jmx", "trapper") for slot in (COMBINED, BROKER, CONTROLLER)]
    templates = [t for t, _ in roles]
    graphs = [g for _, gs in roles for g in gs]
    cluster = _cluster_template(catalog, version)
    templates.append(cluster["template"])
    if catalog.groups.items:
        templates.append(_groups_template(catalog, version))
    groups_key = "groups" if version == "6.0" else "template_groups"
    export: dict[str, Any] = {"version": version, groups_key: [{"uuid": uuid_for("group", GROUP), "name": GROUP}],
                              "templates": templates}
    if cluster["triggers"]:
        export["triggers"] = cluster["triggers"]
    export["graphs"] = graphs + cluster["graphs"]
    return {"zabbix_export": export}


def serialize(doc: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
