"""The rules applied: jmx_exporter's collector (first match wins, the cached answers, the default export)."""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from enum import Enum
from sys import intern
from typing import Any, NamedTuple

from exporter.rules.cache import UNMATCHED, CacheEntry, Key, RuleCache
from exporter.rules.config import MetricCustomizer, Rule, load_rules
from exporter.rules.filters import BeanFilter, never_read
from exporter.rules.java_regex import expand, java_double_of
from exporter.rules.model import MatchedSample, MetricType, RuleError
from exporter.rules.names import safe_name, snake_case, strip_reserved_suffixes
from exporter.sample import NO_VALUE, Sample, java_value_string, shared_pair


class RuleSet:
    """Rules applied as jmx_exporter's collector applies them: filters, then per attribute the first rule
    that matches (remembered in a RuleCache), then the sample it makes."""

    def __init__(self, rules: list[Rule], lowercase_names: bool = False, lowercase_labels: bool = False,
                 includes: Sequence[str] = (), excludes: Sequence[str] = (), source: str = "<rules>",
                 infer_counters: bool = False, include_attributes: Sequence[tuple[str, set[str]]] = (),
                 exclude_attributes: Sequence[tuple[str, set[str]]] = (),
                 customizers: Sequence[MetricCustomizer] = (), warnings: Sequence[str] = ()) -> None:
        self.rules = rules
        self.lowercase_names = lowercase_names
        self.lowercase_labels = lowercase_labels
        self.source = source
        self.infer_counters = infer_counters
        self.filter = BeanFilter(includes, excludes, include_attributes, exclude_attributes)
        self.customizers = list(customizers)
        self.warnings = list(warnings)
        self._cache = RuleCache(evicting=False)       # for calls without a target's own cache
        # what a first evaluation learned per attribute, shared by every target: brokers have the same
        # RequestMetrics, BrokerTopicMetrics... beans, so only the first target pays for the regexes
        self._learned: dict[Key, CacheEntry] = {}
        self._snake = any(r.attr_snake_case for r in rules)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> RuleSet:
        c = load_rules(text, source)
        return cls(c.rules, c.lowercase_names, c.lowercase_labels, c.includes, c.excludes, c.source, c.infer_counters,
                   c.include_attributes, c.exclude_attributes, c.customizers, c.warnings)

    def describe(self) -> list[str]:
        """What the rules file asks beyond its rules, for `rules test`."""
        return self.filter.describe()

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
        return MatchedSample(name, labels, value, mtype, help_, object_name, index)

    def _strings(self, s: Sample) -> tuple[str, str, str]:
        attr_name = self._attr_keys(s)[1]
        return self._bean(s), attr_name, snake_case(attr_name) if self._snake else attr_name

    def _evaluate(self, s: Sample, key: Key, cache: RuleCache,
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
                cache.new[key] = self._learn(key, CacheEntry(tuple(retry), i, sample.name, sample.labels,
                                                             "" if rule.help is None else sample.help,
                                                             sample.object_name, sample.type))
            return sample
        cache.new[key] = self._learn(key, UNMATCHED._replace(retry=tuple(retry)) if retry else UNMATCHED)
        return None

    def _learn(self, key: Key, entry: CacheEntry) -> CacheEntry:
        if len(self._learned) > 1_000_000:          # bounded for clusters whose topics keep changing
            self._learned.clear()
        self._learned[key] = entry
        return entry

    def _try(self, index: int, s: Sample, bean: str, attr_name: str, snake: str,
             extra_labels: tuple[tuple[str, str], ...] = ()) -> tuple[MatchedSample, bool] | _Miss | None:
        """_MISS; None (matched, nothing exported); or (sample, whether a cache entry may keep it)."""
        rule = self.rules[index]
        attribute = snake if rule.attr_snake_case else attr_name
        match_string = _match_string(rule, bean, attribute, s)
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
            return self._default(s, attribute, value, rule.type, object_name, extra_labels, index), False
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
        return MatchedSample(name, sorted_labels, value, mtype, help_, object_name, index), True

    def trace(self, s: Sample) -> list[Verdict]:
        """Each rule's verdict on one attribute, in order, up to the rule that decides (first match wins),
        as `kafka-jmx rules explain` prints them. No cache is read or written."""
        bean, attr_name, snake = self._strings(s)
        out = []
        for i, rule in enumerate(self.rules):
            match_string = _match_string(rule, bean, snake if rule.attr_snake_case else attr_name, s)
            outcome = self._try(i, s, bean, attr_name, snake)
            if outcome is _MISS:
                out.append(Verdict(i, rule, match_string, None, "its pattern does not match"))
                continue
            if outcome is None:
                value = self._value(rule, rule.pattern.match(match_string) if rule.pattern else None, s.value)
                why = (f"it matches, but the value {java_value_string(s.value)!r} is not a number"
                       + (f" (value: {rule.value!r})" if rule.value else "")) if value is None \
                    else "it matches, and its name is empty once expanded: nothing is exported"
                out.append(Verdict(i, rule, match_string, None, why))
            else:
                out.append(Verdict(i, rule, match_string, outcome[0], "it matches first: it decides"))
            break
        return out

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
                 extra_labels: tuple[tuple[str, str], ...], index: int) -> MatchedSample:
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
                             self._default_help(s), object_name, index)

    def customized(self, samples: list[Sample]) -> Iterable[tuple[Sample, tuple[tuple[str, str], ...]]]:
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

    def left_out(self, s: Sample) -> bool:
        """An attribute no rule sees: a null (jmx_exporter skips it), filtered out by the rules file, or one
        jmx_exporter's scraper never reads."""
        return s.value is NO_VALUE or (self.filter.active and not self.filter.exported(s)) or never_read(s)

    def apply(self, samples: Iterable[Sample], cache: RuleCache | None = None) -> list[MatchedSample]:
        """The matched samples of one collection. With a target's own cache, what the collection
        did not see (a deleted topic's beans) leaves the cache."""
        cache = self._cache if cache is None else cache
        out = []
        pairs: Iterable[Any] = (self.customized(list(samples)) if self.customizers else ((s, ()) for s in samples))
        for s, extra in pairs:
            if self.left_out(s):
                continue
            m = self.match(s, cache, extra)
            if m is not None:
                if m.type is MetricType.COUNTER and m.value < 0:
                    raise RuleError(f"counter {m.name} of {m.object_name} is negative ({m.value}): "
                                    "jmx_exporter fails the scrape; type the rule GAUGE or fix its value")
                out.append(m)
        cache.end_collection()
        return out


def _match_string(rule: Rule, bean: str, attribute: str, s: Sample) -> str:
    """What a rule's pattern is matched against: a cached rule sees "<cache>" instead of the value."""
    return bean + attribute + ": " + ("<cache>" if rule.cache else java_value_string(s.value))


class Verdict(NamedTuple):
    """One rule's answer for one attribute (RuleSet.trace)."""

    position: int                        # the rule's index in the file's rules
    rule: Rule
    match_string: str
    sample: MatchedSample | None         # what it made, when it made something
    why: str


class _Miss(Enum):
    """A rule that did not match (None means matched and nothing exported)."""
    MISS = 0


_MISS = _Miss.MISS
