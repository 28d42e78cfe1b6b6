"""Kafka's own metrics library (org.apache.kafka.common.metrics) as JMX exposes it.

One MBean per (group, tags) with no name= key; every metric is an attribute. Sampled stats
follow MetricConfig defaults: 2 samples of 30 s; Avg and Max of no events are NaN, as
Avg.combine/Max.combine return. Time is passed in.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from broker.mbeans.yammer import DOUBLE

SAMPLES = 2
WINDOW_MS = 30_000.0


class _Sample:
    __slots__ = ("events", "start_ms", "value")

    def __init__(self, initial: float, now_ms: float) -> None:
        self.value = initial
        self.events = 0
        self.start_ms = now_ms


class SampledStat:
    """SampledStat with Kafka's windowing; `kind` is 'avg', 'max' or 'rate'."""

    def __init__(self, kind: str, now_ms: float, samples: int = SAMPLES, window_ms: float = WINDOW_MS) -> None:
        if kind not in ("avg", "max", "rate"):
            raise ValueError(f"unknown sampled stat {kind!r}")
        self.kind = kind
        self.samples_n = samples
        self.window_ms = window_ms
        self._initial = -math.inf if kind == "max" else 0.0
        self._samples = [_Sample(self._initial, now_ms)]
        self._current = 0

    def record(self, value: float, now_ms: float) -> None:
        sample = self._samples[self._current]
        if now_ms >= sample.start_ms + self.window_ms:
            self._current = (self._current + 1) % self.samples_n
            if self._current >= len(self._samples):
                self._samples.append(_Sample(self._initial, now_ms))
            sample = self._samples[self._current]
            sample.value, sample.events, sample.start_ms = self._initial, 0, now_ms
        if self.kind == "max":
            sample.value = max(sample.value, value)
        else:
            sample.value += value
        sample.events += 1

    def _purge(self, now_ms: float) -> None:
        expire = self.samples_n * self.window_ms
        for s in self._samples:
            if now_ms - s.start_ms >= expire:
                s.value, s.events, s.start_ms = self._initial, 0, now_ms

    def measure(self, now_ms: float) -> float:
        self._purge(now_ms)
        events = sum(s.events for s in self._samples)
        if self.kind == "max":
            return max(s.value for s in self._samples) if events else math.nan
        total = sum(s.value for s in self._samples)
        if self.kind == "avg":
            return total / events if events else math.nan
        # Rate.windowSize: assume N-1 full windows so a young rate is not overstated
        oldest = min(s.start_ms for s in self._samples)
        elapsed = now_ms - oldest
        full = int(elapsed // self.window_ms)
        if full < self.samples_n - 1:
            elapsed += (self.samples_n - 1 - full) * self.window_ms
        return total / (max(elapsed, 1.0) / 1000.0)


class KafkaMetricsBean:
    """kafka.server:type=<group>[,tags]: attributes are metric names."""

    kind = "kafka-metrics"

    def __init__(self, first_wins: bool = False) -> None:
        self._attrs: dict[str, Callable[[float], Any]] = {}
        self.first_wins = first_wins

    def add(self, name: str, read: Callable[[float], Any]) -> None:
        if name in self._attrs:
            if self.first_wins:
                return
            raise ValueError(f"metric {name!r} is already registered on this MBean")
        self._attrs[name] = read

    def remove(self, name: str) -> None:
        self._attrs.pop(name, None)

    def add_value(self, name: str, read: Callable[[], Any]) -> None:
        self.add(name, lambda now: read())

    def add_stat(self, name: str, stat: SampledStat) -> None:
        self.add(name, stat.measure)

    def read(self, now_ms: float) -> dict[str, Any]:
        return {name: read(now_ms) for name, read in self._attrs.items()}

    def types(self) -> dict[str, str]:
        # KafkaMbean advertises every attribute as double, even string gauges (current-state)
        return {name: DOUBLE for name in self._attrs}


class Sensor:
    """A group of stats fed by one record() call (e.g. latency -> -avg and -max)."""

    def __init__(self, bean: KafkaMetricsBean, prefix: str, now_ms: float, kinds: tuple[str, ...]) -> None:
        self._stats = []
        for kind in kinds:
            stat = SampledStat(kind, now_ms)
            bean.add_stat(f"{prefix}-{kind}", stat)
            self._stats.append(stat)

    def record(self, value: float, now_ms: float) -> None:
        for stat in self._stats:
            stat.record(value, now_ms)


class StandardBean:
    """A plain standard MBean (e.g. kafka.server:type=app-info,id=1) with fixed attribute types."""

    kind = "standard"

    def __init__(self, attrs: dict[str, tuple[str, Callable[[], Any]]]) -> None:
        self._attrs = attrs

    def read(self, now_ms: float) -> dict[str, Any]:
        return {name: read() for name, (_, read) in self._attrs.items()}

    def types(self) -> dict[str, str]:
        return {name: jtype for name, (jtype, _) in self._attrs.items()}
