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
from exporter.rules.cache import RuleCache
from exporter.rules.config import MetricCustomizer, Rule, RulesConfig, load_rules
from exporter.rules.java_regex import RegexError, expand, java_double_of, translate_java_regex
from exporter.rules.matcher import RuleSet
from exporter.rules.model import MatchedSample, MetricType, RuleError
from exporter.rules.names import safe_name, snake_case, strip_reserved_suffixes

__all__ = ["MatchedSample", "MetricCustomizer", "MetricType", "RegexError", "Rule", "RuleCache", "RuleError",
           "RuleSet", "RulesConfig", "expand", "java_double_of", "load_rules", "safe_name", "snake_case",
           "strip_reserved_suffixes", "translate_java_regex"]
