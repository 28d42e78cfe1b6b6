"""jmx_exporter's rules, with its semantics: match string, first match wins, $n templates, names.

For every attribute the match string is

    domain<k1=v1, k2=v2><compositeKey1, compositeKey2>attrName: value

with the key properties in registration order. A rule's pattern is a Java regex matched
unanchored (as "^.*(?:PATTERN).*$"); the first rule that matches decides: its name, labels and
help are the templates expanded with the groups ($1, ${name}); no name means jmx_exporter's
default name. Numbers are multiplied by valueFactor, booleans become 1/0, anything else is
dropped unless the rule's `value` turns it into a number. Names have every run of characters
outside [a-zA-Z0-9:_] replaced by one "_". Labels are sorted by name. With `cache: true` a rule
is matched once per attribute against the value "<cache>" (so it must not look at the value).

    rules = RuleSet.from_yaml(open("kafka.yml").read(), "kafka.yml")
    for m in rules.apply(samples): ...      # MatchedSample(name, labels, value, type, help)
"""
from __future__ import annotations

import math
import re
from sys import intern
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable, NamedTuple

from broker.mbeans.names import ObjectNamePattern
from exporter.sample import Sample, shared_pair
from exporter.yamlconf import Doc

_UNSAFE = re.compile(r"[^a-zA-Z0-9:_]")
_UNDERSCORES = re.compile(r"__+")
_SNAKE = re.compile(r"([a-z0-9])([A-Z])")


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


def java_value_string(value: Any) -> str:
    """String.valueOf(value) as Java prints it (the value part of the match string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    return str(value)


def java_double(x: float) -> str:
    """Double.toString: plain decimal in [1e-3, 1e7), else computerized scientific notation."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        return repr(x)           # Python writes this range in plain decimal, shortest digits
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{exponent + len(text) - 1}"


# -- Java regex -> Python re ---------------------------------------------------------------------------
_POSIX = {"Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
          "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "Blank": " \\t",
          "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r",
          "javaLowerCase": "a-z", "javaUpperCase": "A-Z", "IsAlphabetic": "a-zA-Z", "IsDigit": "0-9"}


class RegexError(ValueError):
    pass


def translate_java_regex(pattern: str) -> str:
    """Java regex syntax Python's re lacks: \\Q..\\E, (?<name>..), \\p{Posix}; possessive
    quantifiers and atomic groups are native in Python 3.11. Unsupported constructs raise."""
    out: list[str] = []
    i, n = 0, len(pattern)
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


RULE_KEYS = {"pattern", "name", "value", "valueFactor", "labels", "help", "type", "attrNameSnakeCase", "cache"}
TOP_KEYS = {"rules", "lowercaseOutputName", "lowercaseOutputLabelNames", "includeObjectNames",
            "excludeObjectNames", "whitelistObjectNames", "blacklistObjectNames",
            # connection, HTTP and agent settings of jmx_exporter: accepted (real configs carry them);
            # the exporter's own config file decides those
            "startDelaySeconds", "scrapeTimeoutSeconds", "hostPort", "jmxUrl", "username", "password", "ssl",
            "inferCounterTypeFromName", "excludeJvmMetrics", "includeObjectNameAttributes",
            "excludeObjectNameAttributes", "autoExcludeObjectNameAttributes", "metricCustomizers", "httpServer",
            "openTelemetry"}
TYPES = {"GAUGE": MetricType.GAUGE, "COUNTER": MetricType.COUNTER, "UNTYPED": MetricType.UNTYPED,
         "UNKNOWN": MetricType.UNTYPED}


class RuleSet:
    def __init__(self, rules: list[Rule], lowercase_names: bool = False, lowercase_labels: bool = False,
                 includes: list[str] = (), excludes: list[str] = (), source: str = "<rules>") -> None:
        self.rules = rules
        self.lowercase_names = lowercase_names
        self.lowercase_labels = lowercase_labels
        self.includes = list(includes)
        self.excludes = list(excludes)
        self.source = source
        self._cache = RuleCache(evicting=False)       # for calls without a target's own cache

    # -- loading --------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> "RuleSet":
        doc = Doc(text, source)
        data = doc.data if isinstance(doc.data, dict) else {}
        if not isinstance(doc.data, dict):
            doc.fail((), "expected a mapping with 'rules'")
        for key in data:
            if key not in TOP_KEYS:
                doc.fail((key,), f"unknown jmx_exporter setting {key!r}")
        for key in ("lowercaseOutputName", "lowercaseOutputLabelNames"):
            if key in data and not isinstance(data[key], bool):
                doc.fail((key,), f"expected true or false, got {data[key]!r}")
        includes = cls._patterns(doc, data, "includeObjectNames") + cls._patterns(doc, data, "whitelistObjectNames")
        excludes = cls._patterns(doc, data, "excludeObjectNames") + cls._patterns(doc, data, "blacklistObjectNames")
        rules: list[Rule] = []
        raw = data.get("rules")
        if raw is None:
            rules.append(Rule(0))      # jmx_exporter's single default rule
        elif not isinstance(raw, list):
            doc.fail(("rules",), "expected a list of rules")
        else:
            for i, r in enumerate(raw):
                rule = cls._rule(doc, i, r)
                if rule is not None:
                    rules.append(rule)
        doc.check()
        return cls(rules, bool(data.get("lowercaseOutputName", False)), bool(data.get("lowercaseOutputLabelNames", False)),
                   includes, excludes, source)

    @staticmethod
    def _patterns(doc: Doc, data: dict, key: str) -> list[str]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            doc.fail((key,), "expected a list of ObjectName patterns")
            return []
        for i, v in enumerate(value):
            try:
                ObjectNamePattern(v)
            except ValueError as e:
                doc.fail((key, i), str(e))
        return value

    @staticmethod
    def _rule(doc: Doc, i: int, r: Any) -> Rule | None:
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
                rule.pattern = re.compile(r"^.*(?:" + translate_java_regex(text) + r").*$", re.DOTALL)
                rule.pattern_text = text
            except (RegexError, re.error) as e:
                doc.fail(path + ("pattern",), f"rule {i}: cannot use pattern {text!r}: {e}")
        rule.name = None if r.get("name") is None else str(r["name"])
        if "labels" in r:
            labels = r["labels"]
            if not isinstance(labels, dict):
                doc.fail(path + ("labels",), "expected a mapping of label name to value")
            else:
                rule.labels = [(str(k), "" if v is None else str(v)) for k, v in labels.items()]
        if "help" in r:
            rule.help = str(r["help"])
        if "value" in r and r["value"] is not None:
            rule.value = str(r["value"])
        if "valueFactor" in r:
            try:
                rule.value_factor = float(r["valueFactor"])
            except (TypeError, ValueError):
                doc.fail(path + ("valueFactor",), f"expected a number, got {r['valueFactor']!r}")
        if "type" in r:
            t = str(r["type"]).upper()
            if t not in TYPES:
                doc.fail(path + ("type",), f"unknown type {r['type']!r} (use GAUGE, COUNTER or UNTYPED)")
            else:
                rule.type = TYPES[t]
        for key, attr in (("attrNameSnakeCase", "attr_snake_case"), ("cache", "cache")):
            if key in r:
                if not isinstance(r[key], bool):
                    doc.fail(path + (key,), f"expected true or false, got {r[key]!r}")
                else:
                    setattr(rule, attr, r[key])
        if (rule.labels or rule.help is not None) and rule.name is None:
            doc.fail(path, f"rule {i}: 'labels' or 'help' given without 'name' (jmx_exporter requires a name)")
        if rule.name is not None and rule.pattern is None and "pattern" not in r:
            doc.fail(path, f"rule {i}: 'name' given without 'pattern'")
        if rule.pattern is not None:
            for template in [rule.name or "", rule.help or "", rule.value or "", *(x for kv in rule.labels for x in kv)]:
                for num in re.findall(r"(?<!\\)\$(\d)", template):
                    if int(num) > rule.pattern.groups:
                        doc.fail(path, f"rule {i}: ${num} used but the pattern has {rule.pattern.groups} groups")
                        break
        return rule

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

    def match(self, s: Sample, cache: RuleCache | None = None) -> MatchedSample | None:
        cache = self._cache if cache is None else cache
        key = s.key()
        entry = cache.old.get(key)
        if entry is None:
            return self._evaluate(s, key, cache)
        cache.new[key] = entry
        retry, index, name, labels, help_, object_name = entry
        if retry:
            strings = self._strings(s)
            for i in retry:     # rules that look at the value missed last time; this value may match
                outcome = self._try(i, s, *strings)
                if outcome is not _MISS:
                    return outcome[0] if outcome is not None else None
        if index < 0:
            return None
        rule = self.rules[index]
        value = self._value(rule, None, s.value)
        if value is None:
            return None
        if rule.help is None:       # the default help names the bean: made again rather than kept per series
            help_ = f"{object_name} {s.attr}"
        return MatchedSample(name, labels, value, rule.type, help_, object_name)

    def _strings(self, s: Sample) -> tuple[str, str, str]:
        attr_name = self._attr_keys(s)[1]
        return self._bean(s), attr_name, _SNAKE.sub(r"\1_\2", attr_name).lower()

    def _evaluate(self, s: Sample, key: tuple, cache: RuleCache) -> MatchedSample | None:
        """First match wins. As jmx_exporter remembers each cached rule's answer per attribute, the
        cache keeps which value-reading rules must be tried again and the cached rule that matched."""
        strings = self._strings(s)
        retry = []
        for i, rule in enumerate(self.rules):
            outcome = self._try(i, s, *strings)
            if outcome is _MISS:
                if not rule.cache:
                    retry.append(i)
                continue
            if outcome is None:
                return None
            sample, cacheable = outcome
            if rule.cache and cacheable:
                # ints and strings only: the garbage collector stops tracking such tuples
                cache.new[key] = (tuple(retry), i, sample.name, sample.labels,
                                  "" if rule.help is None else sample.help, sample.object_name)
            return sample
        cache.new[key] = (tuple(retry), -1, "", (), "", "")
        return None

    def _try(self, index: int, s: Sample, bean: str, attr_name: str, snake: str) -> Any:
        """_MISS; None (matched, nothing exported); or (sample, whether a cache entry may keep it)."""
        rule = self.rules[index]
        m = None
        if rule.pattern is not None:
            match_name = bean + (snake if rule.attr_snake_case else attr_name)
            m = rule.pattern.match(match_name + ": " + ("<cache>" if rule.cache else java_value_string(s.value)))
            if m is None:
                return _MISS
        value = self._value(rule, m, s.value)
        if value is None:
            return None
        if rule.name is None:
            return self._default(s, snake if rule.attr_snake_case else attr_name, value), False
        name = safe_name(expand(rule.name, m))  # type: ignore[arg-type]
        if not name:
            return None
        # interned: the cache holds these for every series, and most repeat across series
        name = intern(name.lower() if self.lowercase_names else name)
        object_name = intern(s.object_name)
        help_ = intern(expand(rule.help, m)) if rule.help is not None else f"{object_name} {s.attr}"  # type: ignore[arg-type]
        labels = {}
        for lname, lvalue in rule.labels:
            ln = safe_name(expand(lname, m))  # type: ignore[arg-type]
            lv = expand(lvalue, m)  # type: ignore[arg-type]
            if self.lowercase_labels:
                ln = ln.lower()
            if ln and lv:
                labels[ln] = lv
        sorted_labels = tuple(shared_pair(k, v) for k, v in sorted(labels.items()))
        return MatchedSample(name, sorted_labels, value, rule.type, help_, object_name), True

    def _value(self, rule: Rule, m: re.Match[str] | None, raw: Any) -> float | None:
        if rule.value:
            try:
                raw = float(expand(rule.value, m)) if m is not None else float(rule.value)
            except ValueError:
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

    def _default(self, s: Sample, attr: str, value: float) -> MatchedSample:
        parts = [s.domain]
        if s.props:
            parts.append(s.props[0][1])
        parts.extend(self._attr_keys(s)[0])
        parts.append(attr)
        name = safe_name("_".join(parts))
        if self.lowercase_names:
            name = name.lower()
        labels = {}
        for k, v in s.props[1:]:
            ln = safe_name(k)
            labels[ln.lower() if self.lowercase_labels else ln] = v
        return MatchedSample(name, tuple(sorted(labels.items())), value, MetricType.UNTYPED,
                             f"{s.object_name} {s.attr}", s.object_name)

    def apply(self, samples: Iterable[Sample], cache: RuleCache | None = None) -> list[MatchedSample]:
        """The matched samples of one collection. With a target's own cache, what the collection
        did not see (a deleted topic's beans) leaves the cache."""
        cache = self._cache if cache is None else cache
        out = []
        for s in samples:
            m = self.match(s, cache)
            if m is not None:
                out.append(m)
        cache.end_collection()
        return out


_MISS = object()


class RuleCache:
    """Cached matches of one target's attributes. Evicting: `old` from the last collection is read,
    what this collection uses is copied to `new`, and `new` replaces `old` at the end of it."""

    def __init__(self, evicting: bool = True) -> None:
        self.old: dict[tuple, tuple] = {}
        self.new: dict[tuple, tuple] = {} if evicting else self.old
        self.evicting = evicting

    def end_collection(self) -> None:
        if self.evicting:
            self.old, self.new = self.new, {}
