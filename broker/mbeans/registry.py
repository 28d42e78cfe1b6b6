"""A node's MBean registry: what its MBeanServer would hold."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar, cast

from broker.mbeans.kafka_metrics import KafkaMetricsBean, Sensor
from broker.mbeans.yammer import Gauge, Histogram, Meter, Timer
from kafka_common.names import ObjectName, ObjectNamePattern


class MBean(Protocol):
    kind: str

    def read(self, now_ms: float) -> dict[str, Any]: ...

    def types(self) -> dict[str, str]: ...


B = TypeVar("B", bound=MBean)


class MBeanRegistry:
    def __init__(self, now: Callable[[], float], rng: random.Random, shared: bool = False) -> None:
        """shared: the registry of a process with two servers (a combined node's broker and controller):
        a name registered twice keeps its first bean, as Yammer's getOrAdd and the first JMX registration do."""
        self._now = now
        self._rng = rng
        self.shared = shared
        self._beans: dict[str, tuple[ObjectName, MBean]] = {}
        # (domain, type, name, tags) -> bean, so marking a meter on a hot path builds no ObjectName
        self._by_parts: dict[tuple, MBean] = {}

    def __len__(self) -> int:
        return len(self._beans)

    def __contains__(self, name: str | ObjectName) -> bool:
        return self._key(name) in self._beans

    @staticmethod
    def _key(name: str | ObjectName) -> str:
        return (ObjectName.parse(name) if isinstance(name, str) else name).canonical

    def register(self, name: ObjectName, bean: B) -> B:
        key = name.canonical
        if key in self._beans:
            if self.shared:
                return cast(B, self._beans[key][1])
            raise ValueError(f"MBean {name} is already registered")
        self._beans[key] = (name, bean)
        return bean

    def get_or_register(self, name: ObjectName, make: Callable[[], B]) -> B:
        """Yammer's MetricsRegistry.getOrAdd: a second registration returns the first bean."""
        found = self._beans.get(name.canonical)
        return cast(B, found[1]) if found else self.register(name, make())   # registered by this kind's maker

    def unregister(self, name: ObjectName) -> None:
        if self._beans.pop(name.canonical, None) is not None:
            self._by_parts.clear()

    def _cached(self, domain: str, type_: str, name: str | None, tags: dict[str, str] | None,
                make: Callable[[], B]) -> B:
        key = (domain, type_, name, tuple(tags.items()) if tags else ())
        bean = self._by_parts.get(key)
        if bean is None:
            bean = self._by_parts[key] = self.get_or_register(ObjectName.kafka(domain, type_, name, tags), make)
        return cast(B, bean)

    def get(self, name: str | ObjectName) -> MBean:
        try:
            return self._beans[self._key(name)][1]
        except KeyError:
            raise KeyError(f"no MBean {name}") from None

    def read(self, name: str | ObjectName) -> dict[str, Any]:
        return self.get(name).read(self._now())

    def value(self, name: str, attr: str = "Value") -> Any:
        return self.read(name)[attr]

    def names(self, patterns: Iterable[ObjectNamePattern] = ()) -> Iterator[ObjectName]:
        pats = list(patterns)
        for name, _ in list(self._beans.values()):
            if not pats or any(p.matches(name) for p in pats):
                yield name

    def items(self) -> Iterator[tuple[ObjectName, MBean]]:
        return iter(list(self._beans.values()))

    def snapshot(self, patterns: Iterable[ObjectNamePattern] = ()) -> dict[str, dict[str, Any]]:
        now = self._now()
        pats = list(patterns)
        return {str(name): bean.read(now) for name, bean in list(self._beans.values())
                if not pats or any(p.matches(name) for p in pats)}

    # -- Kafka's ways of creating metrics ---------------------------------------------------------
    def gauge(self, domain: str, type_: str, name: str, read: Callable[[], Any],
              tags: dict[str, str] | None = None, java_type: str | None = None) -> Gauge:
        return self.register(ObjectName.kafka(domain, type_, name, tags), Gauge(read, java_type))

    def meter(self, domain: str, type_: str, name: str, event_type: str,
              tags: dict[str, str] | None = None, rate_unit: str = "SECONDS") -> Meter:
        return self._cached(domain, type_, name, tags,
                            lambda: Meter(event_type, self._now(), rate_unit))

    def histogram(self, domain: str, type_: str, name: str, tags: dict[str, str] | None = None) -> Histogram:
        return self._cached(domain, type_, name, tags,
                            lambda: Histogram(self._now(), self._rng))

    def timer(self, domain: str, type_: str, name: str, event_type: str,
              tags: dict[str, str] | None = None) -> Timer:
        return self.get_or_register(ObjectName.kafka(domain, type_, name, tags),
                                    lambda: Timer(event_type, self._now(), self._rng))

    def kafka_metrics(self, group: str, tags: dict[str, str] | None = None,
                      domain: str = "kafka.server") -> KafkaMetricsBean:
        return self.get_or_register(ObjectName.kafka(domain, group, None, tags),
                                    lambda: KafkaMetricsBean(self.shared))

    def sensor(self, bean: KafkaMetricsBean, prefix: str, kinds: tuple[str, ...] = ("avg", "max")) -> Sensor:
        return Sensor(bean, prefix, self._now(), kinds)
