"""A collection repeated on its own thread: the JMX targets' and the consumer groups' workers."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class PeriodicWorker:
    """collect_once every interval_s, then on_result(self); a collection that overruns its interval
    is followed by the next at once, never by two at a time."""

    def __init__(self, name: str, interval_s: float, on_result: Callable[[Any], None]) -> None:
        self.interval_s = interval_s
        self.on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def collect_once(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.collect_once()
            self.on_result(self)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
