"""What the rules make: a sample with its Prometheus name, labels, type and help."""
from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class MetricType(Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    UNTYPED = "untyped"
    SUMMARY = "summary"         # not made by rules: the JVM's garbage collection (exporter/jvm.py)


class MatchedSample(NamedTuple):
    name: str
    labels: tuple[tuple[str, str], ...]      # sorted by name
    value: float
    type: MetricType
    help: str
    object_name: str = ""
    rule: int = -1                           # the index of the rule that made it; -1: none (an extra metric)


class RuleError(ValueError):
    """The rules made a sample jmx_exporter refuses (a negative counter): the collection fails."""
