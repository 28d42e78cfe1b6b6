"""What every source yields, so the rules engine cannot tell sources apart."""
from __future__ import annotations

import sys
from typing import NamedTuple, Union

Value = Union[int, float, bool, str]
NO_VALUE = float("nan")
"""A null attribute, and Kafka's NaN, read as NaN by every source: Jolokia's JSON writes both as
null, so only NaN keeps the three sources identical. Rules treat it as jmx_exporter treats NaN."""


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

    @property
    def object_name(self) -> str:
        return self.domain + ":" + ",".join(f"{k}={v}" for k, v in self.props)

    def key(self) -> tuple:
        """Everything but the value and the time: what identifies a series."""
        return self.domain, self.props, self.path, self.attr


class Collection(NamedTuple):
    """One read of one target: the samples, and attributes skipped by reason (counted, not fatal)."""

    samples: list[Sample]
    skipped: dict[str, int]


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
