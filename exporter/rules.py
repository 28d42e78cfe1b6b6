"""jmx_exporter 1.x's rules, with its semantics: match string, first match wins, $n templates, names.

For every attribute the match string is

    domain<k1=v1, k2=v2><compositeKey1, compositeKey2>attrName: value

with the key properties in registration order (TabularData index columns after them). A rule's
pattern is a Java regex matched unanchored (as "^.*(?:PATTERN).*$", no DOTALL, ASCII classes);
the first rule that matches decides: its name, labels and help are the templates expanded with the
groups ($1, ${name}); no name means jmx_exporter's default name. Numbers are multiplied by
valueFactor, booleans become 1/0, anything else is dropped unless the rule's `value` turns it into
a number. Names have every run of characters outside [a-zA-Z0-9:_] replaced by one "_", then
client_java cuts the reserved suffixes (_total, _created, _bucket, _info). Labels are sorted by
name. With `cache: true` a rule is matched once per attribute against the value "<cache>" (so it
must not look at the value). Before the rules: includeObjectNames/excludeObjectNames (or the older
whitelist/blacklist), excludeJvmMetrics, include/excludeObjectNameAttributes and metricCustomizers.

    rules = RuleSet.from_yaml(open("kafka.yml").read(), "kafka.yml")
    for m in rules.apply(samples): ...      # MatchedSample(name, labels, value, type, help)
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from sys import intern
from typing import Any, NamedTuple

from exporter.sample import NO_VALUE, Sample, java_value_string, shared_pair
from kafka_common.names import ObjectNamePattern
from kafka_common.yamlconf import Doc

_UNSAFE = re.compile(r"[^a-zA-Z0-9:_]")
_UNDERSCORES = re.compile(r"__+")
_RESERVED_SUFFIXES = ("_total", "_created", "_bucket", "_info")


class MetricType(Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    UNTYPED = "untyped"


class MatchedSample(NamedTuple):
    name: str
    labels: tuple[tuple[str, str], ...]      # sorted by name
    value: float
    type: MetricType
    help: str
    object_name: str = ""


def safe_name(text: str) -> str:
    name = _UNDERSCORES.sub("_", _UNSAFE.sub("_", text))
    return "_" + name if name[:1].isdigit() else name


def snake_case(name: str) -> str:
    """jmx_exporter's attrNameSnakeCase: '_' before an upper-case letter that follows neither an
    upper-case letter nor '_', everything lower-cased (testTCPTest -> test_tcptest)."""
    if not name:
        return name
    out = [name[0].lower()]
    prev = name[0].isupper() or name[0] == "_"
    for c in name[1:]:
        upper = c.isupper()
        if upper and not prev:
            out.append("_")
        out.append(c.lower())
        prev = upper or c == "_"
    return "".join(out)


def strip_reserved_suffixes(name: str) -> str:
    """client_java 1.x's sanitizeMetricName: _total, _created, _bucket and _info are cut off, again
    and again; a counter gets _total back when it is exposed."""
    changed = True
    while changed:
        changed = False
        for suffix in _RESERVED_SUFFIXES:
            if name.endswith(suffix):
                name = name[:-len(suffix)]
                changed = True
    return name


def java_double_of(text: str) -> float | None:
    """Double.valueOf: surrounding blanks, a d/f suffix, NaN and Infinity allowed; None if not a number."""
    t = text.strip(" \t\n\r\x0b\x0c\x00")
    if not _JAVA_NUMBER.fullmatch(t):
        return None
    t = t.rstrip("dDfF") if not t.endswith("Infinity") else t
    if t.lstrip("+-") == "NaN":
        return math.nan
    if t.lstrip("+-") == "Infinity":
        return -math.inf if t.startswith("-") else math.inf
    if "x" in t or "X" in t:
        return float.fromhex(t)
    return float(t)


_JAVA_NUMBER = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
                          r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)[fFdD]?)")


# -- Java regex -> Python re ---------------------------------------------------------------------------
_POSIX = {"Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
          "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "Blank": " \\t",
          "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r",
          "javaLowerCase": "a-z", "javaUpperCase": "A-Z", "IsAlphabetic": "a-zA-Z", "IsDigit": "0-9"}


class RegexError(ValueError):
    pass


# Java's '.' stops at every line terminator, Python's only at \n
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_INLINE_DOTALL = re.compile(r"\(\?[a-zA-Z]*s[a-zA-Z-]*[:)]")


def translate_java_regex(pattern: str) -> str:
    """Java regex syntax Python's re lacks: \\Q..\\E, (?<name>..), \\p{Posix}; possessive
    quantifiers and atomic groups are native in Python 3.11. Unsupported constructs raise."""
    out: list[str] = []
    i, n = 0, len(pattern)
    # a pattern that sets DOTALL itself ((?s), (?s:...)) keeps Python's '.', which the flag scopes
    java_dot = _JAVA_DOT if not _INLINE_DOTALL.search(pattern) else "."
    in_class = 0
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if nxt in "pP":
                m = re.match(r"\{(\w+)\}|(\w)", pattern[i + 2:])
                if not m:
                    raise RegexError(f"malformed \\{nxt} at position {i}")
                cls = m.group(1) or m.group(2)
                cls = cls[2:] if cls.startswith("Is") and cls[2:] in _POSIX else cls
                if cls not in _POSIX:
                    raise RegexError(f"Java character class \\{nxt}{{{cls}}} has no Python equivalent")
                body = _POSIX[cls]
                if in_class:
                    if nxt == "P":
                        raise RegexError(f"negated class \\P{{{cls}}} inside [...] has no Python equivalent")
                    out.append(body)
                else:
                    out.append(f"[{'^' if nxt == 'P' else ''}{body}]")
                i += 2 + m.end()
                continue
            if nxt in "zZ":
                # Java \z is the very end (Python \Z); Java \Z also allows a final line terminator
                out.append("\\Z" if nxt == "z" else "(?=\\n?\\Z)")
                i += 2
                continue
            if nxt in "GRXhHvV":
                raise RegexError(f"Java construct \\{nxt} has no Python equivalent")
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            if in_class and pattern[i + 1:i + 2] != ":":
                raise RegexError("nested character classes (Java [a-z[0-9]] or &&) have no Python equivalent")
            in_class += 1
        elif c == "]" and in_class:
            in_class -= 1
        elif c == "&" and in_class and pattern[i:i + 2] == "&&":
            raise RegexError("character class intersection && has no Python equivalent")
        elif c == "." and not in_class:
            out.append(java_dot)
            i += 1
            continue
        elif c == "(" and pattern[i:i + 3] == "(?<" and pattern[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def expand(template: str, m: re.Match[str]) -> str:
    """Matcher.replaceAll(template) when the whole input matched: $n / ${name} expanded."""
    out: list[str] = []
    i, n = 0, len(template)
    groups = m.re.groups
    while i < n:
        c = template[i]
        if c == "\\" and i + 1 < n:
            out.append(template[i + 1])
            i += 2
        elif c == "$" and i + 1 < n and template[i + 1] == "{":
            end = template.index("}", i)
            out.append(m.group(template[i + 2:end]) or "")
            i = end + 1
        elif c == "$" and i + 1 < n and template[i + 1].isdigit():
            j = i + 2
            num = int(template[i + 1])
            if num > groups:
                raise IndexError(f"No group {num}")
            # Java takes more digits while they still name an existing group
            while j < n and template[j].isdigit() and num * 10 + int(template[j]) <= groups:
                num = num * 10 + int(template[j])
                j += 1
            out.append(m.group(num) or "")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


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
# attributes jmx_exporter's scraper never reads (expensive, and strings anyway)
SKIPPED_ATTRIBUTES = {"java.lang:type=Runtime": {"systemproperties", "classpath", "bootclasspath", "librarypath"}}
SKIPPED_BEANS = {"jdk.management.jfr:type=FlightRecorder"}


class RuleError(ValueError):
    """The rules made a sample jmx_exporter refuses (a negative counter): the collection fails."""


class _Name(NamedTuple):
    domain: str
    props: tuple[tuple[str, str], ...]


class RuleSet:
    def __init__(self, rules: list[Rule], lowercase_names: bool = False, lowercase_labels: bool = False,
                 includes: Sequence[str] = (), excludes: Sequence[str] = (), source: str = "<rules>",
                 infer_counters: bool = False, include_attributes: Sequence[tuple[str, set[str]]] = (),
                 exclude_attributes: Sequence[tuple[str, set[str]]] = (),
                 customizers: Sequence[MetricCustomizer] = (), warnings: Sequence[str] = ()) -> None:
        self.rules = rules
        self.lowercase_names = lowercase_names
        self.lowercase_labels = lowercase_labels
        self.includes = list(includes)
        self.excludes = list(excludes)
        self.source = source
        self.infer_counters = infer_counters
        self.include_attributes = [(ObjectNamePattern(p), attrs) for p, attrs in include_attributes]
        self.exclude_attributes = [(ObjectNamePattern(p), attrs) for p, attrs in exclude_attributes]
        self.customizers = list(customizers)
        self.warnings = list(warnings)
        self._include_patterns = [ObjectNamePattern(p) for p in self.includes]
        self._exclude_patterns = [ObjectNamePattern(p) for p in self.excludes]
        self._filters = bool(self.includes or self.excludes or self.include_attributes or self.exclude_attributes)
        self._beans: dict[tuple[Any, ...], bool] = {}          # (domain, props) -> exported, when filters are set
        self._cache = RuleCache(evicting=False)       # for calls without a target's own cache
        # what a first evaluation learned per attribute, shared by every target: brokers have the same
        # RequestMetrics, BrokerTopicMetrics... beans, so only the first target pays for the regexes
        self._learned: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._snake = any(r.attr_snake_case for r in rules)

    # -- loading --------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> RuleSet:
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
        includes = cls._patterns(doc, data, "includeObjectNames" if "includeObjectNames" in data else "whitelistObjectNames")
        excludes = cls._patterns(doc, data, "excludeObjectNames" if "excludeObjectNames" in data else "blacklistObjectNames")
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
                rule = cls._rule(doc, i, r, warnings)
                if rule is not None:
                    rules.append(rule)
        include_attrs = cls._attribute_map(doc, data, "includeObjectNameAttributes")
        exclude_attrs = cls._attribute_map(doc, data, "excludeObjectNameAttributes")
        customizers = cls._customizers(doc, data)
        doc.check()
        return cls(rules, data.get("lowercaseOutputName") is True, data.get("lowercaseOutputLabelNames") is True,
                   includes, excludes, source, data.get("inferCounterTypeFromName") is True,
                   include_attrs, exclude_attrs, customizers, warnings)

    @staticmethod
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

    @staticmethod
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

    @staticmethod
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

    @staticmethod
    def _rule(doc: Doc, i: int, r: Any, warnings: list[str]) -> Rule | None:
        path = ("rules", i)
        if not isinstance(r, dict):
            doc.fail(path, "a rule is a mapping (pattern, name, labels, ...)")
            return None
        for key in r:
            if key not in RULE_KEYS:
                doc.fail(path + (key,), f"unknown rule key {key!r} (known: {', '.join(sorted(RULE_KEYS))})")
        rule = Rule(i)
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

    def describe(self) -> list[str]:
        """What the rules file asks beyond its rules, for `rules test`."""
        out = []
        if self.includes:
            out.append(f"only MBeans matching: {', '.join(self.includes)}")
        if self.excludes:
            out.append(f"never MBeans matching: {', '.join(self.excludes)}")
        for label, entries in (("only attributes", self.include_attributes), ("never attributes", self.exclude_attributes)):
            for pattern, attrs in entries:
                out.append(f"{label} {', '.join(sorted(attrs))} of {pattern.text}")
        return out

    # -- applying ---------------------------------------------------------------------------------------------
    @staticmethod
    def _attr_keys(s: Sample) -> tuple[tuple[str, ...], str]:
        """jmx_exporter's (attrKeys, attrName): inside CompositeData the attribute joins the keys
        and the innermost key is the name (java.lang<type=Memory><HeapMemoryUsage>used)."""
        if not s.path:
            return (), s.attr
        return (s.attr,) + s.path[:-1], s.path[-1]

    def _bean(self, s: Sample) -> str:
        props = ", ".join(f"{k}={v}" for k, v in s.props)
        return f"{s.domain}<{props}><{', '.join(self._attr_keys(s)[0])}>"

    def exported(self, s: Sample) -> bool:
        """includeObjectNames/excludeObjectNames and the attribute filters, by the MBean's own name."""
        base = s.bean_props
        key = (s.domain, base, s.attr)
        known = self._beans.get(key)
        if known is not None:
            return known
        name = _Name(s.domain, base)
        ok = ((not self._include_patterns or any(p.matches(name) for p in self._include_patterns))
              and not any(p.matches(name) for p in self._exclude_patterns)
              and not any(s.attr in attrs and p.matches(name) for p, attrs in self.exclude_attributes)
              and (not self.include_attributes
                   or any(s.attr in attrs and p.matches(name) for p, attrs in self.include_attributes)))
        if len(self._beans) > 500_000:
            self._beans.clear()
        self._beans[key] = ok
        return ok

    def match(self, s: Sample, cache: RuleCache | None = None,
              extra_labels: tuple[tuple[str, str], ...] = ()) -> MatchedSample | None:
        cache = self._cache if cache is None else cache
        key = s.key() if not extra_labels else s.key() + (extra_labels,)
        entry = cache.old.get(key)
        if entry is None:
            entry = self._learned.get(key)
            if entry is None:
                return self._evaluate(s, key, cache, extra_labels)
        cache.new[key] = entry
        retry, index, name, labels, help_, object_name, mtype = entry
        if retry:
            strings = self._strings(s)
            for i in retry:     # rules that look at the value missed last time; this value may match
                outcome = self._try(i, s, *strings, extra_labels)
                if outcome is not _MISS:
                    return outcome[0] if outcome is not None else None
        if index < 0:
            return None
        rule = self.rules[index]
        value = self._value(rule, None, s.value)
        if value is None:
            return None
        if rule.help is None:       # the default help names the bean: made again rather than kept per series
            help_ = self._default_help(s)
        return MatchedSample(name, labels, value, mtype, help_, object_name)

    def _strings(self, s: Sample) -> tuple[str, str, str]:
        attr_name = self._attr_keys(s)[1]
        return self._bean(s), attr_name, snake_case(attr_name) if self._snake else attr_name

    def _evaluate(self, s: Sample, key: tuple[Any, ...], cache: RuleCache,
                  extra_labels: tuple[tuple[str, str], ...]) -> MatchedSample | None:
        """First match wins. As jmx_exporter remembers each cached rule's answer per attribute, the
        cache keeps which value-reading rules must be tried again and the cached rule that matched."""
        strings = self._strings(s)
        retry = []
        for i, rule in enumerate(self.rules):
            outcome = self._try(i, s, *strings, extra_labels)
            if outcome is _MISS:
                if not rule.cache:
                    retry.append(i)
                continue
            if outcome is None:
                return None
            sample, cacheable = outcome
            if rule.cache and cacheable:
                # ints and strings only: the garbage collector stops tracking such tuples
                cache.new[key] = self._learn(key, (tuple(retry), i, sample.name, sample.labels,
                                                   "" if rule.help is None else sample.help, sample.object_name,
                                                   sample.type))
            return sample
        cache.new[key] = self._learn(key, (tuple(retry), -1, "", (), "", "", MetricType.UNTYPED))
        return None

    def _learn(self, key: tuple[Any, ...], entry: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(self._learned) > 1_000_000:          # bounded for clusters whose topics keep changing
            self._learned.clear()
        self._learned[key] = entry
        return entry

    def _try(self, index: int, s: Sample, bean: str, attr_name: str, snake: str,
             extra_labels: tuple[tuple[str, str], ...] = ()) -> tuple[MatchedSample, bool] | _Miss | None:
        """_MISS; None (matched, nothing exported); or (sample, whether a cache entry may keep it)."""
        rule = self.rules[index]
        attribute = snake if rule.attr_snake_case else attr_name
        match_string = bean + attribute + ": " + ("<cache>" if rule.cache else java_value_string(s.value))
        m = None
        if rule.pattern is not None:
            m = rule.pattern.match(match_string)
            if m is None:
                return _MISS
        value = self._value(rule, m, s.value)
        if value is None:
            return None
        # jmx_exporter's _objectname: the match string up to its last ':'
        object_name = intern(match_string[:match_string.rindex(":")])
        if rule.name is None:
            return self._default(s, attribute, value, rule.type, object_name, extra_labels), False
        assert m is not None        # loading refuses a name without a pattern, as jmx_exporter does
        name = safe_name(expand(rule.name, m))
        if not name:
            return None
        if self.lowercase_names:
            name = name.lower()
        mtype = MetricType.COUNTER if self.infer_counters and name.endswith("_total") else rule.type
        name = strip_reserved_suffixes(name)
        if not name:
            return None
        # interned: the cache holds these for every series, and most repeat across series
        name = intern(name)
        help_ = intern(expand(rule.help, m)) if rule.help is not None else self._default_help(s)
        labels = {}
        for lname, lvalue in extra_labels:
            ln = safe_name(lname)
            labels[ln.lower() if self.lowercase_labels else ln] = lvalue
        for lname, lvalue in rule.labels:
            ln = safe_name(expand(lname, m))
            lv = expand(lvalue, m)
            if self.lowercase_labels:
                ln = ln.lower()
            if ln and lv:
                labels[ln] = lv
        sorted_labels = tuple(shared_pair(k, v) for k, v in sorted(labels.items()))
        return MatchedSample(name, sorted_labels, value, mtype, help_, object_name), True

    @staticmethod
    def _default_help(s: Sample) -> str:
        """jmx_exporter 1.x's HELP: the bean's name and type properties and the attribute."""
        name = type_ = "null"
        for k, v in s.props:        # read on every cached match: no dict built for two keys
            if k == "name":
                name = v
            elif k == "type":
                type_ = v
        return f"{s.domain}:name={name},type={type_},attribute={RuleSet._attr_keys(s)[1]}"

    def _value(self, rule: Rule, m: re.Match[str] | None, raw: Any) -> float | None:
        if rule.value:
            raw = java_double_of(expand(rule.value, m) if m is not None else rule.value)
            if raw is None:
                return None
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if isinstance(raw, float):
            return raw * rule.value_factor
        if isinstance(raw, int):
            try:
                return float(raw) * rule.value_factor
            except OverflowError:
                # a BigInteger beyond double range: Java's doubleValue() gives +/-Infinity, so does jmx_exporter
                return (math.inf if raw > 0 else -math.inf) * rule.value_factor
        return None

    def _default(self, s: Sample, attr: str, value: float, mtype: MetricType, object_name: str,
                 extra_labels: tuple[tuple[str, str], ...]) -> MatchedSample:
        parts = [s.domain]
        if s.props:
            parts.append(s.props[0][1])
        parts.extend(self._attr_keys(s)[0])
        parts.append(attr)
        name = safe_name("_".join(parts))
        if self.lowercase_names:
            name = name.lower()
        if self.infer_counters and name.endswith("_total"):
            mtype = MetricType.COUNTER
        labels = {}
        for k, v in s.props[1:]:
            ln = safe_name(k)
            labels[ln.lower() if self.lowercase_labels else ln] = v
        for k, v in extra_labels:
            ln = safe_name(k)
            labels[ln.lower() if self.lowercase_labels else ln] = v
        return MatchedSample(strip_reserved_suffixes(name), tuple(sorted(labels.items())), value, mtype,
                             self._default_help(s), object_name)

    def _customized(self, samples: list[Sample]) -> Iterable[tuple[Sample, tuple[tuple[str, str], ...]]]:
        """Each sample with the labels metricCustomizers give its bean, and the extra metrics the
        customizers add to their beans (before the bean's own attributes, as jmx_exporter does)."""
        beans: dict[tuple[Any, ...], list[Sample]] = {}
        for s in samples:
            base = s.bean_props
            beans.setdefault((s.domain, base), []).append(s)
        for (domain, base), members in beans.items():
            customizer = next((c for c in self.customizers if c.applies(domain, base)), None)
            if customizer is None:
                for s in members:
                    yield s, ()
                continue
            values = {s.attr: s.value for s in members if not s.path and s.key_props < 0}
            extra = tuple(sorted((a, java_value_string(values[a])) for a in customizer.attributes_as_labels
                                 if a in values and values[a] is not NO_VALUE))
            ts = members[0].timestamp_ms
            for name, value in customizer.extra_metrics:
                yield Sample(domain, base, (), name, value, ts), extra
            for s in members:
                yield s, extra

    def apply(self, samples: Iterable[Sample], cache: RuleCache | None = None) -> list[MatchedSample]:
        """The matched samples of one collection. With a target's own cache, what the collection
        did not see (a deleted topic's beans) leaves the cache."""
        cache = self._cache if cache is None else cache
        out = []
        pairs: Iterable[Any] = (self._customized(list(samples)) if self.customizers else ((s, ()) for s in samples))
        for s, extra in pairs:
            if s.value is NO_VALUE:        # a null attribute: jmx_exporter skips it
                continue
            if self._filters and not self.exported(s):
                continue
            if s.domain in _SKIP_DOMAINS and _skipped(s):
                continue
            m = self.match(s, cache, extra)
            if m is not None:
                if m.type is MetricType.COUNTER and m.value < 0:
                    raise RuleError(f"counter {m.name} of {m.object_name} is negative ({m.value}): "
                                    "jmx_exporter fails the scrape; type the rule GAUGE or fix its value")
                out.append(m)
        cache.end_collection()
        return out


_SKIP_DOMAINS = {"java.lang", "jdk.management.jfr"}


def _skipped(s: Sample) -> bool:
    name = s.domain + ":" + ",".join(f"{k}={v}" for k, v in s.bean_props)
    return name in SKIPPED_BEANS or s.attr.lower() in SKIPPED_ATTRIBUTES.get(name, ())


class _Miss(Enum):
    """A rule that did not match (None means matched and nothing exported)."""
    MISS = 0


_MISS = _Miss.MISS


class RuleCache:
    """Cached matches of one target's attributes. Evicting: `old` from the last collection is read,
    what this collection uses is copied to `new`, and `new` replaces `old` at the end of it."""

    def __init__(self, evicting: bool = True) -> None:
        self.old: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.new: dict[tuple[Any, ...], tuple[Any, ...]] = {} if evicting else self.old
        self.evicting = evicting

    def end_collection(self) -> None:
        if self.evicting:
            self.old, self.new = self.new, {}
