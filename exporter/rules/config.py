"""A jmx_exporter rules file: its settings and rules, checked as jmx_exporter's loadConfig checks them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from exporter.rules.java_regex import _JAVA_DOT, RegexError, translate_java_regex
from exporter.rules.model import MetricType
from exporter.sample import java_value_string
from kafka_common.names import ObjectNamePattern
from kafka_common.yamlconf import Doc


@dataclass
class Rule:
    index: int
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    name: str | None = None
    value: str | None = None
    value_factor: float = 1.0
    labels: list[tuple[str, str]] = field(default_factory=list)
    help: str | None = None
    type: MetricType = MetricType.UNTYPED
    attr_snake_case: bool = False
    cache: bool = False
    line: int = 0                            # where the rule starts in its file (0: jmx_exporter's default rule)


@dataclass
class MetricCustomizer:
    """jmx_exporter's metricCustomizers entry: for the beans of `domain` having `properties`,
    some attributes' values become labels, and extra constant metrics are added."""

    domain: str
    properties: dict[str, str]
    attributes_as_labels: list[str]
    extra_metrics: list[tuple[str, Any]]         # (name, value)

    def applies(self, domain: str, props: tuple[tuple[str, str], ...]) -> bool:
        own = dict(props)
        return domain == self.domain and all(own.get(k) == v for k, v in self.properties.items())


RULE_KEYS = {"pattern", "name", "value", "valueFactor", "labels", "help", "type", "attrNameSnakeCase", "cache"}
TOP_KEYS = {"rules", "lowercaseOutputName", "lowercaseOutputLabelNames", "includeObjectNames",
            "excludeObjectNames", "whitelistObjectNames", "blacklistObjectNames",
            "inferCounterTypeFromName", "excludeJvmMetrics", "includeObjectNameAttributes",
            "excludeObjectNameAttributes", "autoExcludeObjectNameAttributes", "metricCustomizers",
            # connection, HTTP and agent settings of jmx_exporter: accepted (real configs carry them);
            # the exporter's own config file decides those
            "startDelaySeconds", "scrapeTimeoutSeconds", "hostPort", "jmxUrl", "username", "password", "ssl",
            "httpServer", "openTelemetry"}
# jmx_exporter keeps any type text; only these two exact spellings are types, the rest is UNKNOWN
TYPES = {"GAUGE": MetricType.GAUGE, "COUNTER": MetricType.COUNTER}
KNOWN_UNTYPED = {"UNTYPED", "UNKNOWN"}
# excludeJvmMetrics: true adds these (JmxCollector.loadConfig)
JVM_DOMAINS = ("com.sun.management", "com.sun.management.jmxremote", "java.lang", "java.nio", "java.util.logging",
               "javax.management", "javax.management.remote", "jdk.internal", "jdk.management", "jdk.management.jfr",
               "sun.management")


@dataclass(frozen=True)
class RulesConfig:
    """A loaded rules file."""

    rules: list[Rule]
    lowercase_names: bool = False
    lowercase_labels: bool = False
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    source: str = "<rules>"
    infer_counters: bool = False
    include_attributes: list[tuple[str, set[str]]] = field(default_factory=list)
    exclude_attributes: list[tuple[str, set[str]]] = field(default_factory=list)
    customizers: list[MetricCustomizer] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_rules(text: str, source: str = "<rules>") -> RulesConfig:
    """A jmx_exporter rules file, with every mistake named by its line (ConfigError)."""
    doc = Doc(text, source)
    if doc.data is None:
        data: dict[str, Any] = {}              # an empty document: jmx_exporter's default export
    elif isinstance(doc.data, dict):
        data = doc.data
    else:
        data = {}
        doc.fail((), "expected a mapping with 'rules'")
    for key in data:
        if key not in TOP_KEYS:
            doc.fail((key,), f"unknown jmx_exporter setting {key!r}")
    for key in ("lowercaseOutputName", "lowercaseOutputLabelNames", "inferCounterTypeFromName",
                "excludeJvmMetrics", "autoExcludeObjectNameAttributes"):
        if data.get(key) is not None and not isinstance(data[key], bool):
            doc.fail((key,), f"expected true or false, got {data[key]!r}")
    # the newer names win; the older ones count only when the newer is absent (as jmx_exporter reads them)
    includes = _patterns(doc, data, "includeObjectNames" if "includeObjectNames" in data else "whitelistObjectNames")
    excludes = _patterns(doc, data, "excludeObjectNames" if "excludeObjectNames" in data else "blacklistObjectNames")
    if data.get("excludeJvmMetrics") is True:
        excludes += [f"{d}:*" for d in JVM_DOMAINS]
    warnings: list[str] = []
    rules: list[Rule] = []
    raw = data.get("rules")
    if "rules" not in data:
        rules.append(Rule(0))      # jmx_exporter's single default rule
    elif not isinstance(raw, list):
        doc.fail(("rules",), "expected a list of rules")
    else:
        for i, r in enumerate(raw):
            rule = _rule(doc, i, r, warnings)
            if rule is not None:
                rules.append(rule)
    include_attrs = _attribute_map(doc, data, "includeObjectNameAttributes")
    exclude_attrs = _attribute_map(doc, data, "excludeObjectNameAttributes")
    customizers = _customizers(doc, data)
    doc.check()
    return RulesConfig(rules, data.get("lowercaseOutputName") is True, data.get("lowercaseOutputLabelNames") is True,
                       includes, excludes, source, data.get("inferCounterTypeFromName") is True,
                       include_attrs, exclude_attrs, customizers, warnings)


def _patterns(doc: Doc, data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        doc.fail((key,), "expected a list of ObjectName patterns")
        return []
    for i, v in enumerate(value):
        try:
            ObjectNamePattern(v)
        except ValueError as e:
            doc.fail((key, i), str(e))
    return list(value)


def _attribute_map(doc: Doc, data: dict[str, Any], key: str) -> list[tuple[str, set[str]]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, dict):
        doc.fail((key,), "expected a mapping of ObjectName pattern to a list of attribute names")
        return []
    out = []
    for pattern, attrs in value.items():
        try:
            ObjectNamePattern(pattern)
        except ValueError as e:
            doc.fail((key, pattern), str(e))
            continue
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            doc.fail((key, pattern), "expected a list of attribute names")
            continue
        out.append((pattern, set(attrs)))
    return out


def _customizers(doc: Doc, data: dict[str, Any]) -> list[MetricCustomizer]:
    if "metricCustomizers" not in data:
        return []
    raw = data["metricCustomizers"]
    if not isinstance(raw, list):
        doc.fail(("metricCustomizers",), "expected a list of {mbeanFilter, attributesAsLabels, extraMetrics}")
        return []
    out = []
    for i, c in enumerate(raw):
        path = ("metricCustomizers", i)
        f = c.get("mbeanFilter") if isinstance(c, dict) else None
        if not isinstance(f, dict):
            doc.fail(path, "must provide mbeanFilter (domain and optional properties)")
            continue
        if not isinstance(f.get("domain"), str):
            doc.fail(path + ("mbeanFilter",), "must provide domain")
            continue
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            doc.fail(path + ("mbeanFilter", "properties"), "expected a mapping of key property to value")
            continue
        labels, extras = c.get("attributesAsLabels"), c.get("extraMetrics")
        if labels is None and extras is None:
            doc.fail(path, "must provide attributesAsLabels or extraMetrics")
            continue
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(a, str) for a in labels)):
            doc.fail(path + ("attributesAsLabels",), "expected a list of attribute names")
            continue
        metrics = []
        for j, m in enumerate(extras or []):
            if not isinstance(m, dict) or m.get("name") is None:
                doc.fail(path + ("extraMetrics", j), "must provide name")
            elif m.get("value") is None:
                doc.fail(path + ("extraMetrics", j), "must provide value")
            else:
                metrics.append((str(m["name"]), m["value"]))
        out.append(MetricCustomizer(f["domain"], {str(k): str(v) for k, v in props.items()}, labels or [], metrics))
    return out


def _rule(doc: Doc, i: int, r: Any, warnings: list[str]) -> Rule | None:
    path = ("rules", i)
    if not isinstance(r, dict):
        doc.fail(path, "a rule is a mapping (pattern, name, labels, ...)")
        return None
    for key in r:
        if key not in RULE_KEYS:
            doc.fail(path + (key,), f"unknown rule key {key!r} (known: {', '.join(sorted(RULE_KEYS))})")
    rule = Rule(i, line=doc.lines.get(path, 0))
    if "pattern" in r:
        text = str(r["pattern"])
        try:
            # no DOTALL, ASCII \w \d \s: Java's defaults
            rule.pattern = re.compile(f"^{_JAVA_DOT}*(?:{translate_java_regex(text)}){_JAVA_DOT}*$", re.ASCII)
            rule.pattern_text = text
        except (RegexError, re.error) as e:
            doc.fail(path + ("pattern",), f"rule {i}: cannot use pattern {text!r}: {e}")
    rule.name = None if r.get("name") is None else str(r["name"])
    if "labels" in r:
        labels = r["labels"]
        if not isinstance(labels, dict):
            doc.fail(path + ("labels",), "expected a mapping of label name to value")
        else:
            rule.labels = sorted((str(k), "" if v is None else str(v)) for k, v in labels.items())
    if r.get("help") is not None:
        rule.help = str(r["help"])
    if "value" in r:
        # an empty `value:` is the text "null" to jmx_exporter: no number, so no sample
        rule.value = "null" if r["value"] is None else java_value_string(r["value"])
    if "valueFactor" in r:
        try:
            rule.value_factor = float(r["valueFactor"])
        except (TypeError, ValueError):
            doc.fail(path + ("valueFactor",), f"expected a number, got {r['valueFactor']!r}")
    if r.get("type") is not None:
        t = str(r["type"])
        rule.type = TYPES.get(t, MetricType.UNTYPED)
        if t not in TYPES and t not in KNOWN_UNTYPED:
            hint = f" (did you mean {t.upper()}?)" if t.upper() in TYPES else ""
            warnings.append(f"{doc.where(path + ('type',))}: type {t!r} is not COUNTER or GAUGE: "
                            f"the samples are untyped, as in jmx_exporter{hint}")
    for key, attr in (("attrNameSnakeCase", "attr_snake_case"), ("cache", "cache")):
        if r.get(key) is not None:
            if not isinstance(r[key], bool):
                doc.fail(path + (key,), f"expected true or false, got {r[key]!r}")
            else:
                setattr(rule, attr, r[key])
    if ("labels" in r or rule.help is not None) and rule.name is None:
        doc.fail(path, f"rule {i}: 'labels' or 'help' given without 'name' (jmx_exporter requires a name)")
    if rule.name is not None and "pattern" not in r:
        doc.fail(path, f"rule {i}: 'name' given without 'pattern'")
    if rule.pattern is not None:
        for template in [rule.name or "", rule.help or "", rule.value or "", *(x for kv in rule.labels for x in kv)]:
            for num in re.findall(r"(?<!\\)\$(\d)", template):
                if int(num) > rule.pattern.groups:
                    doc.fail(path, f"rule {i}: ${num} used but the pattern has {rule.pattern.groups} groups")
                    break
    return rule
