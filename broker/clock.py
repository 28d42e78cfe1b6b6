"""Clocks: the simulation reads time only through one of these.

A `VirtualClock` moves only when the scheduler pops the next event (tests run minutes of Kafka
time in milliseconds); a `WallClock` follows time.monotonic and is used for the demo.
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> float: ...


class VirtualClock:
    def __init__(self, start_ms: float = 0.0) -> None:
        self._now = float(start_ms)

    def now_ms(self) -> float:
        return self._now

    def advance_to(self, t_ms: float) -> None:
        if t_ms < self._now:
            raise ValueError(f"time cannot go backwards: {t_ms} < {self._now}")
        self._now = t_ms


class WallClock:
    """Milliseconds since the clock was created, from time.monotonic."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now_ms(self) -> float:
        return (time.monotonic() - self._origin) * 1000.0

    def sleep_until(self, t_ms: float) -> None:
        delay = t_ms / 1000.0 - (time.monotonic() - self._origin)
        if delay > 0:
            time.sleep(delay)
