"""The scheduler: on the wall clock, driven from one thread while others schedule; on the virtual clock,
in due order whatever is scheduled or cancelled during the run."""
import gc
import threading
import time

import pytest

from broker.clock import VirtualClock, WallClock
from broker.sched import Scheduler


def test_an_event_scheduled_from_another_thread_runs_on_time_though_the_runner_waits_for_a_later_one():
    sched = Scheduler(WallClock())
    sched.call_later(5_000.0, lambda: None)
    stop = threading.Event()
    runner = threading.Thread(target=lambda: sched.run(until_ms=float("inf"), stop=stop), daemon=True)
    runner.start()
    time.sleep(0.1)                        # the runner now waits for the event due in 5 s
    ran = threading.Event()
    scheduled = time.monotonic()
    with sched.lock:
        sched.call_later(10.0, ran.set)
    assert ran.wait(2.0)
    assert time.monotonic() - scheduled < 0.5
    stop.set()
    with sched.lock:
        sched.call_later(0.0, lambda: None)    # wakes the runner to see the stop
    runner.join(2.0)
    assert not runner.is_alive()


def test_the_virtual_clock_runs_events_in_due_order_ties_in_scheduling_order_and_skips_cancelled_ones():
    sched = Scheduler(VirtualClock())
    ran: list[tuple[float, str]] = []

    def note(name: str) -> None:
        ran.append((sched.now_ms(), name))

    sched.call_later(20.0, lambda: note("b"))
    sched.call_later(10.0, lambda: note("a"))
    sched.call_later(20.0, lambda: note("c"))
    sched.call_later(15.0, lambda: note("never")).cancel()
    # thousands of cancelled timeouts: the heap is compacted (a new list) while the run goes on
    timeouts = [sched.call_later(50.0, lambda: note("timeout")) for _ in range(5000)]

    def late() -> None:
        note("d")
        for t in timeouts:
            t.cancel()
        sched.call_later(0.0, lambda: note("e"))
        sched.call_later(100.0, lambda: note("after the end"))
    sched.call_later(30.0, late)
    sched.run(until_ms=60.0)
    assert ran == [(10.0, "a"), (20.0, "b"), (20.0, "c"), (30.0, "d"), (30.0, "e")]
    assert sched.now_ms() == 60.0
    sched.run()
    assert ran[-1] == (130.0, "after the end")


def test_a_virtual_run_collects_garbage_less_often_and_gives_the_threshold_back_even_when_an_event_fails():
    before = gc.get_threshold()
    sched = Scheduler(VirtualClock())
    during: list[tuple[int, ...]] = []
    sched.call_later(1.0, lambda: during.append(gc.get_threshold()))
    sched.run(until_ms=5.0)
    assert during[0][0] >= 20_000 and during[0][1:] == before[1:]
    assert gc.get_threshold() == before

    def fail() -> None:
        raise RuntimeError("an event failed")
    sched.call_later(1.0, fail)
    with pytest.raises(RuntimeError):
        sched.run(until_ms=10.0)
    assert gc.get_threshold() == before
