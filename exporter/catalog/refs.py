"""The catalog's one placeholder syntax, resolved by one function: `{KIND:ID}` names a catalog entry where an
expression needs its Prometheus name or its Zabbix key.

    {metric:ID}     a metric's Prometheus name (alert expressions, dashboard queries)
    {group:ID}      a consumer-group item's Prometheus name
    {item:ID}       the Zabbix item of a metric on the same host (trigger expressions); {item}: the trigger's own
    {cluster:ID}    a cluster item of the cluster host (cluster trigger expressions)
    {selector:ID}   a dashboard's label selector (cluster, node, group)

Zabbix's own macros ({$MACRO}, {#LLD}, {HOST.NAME}) and Grafana's {{label}} are other syntaxes and pass through."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from kafka_common.yamlconf import Doc, KeyPath

KINDS = ("metric", "group", "item", "cluster", "selector")
REF = re.compile(r"\{(" + "|".join(KINDS) + r")(?::(\w+))?\}")


def find(text: str) -> list[tuple[str, str]]:
    """(kind, id) of every placeholder, in order; id "" for the bare {item}."""
    return [(m.group(1), m.group(2) or "") for m in REF.finditer(text)]


def resolve(text: str, **resolvers: Callable[[str], str]) -> str:
    """text with every placeholder replaced by its kind's resolver (given the id); a kind without a resolver
    here raises ValueError naming it."""
    def one(m: re.Match[str]) -> str:
        kind, ref = m.group(1), m.group(2) or ""
        if kind not in resolvers:
            raise ValueError(f"{m.group(0)} cannot be used here (allowed: "
                             f"{', '.join('{' + k + ':ID}' for k in resolvers)})")
        return resolvers[kind](ref)
    return REF.sub(one, text)


# what a {metric:ID} or {group:ID} that names nothing is told
_NOTHING = {"metric": "no metric {!r} with a Prometheus name", "group": "no consumer-group item {!r}"}


def resolve_names(doc: Doc, path: KeyPath, text: str, **names: Mapping[str, str | None]) -> str:
    """PromQL with its {metric:ID} and {group:ID} resolved to Prometheus names (`names`: kind -> id -> name);
    a reference to nothing, or of a kind not given, is a problem of the document at path."""
    def resolver(kind: str) -> Callable[[str], str]:
        def name(ref: str) -> str:
            found = names[kind].get(ref)
            if not found:
                doc.fail(path, f"{{{kind}:{ref}}}: {_NOTHING[kind].format(ref)}")
                return ref
            return found
        return name
    try:
        return resolve(text, **{kind: resolver(kind) for kind in names})
    except ValueError as e:
        doc.fail(path, str(e))
        return text
