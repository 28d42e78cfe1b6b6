"""The catalog's consumer groups: items and triggers over the exporter's Kafka-protocol collection,
one discovery per group and one per group x topic (the section `consumer_groups` of kafka-4x.yaml)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from exporter.catalog import refs
from exporter.catalog.keys import with_parameters
from exporter.lag.families import FAMILIES, LOST
from kafka_common.yamlconf import Doc

PER = {"group": ("{#GROUP}",), "group_topic": ("{#GROUP}", "{#TOPIC}")}
SERIES = set(FAMILIES) | {LOST[0] + "_total"}         # a counter's series carries _total
MACRO_REF = re.compile(r'\{\$([A-Z0-9_.]+)(?::"[^"]*")?(?:\|\w+)?\}')


@dataclass(frozen=True)
class GroupItem:
    id: str
    per: str
    key_base: str
    prometheus: str
    name: str
    value_type: str
    description: str
    units: str = ""
    valuemap: str | None = None

    @property
    def key(self) -> str:
        """The item prototype's key, with the discovered names as parameters."""
        return with_parameters(self.key_base, PER[self.per])

    def key_for(self, group: str, topic: str | None = None) -> str:
        """The key of one discovered item (what the exporter sends)."""
        names = (group,) if self.per == "group" else (group, topic or "")
        return with_parameters(self.key_base, names)


@dataclass(frozen=True)
class GroupAlert:
    name: str
    expr: str
    for_: str
    severity: str


@dataclass(frozen=True)
class GroupTrigger:
    id: str
    per: str
    metric: str
    name: str
    expression: str
    priority: str
    description: str
    alert: GroupAlert
    zabbix_scope: str = "performance"
    event_name: str = ""
    opdata: str = ""
    manual_close: bool = False

    @property
    def problem(self) -> str:
        return self.event_name or self.name


@dataclass(frozen=True)
class ConsumerGroups:
    items: tuple[GroupItem, ...] = ()
    triggers: tuple[GroupTrigger, ...] = ()
    macros: tuple[tuple[str, str, str], ...] = ()           # (macro, value, description)
    valuemap: tuple[str, tuple[tuple[str, str], ...]] | None = None

    def item(self, item_id: str) -> GroupItem:
        return next(i for i in self.items if i.id == item_id)

    def macro(self, name: str) -> str:
        return next(value for macro, value, _ in self.macros if macro == name)


def _list(doc: Doc, top: dict[str, Any], key: str) -> list[Any]:
    value = top.get(key) or []
    if not isinstance(value, list):
        doc.fail(("consumer_groups", key), "expected a list")
        return []
    return value


def load(doc: Doc, raw: object, known_macros: set[str], priorities: tuple[str, ...],
         value_types: tuple[str, ...]) -> ConsumerGroups:
    if raw is None:
        return ConsumerGroups()
    top = doc.mapping(raw, ("consumer_groups",), {"macros", "valuemap", "items", "triggers"})
    macros = []
    for i, m in enumerate(_list(doc, top, "macros")):
        p = ("consumer_groups", "macros", i)
        m = doc.mapping(m, p, {"macro", "value", "description"})
        macro, value, description = (str(m.get(k, "")) for k in ("macro", "value", "description"))
        if not re.fullmatch(r"\{\$[A-Z0-9_.]+\}", macro):
            doc.fail(p + ("macro",), f"not a user macro: {macro!r}")
        macros.append((macro, value, description))
    known = known_macros | {m for m, _, _ in macros}
    valuemap = None
    if top.get("valuemap"):
        v = doc.mapping(top["valuemap"], ("consumer_groups", "valuemap"), {"name", "mappings"})
        mappings = v.get("mappings") or {}
        if not isinstance(mappings, dict):
            doc.fail(("consumer_groups", "valuemap", "mappings"), "expected a mapping of values to what Zabbix shows")
            mappings = {}
        valuemap = (str(v.get("name", "")), tuple((str(k), str(n)) for k, n in mappings.items()))
    items: dict[str, GroupItem] = {}
    for i, it in enumerate(_list(doc, top, "items")):
        p = ("consumer_groups", "items", i)
        it = doc.mapping(it, p, {"id", "per", "key", "prometheus", "name", "value_type", "description", "units",
                                 "valuemap"})
        per = str(it.get("per", ""))
        if per not in PER:
            doc.fail(p + ("per",), f"per must be group or group_topic, got {per!r}")
        vt = str(it.get("value_type", ""))
        if vt not in value_types:
            doc.fail(p + ("value_type",), f"value_type must be one of {', '.join(value_types)}, got {vt!r}")
        vm = it.get("valuemap")
        if vm is not None and (valuemap is None or vm != valuemap[0]):
            doc.fail(p + ("valuemap",), f"value map {vm!r} is not the section's valuemap")
        if str(it.get("prometheus", "")) not in SERIES:
            doc.fail(p + ("prometheus",), f"{it.get('prometheus')!r} is not a series the exporter's lag collection "
                                          f"makes (exporter/lag/families.py: {', '.join(sorted(SERIES))})")
        item = GroupItem(str(it.get("id", "")), per, str(it.get("key", "")), str(it.get("prometheus", "")),
                         str(it.get("name", "")), vt, str(it.get("description", "")), str(it.get("units", "")), vm)
        if item.id in items:
            doc.fail(p + ("id",), f"item id {item.id!r} is used twice")
        items[item.id] = item
    triggers = []
    for i, t in enumerate(_list(doc, top, "triggers")):
        p = ("consumer_groups", "triggers", i)
        t = doc.mapping(t, p, {"id", "per", "metric", "zabbix_scope", "name", "event_name", "opdata", "expression",
                               "priority", "description", "alert"})
        metric = str(t.get("metric", ""))
        per = str(t.get("per", ""))
        if metric not in items:
            doc.fail(p + ("metric",), f"unknown consumer-group item {metric!r}")
        elif items[metric].per != per:
            doc.fail(p + ("per",), f"{metric!r} is discovered per {items[metric].per}, not per {per}")
        expression, name = str(t.get("expression", "")), str(t.get("name", ""))
        if ("item", "") not in refs.find(expression):
            doc.fail(p + ("expression",), "a trigger refers to its item as {item}")
        for kind, ref in refs.find(expression):
            if kind != "item":
                doc.fail(p + ("expression",), f"{{{kind}:{ref}}}: a consumer-group trigger refers to items ({{item:ID}})")
            elif ref and (ref not in items or items[ref].per != per):
                # Zabbix refuses a trigger prototype over item prototypes of two discovery rules
                doc.fail(p + ("expression",), f"{{item:{ref}}} is not an item of the same discovery")
        if re.search(r"\{(HOST|ITEM)\.", name):
            doc.fail(p + ("name",), "a trigger name holds no {HOST.*} or {ITEM.*} macro: put them in event_name or opdata")
        event_name, opdata = str(t.get("event_name", "")), str(t.get("opdata", ""))
        a = doc.mapping(t.get("alert") or {}, p + ("alert",), {"name", "expr", "for", "severity"})
        for ref in MACRO_REF.findall(expression + name + event_name + opdata + str(a.get("expr", "")) + str(a.get("for", ""))):
            if "{$" + ref + "}" not in known:
                doc.fail(p, f"macro {{${ref}}} is not defined under macros")
        priority = str(t.get("priority", ""))
        if priority not in priorities:
            doc.fail(p + ("priority",), f"priority must be one of {', '.join(priorities)}")
        triggers.append(GroupTrigger(str(t.get("id", "")), per, metric, name, expression, priority,
                                     str(t.get("description", "")),
                                     GroupAlert(str(a.get("name", "")),
                                                refs.resolve_names(doc, p + ("alert", "expr"), str(a.get("expr", "")),
                                                                   group={i: it.prometheus for i, it in items.items()}),
                                                str(a.get("for", "0m")),
                                                str(a.get("severity", ""))),
                                     str(t.get("zabbix_scope", "performance")), event_name, opdata))
    return ConsumerGroups(tuple(items.values()), tuple(triggers), tuple(macros), valuemap)
