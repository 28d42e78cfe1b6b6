"""The scheduler on the wall clock, driven from one thread while others schedule."""
import threading
import time

from broker.clock import WallClock
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
