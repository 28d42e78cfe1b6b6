"""Which rule made a Prometheus series, or what the rules make of an MBean, and why the earlier rules did not
decide: the text `kafka-jmx rules explain` prints."""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from exporter.rules.cache import RuleCache
from exporter.rules.filters import never_read
from exporter.rules.matcher import RuleSet, Verdict
from exporter.rules.model import MatchedSample
from exporter.sample import NO_VALUE, Sample
from kafka_common.names import ObjectName, ObjectNamePattern

Nodes = Mapping[str, Sequence[Sample]]
"""Each node's samples (a dump's nodes, read)."""


def explain(rules: RuleSet, what: str, nodes: Nodes) -> tuple[bool, list[str]]:
    """(found, lines) for a Prometheus name or an ObjectName (pattern)."""
    if ":" in what:
        return _explain_bean(rules, ObjectNamePattern(what), nodes)
    return _explain_name(rules, what, nodes)


def _explain_name(rules: RuleSet, name: str, nodes: Nodes) -> tuple[bool, list[str]]:
    made: list[tuple[str, Sample, MatchedSample]] = []
    names: set[str] = set()
    for node, samples in nodes.items():
        for m, s in _matched(rules, samples):
            names.add(m.name)
            if m.name == name or m.name == name.removesuffix("_total"):
                made.append((node, s, m))
    if not made:
        close = difflib.get_close_matches(name, sorted(names), n=5, cutoff=0.6)
        hint = f" (close: {', '.join(close)})" if close else ""
        return False, [f"no series named {name} from these MBeans{hint}"]
    on = sorted({node for node, _, _ in made})
    lines = [f"{name}: {len(made)} series on {len(on)} node(s) ({', '.join(on[:6])}{', ...' if len(on) > 6 else ''})"]
    rule_ids = sorted({m.rule for _, _, m in made})
    for rule_id in rule_ids:
        node, s, m = next(x for x in made if x[2].rule == rule_id)
        count = sum(1 for x in made if x[2].rule == rule_id)
        lines += ["", f"{count} of them like this one, on {node}:"]
        lines += _series(m)
        lines += _trace(rules, s)
    return True, lines


def _explain_bean(rules: RuleSet, pattern: ObjectNamePattern, nodes: Nodes) -> tuple[bool, list[str]]:
    for node, samples in nodes.items():
        chosen = [s for s in samples if pattern.matches(ObjectName(s.domain, s.bean_props))]
        if not chosen:
            continue
        lines = [f"{pattern.text} on {node}: {len(chosen)} attribute value(s)"]
        for s in chosen[:50]:
            lines += ["", f"{_bean_text(s)} {_attribute_text(s)} = {s.value!r}"]
            if s.value is NO_VALUE:
                lines.append("  null: skipped, as jmx_exporter skips a null attribute")
            elif rules.filter.active and not rules.filter.exported(s):
                lines.append("  left out by the rules file's includeObjectNames/excludeObjectNames or attribute filters")
            elif never_read(s):
                lines.append("  never read: jmx_exporter's scraper skips this attribute")
            else:
                lines += _trace(rules, s)
        if len(chosen) > 50:
            lines.append(f"... and {len(chosen) - 50} more")
        return True, lines
    return False, [f"no MBean matches {pattern.text} on any node"]


def _matched(rules: RuleSet, samples: Sequence[Sample]) -> list[tuple[MatchedSample, Sample]]:
    """Each series with the attribute it came from, as RuleSet.apply makes them (without its cache)."""
    cache = RuleCache(evicting=False)
    out = []
    for s, extra in rules.customized(list(samples)):
        if rules.left_out(s):
            continue
        m = rules.match(s, cache, extra)
        if m is not None:
            out.append((m, s))
    return out


def _series(m: MatchedSample) -> list[str]:
    labels = ",".join(f'{k}="{v}"' for k, v in m.labels)
    return [f"  {m.name}{{{labels}}} {m.value!r}  ({m.type.value})", f"  HELP {m.help}"]


def _trace(rules: RuleSet, s: Sample) -> list[str]:
    verdicts = rules.trace(s)
    if not verdicts:
        return ["  the rules file has no rules"]
    lines: list[str] = []
    shown = None
    for v in verdicts:
        if v.match_string != shown:      # a cached rule sees "<cache>" for the value, the others the value
            lines.append(f"  match string: {v.match_string}")
            shown = v.match_string
        lines.append(f"  rule {v.position} ({_where(rules, v)}): {v.why}")
        lines += _rule_text(v)
    last = verdicts[-1].sample
    if last is not None:
        lines.append(f"  makes: {_series(last)[0].strip()}")
    elif verdicts[-1].why == "its pattern does not match":
        lines.append("  no rule matches: the attribute is not exported")
    return lines


def _where(rules: RuleSet, v: Verdict) -> str:
    return f"{rules.source} line {v.rule.line}" if v.rule.line else f"{rules.source}, jmx_exporter's default rule"


def _rule_text(v: Verdict) -> list[str]:
    r = v.rule
    out = [f"      pattern: {r.pattern_text}" if r.pattern_text else "      pattern: (none: every attribute)"]
    if v.sample is not None:
        out.append(f"      name: {r.name}" if r.name else "      name: (none: jmx_exporter's default name)")
        out += [f"      labels: {dict(r.labels)}"] if r.labels else []
        out += [f"      type: {r.type.value.upper()}", f"      cache: {str(r.cache).lower()}"]
    return out


def _bean_text(s: Sample) -> str:
    return f"{s.domain}:{','.join(f'{k}={v}' for k, v in s.bean_props)}"


def _attribute_text(s: Sample) -> str:
    return ".".join((s.attr, *s.path))
