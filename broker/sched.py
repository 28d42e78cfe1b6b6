"""The event scheduler: one heap of (due_ms, seq, callback), owned by one object.

Ties at the same due time run in scheduling order (seq), which is what makes a seeded run
replay exactly. On a WallClock the scheduler sleeps until each event is due; model code is the
same on both clocks.
"""
from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import threading
from collections.abc import Callable, Iterator

from broker.clock import Clock, VirtualClock, WallClock


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic GC's youngest generation collected every 20,000 allocations instead of 700 while the
    virtual clock runs: a simulated request allocates hundreds of short-lived objects that reference
    counting frees, and at the default a fifth of a loaded simulation went to collections that found
    next to nothing. The threshold is given back afterwards."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


class Timer:
    """A handle to a scheduled callback; `cancel()` makes it a no-op."""

    __slots__ = ("_sched", "cancelled", "due_ms", "fn")

    def __init__(self, due_ms: float, fn: Callable[[], None] | None, sched: Scheduler | None = None) -> None:
        self.due_ms = due_ms
        self.fn = fn
        self.cancelled = False
        self._sched = sched

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        # dropping the callback breaks the closure cycles a request's timeout creates, so they are
        # freed by reference counting rather than by the cyclic GC
        self.fn = None
        if self._sched is not None:
            self._sched._cancelled += 1


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        # The demo drives the wall-clock scheduler from one thread and reads/injects faults
        # from others; every mutation of the model (and of the heap) happens while holding this lock.
        self.lock = threading.RLock()
        self._wall = isinstance(clock, WallClock)
        # wakes the wall-clock runner when another thread schedules something sooner than it sleeps for
        self._scheduled = threading.Condition(self.lock)

    def now_ms(self) -> float:
        return self.clock.now_ms()

    def call_later(self, delay_ms: float, fn: Callable[[], None]) -> Timer:
        if delay_ms < 0:
            raise ValueError(f"negative delay: {delay_ms} ms")
        return self.call_at(self.clock.now_ms() + delay_ms, fn)

    def call_at(self, due_ms: float, fn: Callable[[], None]) -> Timer:
        if self._wall:
            with self.lock:
                timer = self._push(due_ms, fn)
                self._scheduled.notify()
                return timer
        return self._push(due_ms, fn)

    def _push(self, due_ms: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(max(due_ms, self.clock.now_ms()), fn, self)
        heapq.heappush(self._heap, (timer.due_ms, next(self._seq), timer))
        if self._cancelled > 4096 and self._cancelled * 2 > len(self._heap):
            # most entries are cancelled timeouts: drop them instead of carrying them until due
            self._heap = [e for e in self._heap if not e[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0
        return timer

    def call_every(self, period_ms: float, fn: Callable[[], None], first_ms: float | None = None) -> Timer:
        """Run fn every period_ms until the returned handle is cancelled."""
        handle = Timer(0.0, fn)

        def tick() -> None:
            if handle.cancelled:
                return
            fn()
            if not handle.cancelled:
                handle.due_ms = self.clock.now_ms() + period_ms
                self.call_at(handle.due_ms, tick)

        self.call_later(period_ms if first_ms is None else first_ms, tick)
        return handle

    def next_due_ms(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
            self._cancelled -= 1
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Run the next due event; False when nothing is scheduled."""
        with self.lock:
            due = self.next_due_ms()
            if due is None:
                return False
            while self._wall and due > self.clock.now_ms():
                # releases the lock while waiting: other threads read the model and schedule
                self._scheduled.wait((due - self.clock.now_ms()) / 1000.0)
                due = self.next_due_ms()
                if due is None:
                    return False
            _, _, timer = heapq.heappop(self._heap)
            if isinstance(self.clock, VirtualClock):
                self.clock.advance_to(timer.due_ms)
            fn, timer.fn = timer.fn, None
            if not timer.cancelled and fn is not None:
                fn()
        return True

    def run(self, until_ms: float | None = None, stop: threading.Event | None = None) -> None:
        """Run events due up to until_ms (inclusive); the virtual clock ends at until_ms."""
        if until_ms is not None and until_ms < self.clock.now_ms():
            raise ValueError(f"until_ms must not be in the past: {until_ms} < {self.clock.now_ms()}")
        with _fewer_collections() if isinstance(self.clock, VirtualClock) else contextlib.nullcontext():
            while stop is None or not stop.is_set():
                with self.lock:
                    due = self.next_due_ms()
                if due is None or (until_ms is not None and due > until_ms):
                    break
                self.step()
        if until_ms is not None and isinstance(self.clock, VirtualClock):
            self.clock.advance_to(until_ms)
        elif until_ms is not None and isinstance(self.clock, WallClock) and not (stop and stop.is_set()):
            self.clock.sleep_until(until_ms)

    def run_for(self, duration_ms: float) -> None:
        self.run(self.clock.now_ms() + duration_ms)
