"""Simulation speed: how much faster than real time the virtual clock runs a loaded cluster,
and how much CPU the same workload takes on the wall clock.

    .venv/bin/python benchmarks/simulation.py [--minutes 10] [--wall-seconds 60]

Targets (issue #2): a 10-minute scenario of 5 brokers, 3 controllers, 100 partitions and
5,000 records/s in under 10 s on the virtual clock; the same workload on the wall clock using
under half a core. The baseline is the idle cluster (same topics, no clients) run in the same
process. The loaded run is measured at two producer batch intervals: 100 ms (the default:
~100 produce requests/s and ~750 fetches/s in the cluster) and 1 s (ten times fewer requests,
same records/s).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

from broker.clock import Clock, WallClock
from broker.scenario import load_scenario
from broker.simulation import Simulation


def scenario(seconds: int, batch_interval: str | None) -> str:
    text = ("cluster: {brokers: 5, controllers: 3, seed: 1}\n"
            "topics:\n"
            "  - {name: events, partitions: 100, replication_factor: 3, min_insync_replicas: 2}\n"
            f"run_for: {seconds}s\n")
    if batch_interval:
        text += ("workload:\n"
                 f"  - {{producer: p1, topic: events, rate: 2500, acks: all, keys: 1000, batch_interval: {batch_interval}}}\n"
                 f"  - {{producer: p2, topic: events, rate: 2500, acks: all, keys: 1000, batch_interval: {batch_interval}}}\n"
                 "  - {consumer_group: g1, topic: events, members: 5}\n")
    return text


def measure(text: str, clock: Clock | None = None) -> dict:
    sim = Simulation(load_scenario(text, "bench.yaml"), clock)
    sim.start()
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cluster_s = sim.scenario.run_for_ms / 1000.0
    return {"cluster_s": cluster_s, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "speedup_vs_real_time": round(cluster_s / wall, 1), "cores": round(cpu / wall, 3),
            "workload": sim.workload.stats()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--wall-seconds", type=int, default=60)
    args = ap.parse_args()
    seconds = args.minutes * 60
    idle = measure(scenario(seconds, None))
    result: dict = {"machine": f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}",
                    "virtual_idle": idle}
    for interval in ("100ms", "1s"):
        loaded = measure(scenario(seconds, interval))
        loaded["wall_over_idle"] = round(loaded["wall_s"] / idle["wall_s"], 1)
        result[f"virtual_loaded_batch_{interval}"] = loaded
    if args.wall_seconds:
        result["wall_clock_loaded_batch_100ms"] = measure(scenario(args.wall_seconds, "100ms"), WallClock())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
