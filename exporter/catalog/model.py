"""The catalog as frozen dataclasses, loaded with errors that name the line and the field."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.catalog import refs
from exporter.catalog.groups import ConsumerGroups
from exporter.catalog.groups import load as load_groups
from exporter.catalog.keys import cluster_key, jmx_key
from kafka_common.names import ObjectName
from kafka_common.roles import parts
from kafka_common.yamlconf import Doc, KeyPath, read_text

CATALOG_PATH = Path(__file__).resolve().parent / "kafka-4x.yaml"
ROLES = ("broker", "controller", "both")         # where Kafka registers a metric's MBean
VALUE_TYPES = ("UNSIGNED", "FLOAT", "CHAR", "TEXT")
PRIORITIES = ("INFO", "WARNING", "AVERAGE", "HIGH", "DISASTER")
PREPROCESSING = {"CHANGE_PER_SECOND", "SIMPLE_CHANGE", "MULTIPLIER", "DISCARD_UNCHANGED_HEARTBEAT"}
# Zabbix 6.0's foreach functions that take a period (last_foreach takes one only from 7.0)
PER_HOST = ("min", "max", "count")
FUNCTIONS = ("max", "min", "sum", "count", "avg")
MACRO = re.compile(r"^\{\$[A-Z0-9_.]+\}$")



def registered_on(metric_role: str, node_role: str) -> bool:
    """Kafka registers a catalog role's MBean (broker, controller, both) on a node of that role (broker,
    controller, or combined: a combined node has both roles' MBeans)."""
    return metric_role == "both" or metric_role in parts(node_role)

@dataclass(frozen=True)
class ZabbixItem:
    name: str
    value_type: str
    component: str
    units: str = ""
    preprocessing: tuple[tuple[str, str], ...] = ()     # (type, parameter)
    valuemap: str | None = None
    # stored instead of NaN (a kafka-metrics Avg/Max without samples in its window), which a numeric
    # item refuses: the Java gateway hands Zabbix "NaN"
    nan: str | None = None


@dataclass(frozen=True)
class Metric:
    id: str
    mbean: str
    attribute: str
    role: str
    description: str
    zabbix: ZabbixItem
    prometheus: str | None = None
    # topic: one item per topic whose bean exists; bean: the bean appears on its first event
    # (both discovered from their own bean in the JMX templates, so none is unsupported before)
    lld: str | None = None
    jvm: bool = False       # a JVM platform MBean (java.lang): the exporter's JVM view names it, not the rules

    @property
    def key(self) -> str:
        return jmx_key(self.mbean, self.attribute)

    @property
    def discovers(self) -> str | None:
        """The ObjectName property a `lld: bean` metric discovers (`broker` of `...,broker=*`): one
        item per bean; None for a single bean that appears on its first event."""
        prop, _, value = self.mbean.rpartition(",")[2].partition("=")
        return prop if value == "*" else None

    @property
    def base(self) -> str:
        """The ObjectName without the property it discovers."""
        return self.mbean.rsplit(",", 1)[0] if self.discovers else self.mbean

    def on(self, role: str) -> bool:
        return registered_on(self.role, role)


@dataclass(frozen=True)
class ClusterItem:
    id: str
    name: str
    function: str           # over the hosts
    metric: str
    per_host: str           # each host's values within {$KAFKA.AGGREGATE.PERIOD}: min, max or count

    @property
    def key(self) -> str:
        return cluster_key(self.id)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str               # PromQL; thresholds and periods as the trigger's macros (exporter/catalog/alerts.py)
    for_: str               # a duration, or a macro holding one
    severity: str
    description: str = ""   # when the trigger's description speaks of Zabbix's own mechanics


@dataclass(frozen=True)
class Trigger:
    id: str
    scope: str
    name: str
    expression: str
    priority: str
    description: str
    alert: Alert
    metric: str | None = None
    manual_close: bool = False
    zabbix_scope: str = "notice"
    event_name: str = ""        # the problem's name (Zabbix event_name); the static name when empty
    opdata: str = ""            # Zabbix operational data shown beside the problem

    @property
    def problem(self) -> str:
        """What Zabbix calls the problem this trigger raises; a node's names its host (the trigger's
        name stays static, as Zabbix's template guidelines ask)."""
        text = self.event_name or self.name
        return text.replace("Kafka:", "Kafka {HOST.NAME}:", 1) if self.scope == "host" else text


@dataclass(frozen=True)
class Macro:
    macro: str
    value: str
    description: str
    secret: bool = False
    # for a value of 0 ("what the cluster had"): the PromQL the alert expressions compare with instead
    prometheus_auto: str = ""


@dataclass(frozen=True)
class ValueMap:
    name: str
    mappings: tuple[tuple[str, str], ...]       # (value, what Zabbix shows)


@dataclass(frozen=True)
class Graph:
    id: str
    name: str
    metrics: tuple[str, ...] = ()           # node metrics: in every template that has them all
    cluster_items: tuple[str, ...] = ()     # the cluster template's aggregates

    @property
    def per_topic(self) -> bool:
        return False


@dataclass(frozen=True)
class TopicGraph:
    """A graph prototype per discovered topic, of one per-topic metric (each has its own rule over JMX)."""
    id: str
    name: str
    metric: str

    @property
    def per_topic(self) -> bool:
        return True


@dataclass(frozen=True)
class Page:
    name: str
    graphs: tuple[str, ...]


@dataclass(frozen=True)
class Inhibition:
    """While one of sources fires, targets (trigger ids; empty: every other alert) notify nobody where they
    share the equal labels with it (an Alertmanager inhibit rule)."""
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    equal: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Catalog:
    metrics: tuple[Metric, ...]
    cluster_items: tuple[ClusterItem, ...]
    triggers: tuple[Trigger, ...]
    macros: tuple[Macro, ...]
    source: str = ""
    by_id: dict[str, Metric] = field(default_factory=dict, compare=False)
    valuemaps: tuple[ValueMap, ...] = ()
    graphs: tuple[Graph | TopicGraph, ...] = ()
    dashboard: tuple[Page, ...] = ()        # each template's dashboard: the pages whose graphs it has
    groups: ConsumerGroups = field(default_factory=ConsumerGroups)
    inhibitions: tuple[Inhibition, ...] = ()

    def alert_name(self, trigger_id: str) -> str:
        """The Prometheus alert of a node, cluster or consumer-group trigger."""
        for t in self.triggers:
            if t.id == trigger_id:
                return t.alert.name
        return next(t.alert.name for t in self.groups.triggers if t.id == trigger_id)

    def metric(self, metric_id: str) -> Metric:
        return self.by_id[metric_id]

    def macro(self, name: str) -> Macro:
        return next(m for m in self.macros if m.macro == name)


def _map(doc: Doc, value: object, path: KeyPath) -> dict[str, Any]:
    """A mapping the loader reads fields of; {} (and a located problem) for anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        doc.fail(path, f"expected a mapping, got {type(value).__name__}")
        return {}
    return value


def _str(doc: Doc, d: dict[str, Any], path: KeyPath, key: str, default: str | None = None) -> str:
    if not isinstance(d, dict):
        doc.fail(path, f"expected a mapping, got {type(d).__name__}")
        return default or ""
    if key not in d:
        if default is None:
            doc.fail(path, f"missing required field {key!r}")
        return default or ""
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        doc.fail(path + (key,), f"expected a string, got {type(v).__name__}")
        return ""
    return str(v)


def load_catalog(path: str | Path = CATALOG_PATH) -> Catalog:
    source = str(path)
    doc = Doc(read_text(source), source)
    data = doc.data if isinstance(doc.data, dict) else {}
    metrics: list[Metric] = []
    ids: dict[str, Metric] = {}
    for i, m in enumerate(data.get("metrics") or []):
        p = ("metrics", i)
        m = _map(doc, m, p)
        mid = _str(doc, m, p, "id")
        mbean = _str(doc, m, p, "mbean")
        try:
            ObjectName.parse(mbean)
        except ValueError as e:
            doc.fail(p + ("mbean",), str(e))
        role = _str(doc, m, p, "role")
        if role not in ROLES:
            doc.fail(p + ("role",), f"role must be one of {', '.join(ROLES)}, got {role!r}")
        zp = p + ("zabbix",)
        z = _map(doc, m.get("zabbix"), zp)
        vt = _str(doc, z, zp, "value_type")
        if vt not in VALUE_TYPES:
            doc.fail(zp + ("value_type",), f"value_type must be one of {', '.join(VALUE_TYPES)}, got {vt!r}")
        steps = []
        for j, step in enumerate(z.get("preprocessing") or []):
            kind, _, param = str(step).partition(" ")
            if kind not in PREPROCESSING:
                doc.fail(zp + ("preprocessing", j), f"unknown preprocessing {kind!r} (use: {', '.join(sorted(PREPROCESSING))})")
            steps.append((kind, param))
        nan = z.get("nan")
        if nan is not None:
            try:
                float(str(nan))
            except ValueError:
                doc.fail(zp + ("nan",), f"the value stored for NaN must be a number, got {nan!r}")
            nan = str(nan)
        lld = m.get("lld")
        if lld not in (None, "topic", "bean", "attribute"):
            doc.fail(p + ("lld",), f"lld must be topic, bean or attribute, got {lld!r}")
        wild = [kv for kv in mbean.split(":", 1)[-1].split(",") if kv.endswith("=*")]
        if wild and (lld != "bean" or not mbean.endswith(wild[-1]) or len(wild) > 1):
            doc.fail(p + ("mbean",), "only a `lld: bean` metric may end its ObjectName with one PROPERTY=* "
                                     "(the property each discovered item takes)")
        item = ZabbixItem(_str(doc, z, zp, "name"), vt, _str(doc, z, zp, "component"), _str(doc, z, zp, "units", ""),
                          tuple(steps), z.get("valuemap"), nan)
        jvm = m.get("jvm", False)
        if not isinstance(jvm, bool) or (jvm and not mbean.startswith("java.lang:")):
            doc.fail(p + ("jvm",), "jvm: true marks a JVM platform MBean (java.lang:...); give true or false")
        metric = Metric(mid, mbean, _str(doc, m, p, "attribute"), role, _str(doc, m, p, "description"), item,
                        m.get("prometheus"), lld, jvm is True)
        if mid in ids:
            doc.fail(p + ("id",), f"metric id {mid!r} is used twice")
        ids[mid] = metric
        metrics.append(metric)
    cluster_items = []
    for i, c in enumerate(data.get("cluster_items") or []):
        p = ("cluster_items", i)
        c = _map(doc, c, p)
        ci = ClusterItem(_str(doc, c, p, "id"), _str(doc, c, p, "name"), _str(doc, c, p, "function"),
                         _str(doc, c, p, "metric"), _str(doc, c, p, "per_host"))
        if ci.function not in FUNCTIONS:
            doc.fail(p + ("function",), f"function must be one of {', '.join(FUNCTIONS)}")
        if ci.per_host not in PER_HOST:
            doc.fail(p + ("per_host",), f"per_host must be one of {', '.join(PER_HOST)}")
        if ci.metric not in ids:
            doc.fail(p + ("metric",), f"unknown metric {ci.metric!r}")
        cluster_items.append(ci)
    cluster_ids = {c.id for c in cluster_items}
    prometheus = {mid: m.prometheus for mid, m in ids.items()}        # what {metric:ID} resolves to
    macros = []
    for i, m in enumerate(data.get("macros") or []):
        p = ("macros", i)
        m = _map(doc, m, p)
        macro = Macro(_str(doc, m, p, "macro"), _str(doc, m, p, "value", ""), _str(doc, m, p, "description"),
                      bool(m.get("secret", False)),
                      refs.resolve_names(doc, p + ("prometheus_auto",), _str(doc, m, p, "prometheus_auto", ""),
                                         metric=prometheus))
        if not MACRO.match(macro.macro):
            doc.fail(p + ("macro",), f"not a user macro: {macro.macro!r} (expected {{$NAME}})")
        macros.append(macro)
    known_macros = {m.macro for m in macros}
    triggers = []
    for i, t in enumerate(data.get("triggers") or []):
        p = ("triggers", i)
        t = _map(doc, t, p)
        scope = _str(doc, t, p, "scope")
        expression = _str(doc, t, p, "expression")
        metric_id = t.get("metric")
        if scope == "host":
            if metric_id not in ids:
                doc.fail(p + ("metric",), f"unknown metric {metric_id!r}")
            if ("item", "") not in refs.find(expression):
                doc.fail(p + ("expression",), "a host trigger refers to its item as {item}")
            for kind, ref in refs.find(expression):
                other = ids.get(ref)
                if kind != "item":
                    doc.fail(p + ("expression",), f"{{{kind}:{ref}}}: a host trigger refers to items ({{item:ID}})")
                elif not ref:
                    continue
                elif other is None:
                    doc.fail(p + ("expression",), f"unknown metric {ref!r} in {{item:{ref}}}")
                elif metric_id in ids and other.role not in ("both", ids[metric_id].role):
                    doc.fail(p + ("expression",), f"{{item:{ref}}} is not on every node that has {metric_id!r}")
        elif scope == "cluster":
            for kind, ref in refs.find(expression):
                if kind != "cluster" or ref not in cluster_ids:
                    doc.fail(p + ("expression",), f"unknown cluster item {{{kind}:{ref}}} (a cluster trigger "
                                                  "refers to cluster_items as {cluster:ID})")
        else:
            doc.fail(p + ("scope",), f"scope must be host or cluster, got {scope!r}")
        name = _str(doc, t, p, "name")
        # Zabbix's template guidelines: a trigger's name is static; the host and the values go to
        # event_name and opdata (the problem list shows the host in its own column)
        if re.search(r"\{(HOST|ITEM)\.", name):
            doc.fail(p + ("name",), "a trigger name holds no {HOST.*} or {ITEM.*} macro: put them in "
                                    "event_name or opdata")
        event_name, opdata = _str(doc, t, p, "event_name", ""), _str(doc, t, p, "opdata", "")
        a = _map(doc, t.get("alert"), p + ("alert",))
        for macro in re.findall(r"\{\$[A-Z0-9_.]+", expression + name + event_name + opdata + str(a.get("expr", ""))
                                + str(a.get("for", ""))):
            if macro + "}" not in known_macros:
                doc.fail(p, f"macro {macro}}} is not defined under macros")
        priority = _str(doc, t, p, "priority")
        if priority not in PRIORITIES:
            doc.fail(p + ("priority",), f"priority must be one of {', '.join(PRIORITIES)}")
        alert = Alert(_str(doc, a, p + ("alert",), "name"),
                      refs.resolve_names(doc, p + ("alert", "expr"), _str(doc, a, p + ("alert",), "expr"),
                                         metric=prometheus),
                      _str(doc, a, p + ("alert",), "for", "0m"), _str(doc, a, p + ("alert",), "severity"),
                      _str(doc, a, p + ("alert",), "description", ""))
        zscope = _str(doc, t, p, "zabbix_scope", "notice")
        if zscope not in ("availability", "performance", "notice", "capacity", "security"):
            doc.fail(p + ("zabbix_scope",), f"unknown scope tag {zscope!r}")
        triggers.append(Trigger(_str(doc, t, p, "id"), scope, name, expression, priority,
                                _str(doc, t, p, "description"), alert, metric_id,
                                bool(t.get("manual_close", False)), zscope, event_name, opdata))
    valuemaps = _valuemaps(doc, data, metrics)
    graphs = _graphs(doc, data, ids, cluster_ids)
    dashboard = _dashboard(doc, data, {g.id for g in graphs})
    groups = load_groups(doc, data.get("consumer_groups"), known_macros, PRIORITIES, VALUE_TYPES)
    inhibitions = _inhibitions(doc, data, {t.id for t in triggers} | {t.id for t in groups.triggers})
    doc.check()
    return Catalog(tuple(metrics), tuple(cluster_items), tuple(triggers), tuple(macros), source, ids,
                   valuemaps, graphs, dashboard, groups, inhibitions)


def _inhibitions(doc: Doc, data: dict[str, Any], trigger_ids: set[str]) -> tuple[Inhibition, ...]:
    out = []
    for i, rule in enumerate(data.get("inhibitions") or []):
        p = ("inhibitions", i)
        rule = _map(doc, rule, p)
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("sources", "targets", "equal"):
            value = rule.get(key)
            if key == "targets" and value == "all":
                lists[key] = ()
            elif not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                doc.fail(p + (key,), "expected a list of names" + (" (or all)" if key == "targets" else ""))
                lists[key] = ()
            else:
                lists[key] = tuple(value)
        for key in ("sources", "targets"):
            for tid in lists[key]:
                if tid not in trigger_ids:
                    doc.fail(p + (key,), f"unknown trigger {tid!r}")
        if set(lists["sources"]) & set(lists["targets"]):
            doc.fail(p + ("targets",), "a trigger cannot inhibit itself")
        out.append(Inhibition(lists["sources"], lists["targets"], lists["equal"], _str(doc, rule, p, "why")))
    return tuple(out)


def _valuemaps(doc: Doc, data: dict[str, Any], metrics: list[Metric]) -> tuple[ValueMap, ...]:
    out = []
    for i, v in enumerate(data.get("valuemaps") or []):
        p = ("valuemaps", i)
        mappings = v.get("mappings") or {}
        if not isinstance(mappings, dict) or not mappings:
            doc.fail(p + ("mappings",), "expected a mapping of values to what Zabbix shows")
            mappings = {}
        out.append(ValueMap(_str(doc, v, p, "name"), tuple((str(k), str(n)) for k, n in mappings.items())))
    names = {v.name for v in out}
    for i, m in enumerate(metrics):
        if m.zabbix.valuemap and m.zabbix.valuemap not in names:
            doc.fail(("metrics", i, "zabbix", "valuemap"), f"value map {m.zabbix.valuemap!r} is not defined under valuemaps")
    return tuple(out)


def _graphs(doc: Doc, data: dict[str, Any], ids: dict[str, Metric], cluster_ids: set[str]) -> tuple[Graph | TopicGraph, ...]:
    out: list[Graph | TopicGraph] = []
    for i, g in enumerate(data.get("graphs") or []):
        p = ("graphs", i)
        gid, name = _str(doc, g, p, "id"), _str(doc, g, p, "name")
        if "topic" in g:
            metric = str(g["topic"])
            if metric not in ids or ids[metric].lld != "topic":
                doc.fail(p + ("topic",), f"{metric!r} is not a per-topic metric (lld: topic)")
            out.append(TopicGraph(gid, name, metric))
            continue
        metrics, aggregates = tuple(g.get("metrics") or ()), tuple(g.get("cluster_items") or ())
        if bool(metrics) == bool(aggregates):
            doc.fail(p, "a graph draws either metrics or cluster_items (or one per-topic metric as topic)")
        for m in metrics:
            if m not in ids or ids[m].lld in ("bean", "attribute"):
                doc.fail(p + ("metrics",), f"{m!r} is not a metric every node of its role has")
        roles = {ids[m].role for m in metrics if m in ids} - {"both"}
        if len(roles) > 1:
            doc.fail(p + ("metrics",), "a graph's metrics must share a role (or be on both)")
        for c in aggregates:
            if c not in cluster_ids:
                doc.fail(p + ("cluster_items",), f"unknown cluster item {c!r}")
        out.append(Graph(gid, name, metrics, aggregates))
    if len({g.id for g in out}) != len(out):
        doc.fail(("graphs",), "graph ids must be unique")
    return tuple(out)


def _dashboard(doc: Doc, data: dict[str, Any], graph_ids: set[str]) -> tuple[Page, ...]:
    out = []
    for i, page in enumerate(data.get("dashboard") or []):
        p = ("dashboard", i)
        graphs = tuple(page.get("graphs") or ())
        for g in graphs:
            if g not in graph_ids:
                doc.fail(p + ("graphs",), f"unknown graph {g!r}")
        out.append(Page(_str(doc, page, p, "page"), graphs))
    return tuple(out)
