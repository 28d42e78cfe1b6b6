"""Yammer metrics-core 2.2.0 as Kafka registers them: Gauge, Meter, Histogram, Timer.

Attribute names and semantics follow com.yammer.metrics.reporting.JmxReporter 2.2.0:
meters keep a lifetime Count, a MeanRate and 1/5/15-minute EWMAs ticked every 5 s; histograms
keep lifetime Count/Min/Max/Mean/StdDev and percentiles from an exponentially decaying sample
(1028 values, alpha 0.015, the "biased" sample Kafka uses). Time is passed in (now_ms); nothing
here reads a clock.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

LONG = "java.lang.Long"
INT = "java.lang.Integer"
DOUBLE = "java.lang.Double"
STRING = "java.lang.String"
TIME_UNIT = "java.util.concurrent.TimeUnit"

_TICK_MS = 5000.0
_exp, _heappush, _heapreplace = math.exp, heapq.heappush, heapq.heapreplace
_NS_PER = {"NANOSECONDS": 1.0, "MICROSECONDS": 1e3, "MILLISECONDS": 1e6, "SECONDS": 1e9,
           "MINUTES": 60e9, "HOURS": 3600e9, "DAYS": 86400e9}


def _java_type(value: Any) -> str:
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return INT if -2**31 <= value < 2**31 else LONG
    if isinstance(value, float):
        return DOUBLE
    return STRING


class Gauge:
    """GaugeMBean: one attribute, Value, read from live state on every access."""

    kind = "gauge"
    __slots__ = ("_read", "_type")

    def __init__(self, read: Callable[[], Any], java_type: str | None = None) -> None:
        self._read = read
        self._type = java_type

    def read(self, now_ms: float) -> dict[str, Any]:
        return {"Value": self._read()}

    def types(self) -> dict[str, str]:
        return {"Value": self._type or _java_type(self._read())}


class _EWMA:
    __slots__ = ("alpha", "initialized", "rate")

    def __init__(self, minutes: int) -> None:
        self.alpha = 1.0 - math.exp(-_TICK_MS / 60000.0 / minutes)
        self.rate = 0.0  # events per millisecond
        self.initialized = False

    def tick(self, count: float) -> None:
        instant = count / _TICK_MS
        if self.initialized:
            self.rate += self.alpha * (instant - self.rate)
        else:
            self.rate = instant
            self.initialized = True

    def decay(self, ticks: int) -> None:
        """`ticks` ticks with no events, in closed form."""
        if ticks <= 0:
            return
        if not self.initialized:
            self.initialized = True
            ticks -= 1
        self.rate *= (1.0 - self.alpha) ** ticks


class Meter:
    kind = "meter"

    def __init__(self, event_type: str, now_ms: float, rate_unit: str = "SECONDS") -> None:
        self.event_type = event_type
        self.rate_unit = rate_unit
        self.count: float = 0
        self._start_ms = now_ms
        self._last_tick_ms = now_ms
        self._uncounted = 0.0
        self._ewmas = (_EWMA(1), _EWMA(5), _EWMA(15))

    def mark(self, now_ms: float, n: float = 1) -> None:
        self._tick_if_necessary(now_ms)
        self.count += n
        self._uncounted += n

    def _tick_if_necessary(self, now_ms: float) -> None:
        ticks = int((now_ms - self._last_tick_ms) // _TICK_MS)
        if ticks <= 0:
            return
        for ewma in self._ewmas:
            ewma.tick(self._uncounted)
            ewma.decay(ticks - 1)
        self._uncounted = 0.0
        self._last_tick_ms += ticks * _TICK_MS

    def _scale(self) -> float:
        # rates are kept per millisecond; RateUnit decides what one reported unit is
        return _NS_PER[self.rate_unit] / 1e6

    def one_minute_rate(self, now_ms: float) -> float:
        self._tick_if_necessary(now_ms)
        return self._ewmas[0].rate * self._scale()

    def meter_attrs(self, now_ms: float) -> dict[str, Any]:
        self._tick_if_necessary(now_ms)
        scale = self._scale()
        elapsed = now_ms - self._start_ms
        count = self.count if isinstance(self.count, int) else int(self.count)
        return {
            "Count": count,
            "EventType": self.event_type,
            "RateUnit": self.rate_unit,
            "MeanRate": (self.count / elapsed * scale) if self.count and elapsed > 0 else 0.0,
            "OneMinuteRate": self._ewmas[0].rate * scale,
            "FiveMinuteRate": self._ewmas[1].rate * scale,
            "FifteenMinuteRate": self._ewmas[2].rate * scale,
        }

    def read(self, now_ms: float) -> dict[str, Any]:
        return self.meter_attrs(now_ms)

    def types(self) -> dict[str, str]:
        return dict(_METER_TYPES)


_METER_TYPES = {"Count": LONG, "EventType": STRING, "RateUnit": TIME_UNIT, "MeanRate": DOUBLE,
                "OneMinuteRate": DOUBLE, "FiveMinuteRate": DOUBLE, "FifteenMinuteRate": DOUBLE}
_QUANTILES = (("50thPercentile", 0.5), ("75thPercentile", 0.75), ("95thPercentile", 0.95),
              ("98thPercentile", 0.98), ("99thPercentile", 0.99), ("999thPercentile", 0.999))
_HIST_TYPES = {"Count": LONG, "Min": DOUBLE, "Max": DOUBLE, "Mean": DOUBLE, "StdDev": DOUBLE,
               **{name: DOUBLE for name, _ in _QUANTILES}}


_SIZE = 1028
_ALPHA = 0.015


class Histogram:
    """Biased histogram: ExponentiallyDecayingSample(1028, 0.015) plus lifetime statistics."""

    kind = "histogram"
    RESCALE_MS = 3600_000.0

    def __init__(self, now_ms: float, rng: random.Random) -> None:
        self._rng = rng
        self._start_ms = now_ms
        self._next_rescale_ms = now_ms + self.RESCALE_MS
        self._sample: list[tuple[float, int, float]] = []
        self._seq = itertools.count()
        self.count = 0
        self._min = math.inf
        self._max = -math.inf
        self._sum = 0.0
        self._mean = 0.0  # Welford, as Yammer's Histogram keeps its variance
        self._m2 = 0.0

    def update(self, value: float, now_ms: float) -> None:
        # the hottest call of a simulated request (eight per request): locals, no builtins
        count = self.count = self.count + 1
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        self._sum += value
        mean = self._mean
        delta = value - mean
        mean = self._mean = mean + delta / count
        self._m2 += delta * (value - mean)
        if now_ms >= self._next_rescale_ms:
            self._rescale(now_ms)
        priority = _exp(_ALPHA * (now_ms - self._start_ms) / 1000.0) / (1.0 - self._rng.random())
        sample = self._sample
        if len(sample) < _SIZE:
            _heappush(sample, (priority, next(self._seq), value))
        elif sample[0][0] < priority:
            _heapreplace(sample, (priority, next(self._seq), value))

    def _rescale(self, now_ms: float) -> None:
        factor = math.exp(-_ALPHA * (now_ms - self._start_ms) / 1000.0)
        self._sample = [(p * factor, s, v) for p, s, v in self._sample]
        heapq.heapify(self._sample)
        self._start_ms = now_ms
        self._next_rescale_ms = now_ms + self.RESCALE_MS

    def hist_attrs(self) -> dict[str, Any]:
        values = sorted(v for _, _, v in self._sample)
        n = self.count
        attrs: dict[str, Any] = {
            "Count": n,
            "Min": self._min if n else 0.0,
            "Max": self._max if n else 0.0,
            "Mean": self._sum / n if n else 0.0,
            "StdDev": math.sqrt(self._m2 / (n - 1)) if n > 1 else 0.0,
        }
        for name, q in _QUANTILES:
            attrs[name] = _quantile(values, q)
        return attrs

    def read(self, now_ms: float) -> dict[str, Any]:
        return self.hist_attrs()

    def types(self) -> dict[str, str]:
        return dict(_HIST_TYPES)


def _quantile(values: list[float], q: float) -> float:
    """com.yammer.metrics.stats.Snapshot.getValue (2.2.0)."""
    if not values:
        return 0.0
    pos = q * (len(values) + 1)
    if pos < 1:
        return float(values[0])
    if pos >= len(values):
        return float(values[-1])
    lower = values[int(pos) - 1]
    upper = values[int(pos)]
    return float(lower + (pos - math.floor(pos)) * (upper - lower))


class Timer:
    """TimerMBean: Meter attributes + Histogram attributes + LatencyUnit."""

    kind = "timer"

    def __init__(self, event_type: str, now_ms: float, rng: random.Random,
                 latency_unit: str = "MILLISECONDS", rate_unit: str = "SECONDS") -> None:
        self.meter = Meter(event_type, now_ms, rate_unit)
        self.histogram = Histogram(now_ms, rng)
        self.latency_unit = latency_unit

    def update(self, duration: float, now_ms: float) -> None:
        self.meter.mark(now_ms)
        self.histogram.update(duration, now_ms)

    def read(self, now_ms: float) -> dict[str, Any]:
        attrs = self.meter.meter_attrs(now_ms)
        attrs.update(self.histogram.hist_attrs())
        attrs["LatencyUnit"] = self.latency_unit
        return attrs

    def types(self) -> dict[str, str]:
        return {**_METER_TYPES, **_HIST_TYPES, "LatencyUnit": TIME_UNIT}
