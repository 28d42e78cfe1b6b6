"""What every source yields, so the rules engine cannot tell sources apart."""
from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import Any, NamedTuple

Value = int | float | bool | str
NO_VALUE = float("nan")
"""A null attribute: this very NaN object, so that code that only wants numbers sees a NaN, while
the rules (which look for this object) skip it as jmx_exporter skips a null. Jolokia's JSON
writes Java's NaN as null too: its source reads null as NO_VALUE unless told to read it as NaN."""


class Sample(NamedTuple):
    """One attribute value of one MBean (a CompositeData leaf has its keys in `path`).

    Sample("kafka.server", (("type", "ReplicaManager"), ("name", "LeaderCount")), (), "Value", 3, 1764...)
    """

    domain: str
    props: tuple[tuple[str, str], ...]     # key properties in registration order
    path: tuple[str, ...]                  # CompositeData keys walked, e.g. ("used",) for HeapMemoryUsage
    attr: str
    value: Value
    timestamp_ms: float
    key_props: int = -1                    # props[:key_props] are the ObjectName's, the rest TabularData
                                           # index labels; -1: all are the ObjectName's

    @property
    def object_name(self) -> str:
        return self.domain + ":" + ",".join(f"{k}={v}" for k, v in self.props)

    @property
    def bean_props(self) -> tuple[tuple[str, str], ...]:
        """The ObjectName's own key properties (without TabularData index labels)."""
        return self.props if self.key_props < 0 else self.props[:self.key_props]

    def key(self) -> tuple[Any, ...]:
        """Everything but the value and the time: what identifies a series."""
        return self.domain, self.props, self.path, self.attr


class Threads(NamedTuple):
    """A JVM's threads by state (Thread.State names; UNKNOWN: ended while being counted) and its
    deadlocked threads, which ThreadMXBean tells through operations, not attributes."""

    states: dict[str, int]
    deadlocked: int
    deadlocked_monitor: int


class Collection(NamedTuple):
    """One read of one target: the samples, and attributes skipped by reason (counted, not fatal);
    the threads when the source was asked for them and the target is a JVM."""

    samples: list[Sample]
    skipped: dict[str, int]
    threads: Threads | None = None


class SourceError(Exception):
    """A target could not be read. `kind` is short and stable (a metric label): connect, auth,
    timeout, protocol, http, config."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}


def shared_pair(key: str, value: str) -> tuple[str, str]:
    """One shared (key, value) tuple of interned strings: 100k beans and series repeat a few
    thousand of them (type=Log, topic=orders). Bounded for clusters whose topics keep changing."""
    if len(_PAIRS) > 200_000:
        _PAIRS.clear()
    pair = (sys.intern(key), sys.intern(value))
    return _PAIRS.setdefault(pair, pair)


TABULAR = "@tabular"
"""A TabularData value in the JSON shape the sources and dumps share:
{"@tabular": {"index": [index column, ...], "rows": [{column: value, ...}, ...]}}; a JSON object
without that key is CompositeData; a list is an array (which jmx_exporter does not export)."""


def flatten(out: list[Sample], skipped: dict[str, int], domain: str, props: tuple[tuple[str, str], ...],
            attr: str, value: object, ts: float, null: float = NO_VALUE) -> None:
    """One attribute's value as jmx_exporter's scraper walks it (JmxScraper.processBeanValue):
    CompositeData keys extend the path; a TabularData row adds its index columns as labels (a
    CompositeData index as index_key labels; a repeated index name gets a '_' suffix) and its other
    columns extend the path, except a column named 'value', which stands for the attribute itself."""
    _walk(out, skipped, domain, props, len(props), [attr], value, ts, null)


def _walk(out: list[Sample], skipped: dict[str, int], domain: str, props: tuple[Any, ...], key_props: int,
          chain: list[str], value: object, ts: float, null: float) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        out.append(Sample(domain, props, tuple(chain[1:]), chain[0], null if value is None else value, ts,
                          -1 if key_props == len(props) else key_props))
    elif isinstance(value, dict) and TABULAR in value:
        table = value[TABULAR]
        index = list(table.get("index", ()))
        for row in table.get("rows", ()):
            labels = dict(props)
            for idx in index:
                cell = row.get(idx)
                if cell is None:
                    continue
                while idx in labels:
                    idx += "_"
                if isinstance(cell, dict):
                    for k, v in cell.items():
                        labels[f"{idx}_{k}"] = java_value_string(v)
                else:
                    labels[idx] = java_value_string(cell)
            row_props = tuple(shared_pair(k, v) for k, v in labels.items())
            for column in sorted(set(row) - set(index)):
                inner = chain if column.lower() == "value" else chain + [column]
                _walk(out, skipped, domain, row_props, key_props, inner, row[column], ts, null)
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(out, skipped, domain, props, key_props, chain + [k], v, ts, null)
    elif isinstance(value, list):
        skipped["array (not exported)"] = skipped.get("array (not exported)", 0) + 1
    else:
        skipped[f"unsupported type {type(value).__name__}"] = skipped.get(f"unsupported type {type(value).__name__}", 0) + 1


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
    assert isinstance(exponent, int)         # a finite x: not 'n', 'N' or 'F'
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{exponent + len(text) - 1}"
