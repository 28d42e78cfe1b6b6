"""The exporter's clock: the system's in the daemon; a test hands its own to the workers, the sources and the
Zabbix sink, so backoff, settling and warn-once intervals are tested without waiting for them."""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds for intervals (time.monotonic)."""
        ...

    def time(self) -> float:
        """Epoch seconds for timestamps (time.time)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


SYSTEM = SystemClock()
