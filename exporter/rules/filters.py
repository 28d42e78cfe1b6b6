"""Which attributes reach the rules: includeObjectNames/excludeObjectNames, the attribute filters,
and what jmx_exporter's scraper never reads."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from exporter.sample import Sample
from kafka_common.names import ObjectNamePattern

# attributes jmx_exporter's scraper never reads (expensive, and strings anyway)
SKIPPED_ATTRIBUTES = {"java.lang:type=Runtime": {"systemproperties", "classpath", "bootclasspath", "librarypath"}}
SKIPPED_BEANS = {"jdk.management.jfr:type=FlightRecorder"}
_SKIP_DOMAINS = {"java.lang", "jdk.management.jfr"}


def never_read(s: Sample) -> bool:
    """An attribute jmx_exporter's scraper never reads (expensive, and strings anyway)."""
    if s.domain not in _SKIP_DOMAINS:
        return False
    name = s.domain + ":" + ",".join(f"{k}={v}" for k, v in s.bean_props)
    return name in SKIPPED_BEANS or s.attr.lower() in SKIPPED_ATTRIBUTES.get(name, ())


class _Name(NamedTuple):
    domain: str
    props: tuple[tuple[str, str], ...]


class BeanFilter:
    """includeObjectNames/excludeObjectNames and include/excludeObjectNameAttributes, remembered per attribute."""

    def __init__(self, includes: Sequence[str] = (), excludes: Sequence[str] = (),
                 include_attributes: Sequence[tuple[str, set[str]]] = (),
                 exclude_attributes: Sequence[tuple[str, set[str]]] = ()) -> None:
        self.includes = list(includes)
        self.excludes = list(excludes)
        self.include_attributes = [(ObjectNamePattern(p), attrs) for p, attrs in include_attributes]
        self.exclude_attributes = [(ObjectNamePattern(p), attrs) for p, attrs in exclude_attributes]
        self._include_patterns = [ObjectNamePattern(p) for p in self.includes]
        self._exclude_patterns = [ObjectNamePattern(p) for p in self.excludes]
        self.active = bool(self.includes or self.excludes or self.include_attributes or self.exclude_attributes)
        self._beans: dict[tuple[Any, ...], bool] = {}          # (domain, props, attribute) -> exported

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

    def describe(self) -> list[str]:
        """What the filters ask, for `rules test`."""
        out = []
        if self.includes:
            out.append(f"only MBeans matching: {', '.join(self.includes)}")
        if self.excludes:
            out.append(f"never MBeans matching: {', '.join(self.excludes)}")
        for label, entries in (("only attributes", self.include_attributes), ("never attributes", self.exclude_attributes)):
            for pattern, attrs in entries:
                out.append(f"{label} {', '.join(sorted(attrs))} of {pattern.text}")
        return out

