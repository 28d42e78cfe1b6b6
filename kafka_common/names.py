"""JMX ObjectNames as Kafka builds them, and JMX ObjectName patterns.

Key properties keep registration order (what jmx_exporter's match string shows); equality and
lookup use the canonical (sorted) form, as JMX does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

# Kafka's Sanitizer.jmxSanitize: values made of these characters are used as they are.
_PLAIN_VALUE = re.compile(r"[\w\-%\. \t]*")


def jmx_quote(value: str) -> str:
    """javax.management.ObjectName.quote."""
    out = ['"']
    for ch in value:
        if ch in '\\"*?':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jmx_sanitize(value: str) -> str:
    return value if _PLAIN_VALUE.fullmatch(value) else jmx_quote(value)


class NameParts(Protocol):
    """What a pattern reads of a name: a light stand-in for ObjectName on hot paths."""

    @property
    def domain(self) -> str: ...

    @property
    def props(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True)
class ObjectName:
    domain: str
    props: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, domain: str, **props: str) -> ObjectName:
        return cls(domain, tuple((k, jmx_sanitize(str(v))) for k, v in props.items() if str(v) != ""))

    @classmethod
    def kafka(cls, domain: str, type_: str, name: str | None = None,
              tags: dict[str, str] | None = None) -> ObjectName:
        """KafkaMetricsGroup.explicitMetricName: type, then name, then the tags in order."""
        props: list[tuple[str, str]] = [("type", type_)]
        if name is not None:
            props.append(("name", name))
        for k, v in (tags or {}).items():
            if str(v) != "":
                props.append((k, jmx_sanitize(str(v))))
        return cls(domain, tuple(props))

    @classmethod
    def parse(cls, text: str) -> ObjectName:
        domain, sep, rest = text.partition(":")
        if not sep or not rest:
            raise ValueError(f"not an ObjectName: {text!r} (expected domain:key=value,...)")
        return cls(domain, tuple(_split_props(rest, text)))

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        return self.domain + ":" + ",".join(f"{k}={v}" for k, v in self.props)

    @cached_property
    def canonical(self) -> str:
        return self.domain + ":" + ",".join(f"{k}={v}" for k, v in sorted(self.props))

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.props:
            if k == key:
                return v
        return default


def _split_props(rest: str, text: str) -> list[tuple[str, str]]:
    props: list[tuple[str, str]] = []
    i, n = 0, len(rest)
    while i < n:
        eq = rest.find("=", i)
        if eq < 0:
            raise ValueError(f"not an ObjectName: {text!r} (property without '=' at {rest[i:]!r})")
        key = rest[i:eq]
        j = eq + 1
        if j < n and rest[j] == '"':
            j += 1
            while j < n and rest[j] != '"':
                j += 2 if rest[j] == "\\" else 1
            j += 1
        end = rest.find(",", j)
        end = n if end < 0 else end
        props.append((key, rest[eq + 1:end]))
        i = end + 1
    return props


def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text))


class ObjectNamePattern:
    """A JMX ObjectName pattern: wildcards * and ? in the domain and in values; ',*' for more keys."""

    def __init__(self, text: str) -> None:
        self.text = text
        domain, sep, rest = text.partition(":")
        if not sep:
            raise ValueError(f"not an ObjectName pattern: {text!r} (expected domain:key=value,... or domain:*)")
        self._domain = _wildcard(domain)
        self._open = rest == "*" or rest.endswith(",*")
        props = rest[:-2] if rest.endswith(",*") else "" if rest == "*" else rest
        if not props and not self._open:
            raise ValueError(f"not an ObjectName pattern: {text!r} (no key properties; use {domain}:* for all)")
        self._props = [(k, _wildcard(v)) for k, v in (_split_props(props, text) if props else [])]

    def matches(self, name: ObjectName | NameParts) -> bool:
        if not self._domain.fullmatch(name.domain):
            return False
        own = dict(name.props)
        for key, value in self._props:
            if key not in own or not value.fullmatch(own[key]):
                return False
        return self._open or len(own) == len(self._props)

    def __repr__(self) -> str:
        return f"ObjectNamePattern({self.text!r})"
