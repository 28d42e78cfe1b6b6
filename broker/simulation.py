"""Runs a Scenario: builds the cluster, creates topics, starts the workload once they exist,
and applies the timeline of faults at their times, on the virtual or the wall clock."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import IO

from broker.clock import Clock
from broker.cluster import Cluster
from broker.errors import UnknownNodeError
from broker.scenario import Fault, Scenario
from broker.workload import ProducerSpec, Workload, WorkloadProducer

READY_POLL_MS = 100.0
FLOOD_RECORD_BYTES = 1024
FLOOD_REQUEST_BYTES = 1024 * 1024    # the Java producer's max.request.size


class Simulation:
    def __init__(self, scenario: Scenario, clock: Clock | None = None) -> None:
        self.scenario = scenario
        self.cluster = Cluster(scenario.brokers, scenario.controllers, scenario.seed, scenario.config, clock,
                               kafka_version=scenario.kafka_version, combined=scenario.combined)
        self.workload = Workload(self.cluster)
        self.events: list[tuple[float, str]] = []
        self._workload_started = False
        self.floods: list[WorkloadProducer] = []

    def log(self, message: str) -> None:
        self.events.append((self.cluster.now_ms(), message))

    def start(self, apply_timeline: bool = True) -> None:
        """Start the cluster, topics and workload; the timeline's faults too unless the caller
        applies them itself (alert rehearsal paces them to what it observes)."""
        c = self.cluster
        c.start()
        for t in self.scenario.topics:
            c.create_topic(t.name, t.partitions, t.replication_factor, t.min_insync_replicas, t.configs,
                           on_done=lambda err, name=t.name: self.log(f"topic {name} created" if err == "NONE"
                                                                       else f"topic {name}: {err}"))
        c.sched.call_later(0.0, self._start_workload_when_ready)
        if apply_timeline:
            for fault in self.scenario.timeline:
                c.sched.call_at(fault.at_ms, lambda f=fault: self.apply(f))

    def _start_workload_when_ready(self) -> None:
        if not all(self.cluster.topic_exists(t.name) for t in self.scenario.topics):
            self.cluster.sched.call_later(READY_POLL_MS, self._start_workload_when_ready)
            return
        self._workload_started = True
        for spec in self.scenario.producers:
            self.workload.add_producer(spec)
        for group in self.scenario.groups:
            self.workload.add_group(group)
        self.log("workload started")

    def apply(self, fault: Fault) -> None:
        c = self.cluster
        try:
            if fault.action == "kill":
                name = c.kill(fault.target)
            elif fault.action == "restart":
                name = c.restart(fault.target)
            elif fault.action in ("isolate", "pause"):
                # a hung process answers nobody, as an isolated one (a real engine sends SIGSTOP)
                name = c.isolate(fault.target)
            elif fault.action == "resume":
                name = fault.target
                c.heal(name)
            elif fault.action == "heal":
                c.heal(fault.node)
                if fault.node is None:
                    self._stop_floods()
                name = fault.node or "all"
            elif fault.action == "bounce":
                bounced = c.kill(fault.target)
                c.sched.call_later(fault.down_ms, lambda: self._start_again(bounced))
                name = f"{bounced} (down {fault.down_ms / 1000:g}s)"
            elif fault.action == "elect_leaders":
                name = f"all ({c.elect_preferred_leaders()} partitions to their preferred leader)"
            elif fault.action == "corrupt_metadata":
                name = c.corrupt_metadata(fault.target)
            elif fault.action == "fail_log_dir":
                name = f"{fault.node} {c.fail_log_dir(fault.target, fault.log_dir)}"
            elif fault.action == "flood":
                name = self._flood(fault.target, fault.bytes_per_sec)
            elif fault.action == "stop_consumer":
                name = f"{fault.node} ({self.workload.stop_group(fault.target)} members leave)"
            elif fault.action == "slow_consumer":
                self.workload.slow_group(fault.target, fault.processing_ms)
                name = f"{fault.node} ({fault.processing_ms:g} ms per record)"
            elif fault.action == "resume_consumer":
                spec = next(g for g in self.scenario.groups if g.group == fault.node)
                self.workload.resume_group(spec.group, spec)
                name = str(fault.node)
            else:
                name = c.slow(fault.target, fault.fetch_delay_ms, fault.event_delay_ms,
                              fault.disk_delay_ms)
            self.log(f"{fault.action} {name}")
        except (UnknownNodeError, ValueError) as e:
            self.log(f"{fault.action} {fault.node} skipped: {e}")

    def _start_again(self, name: str) -> None:
        if not self.cluster.node(name).alive:
            self.cluster.restart(name)
            self.log(f"restart {name} (bounce)")

    def _flood(self, topic: str, bytes_per_sec: float) -> str:
        """A producer (acks=0, 1 KiB records) sending bytes_per_sec into topic in requests of about
        max.request.size, until `heal: all`: a backfill job or a runaway client."""
        interval_ms = min(100.0, max(1.0, FLOOD_REQUEST_BYTES / bytes_per_sec * 1000.0))
        spec = ProducerSpec(f"flood-{len(self.floods) + 1}", topic, bytes_per_sec / FLOOD_RECORD_BYTES, acks="0",
                            record_size=FLOOD_RECORD_BYTES, batch_interval_ms=interval_ms)
        self.floods.append(self.workload.add_producer(spec))
        return f"{topic} at {bytes_per_sec / 1e6:g} MB/s"

    def _stop_floods(self) -> None:
        for flood in self.floods:
            flood.client.kill()
            self.workload.producers.remove(flood)
        self.floods = []

    def run(self, until_ms: float | None = None, every_ms: float | None = None,
            on_sample: Callable[[], None] | None = None, stop: threading.Event | None = None) -> None:
        """Run to until_ms (default: the scenario's run_for), calling on_sample every every_ms."""
        end = self.scenario.run_for_ms if until_ms is None else until_ms
        sched = self.cluster.sched
        if every_ms:
            t = sched.now_ms()
            while t < end and not (stop and stop.is_set()):
                t = min(end, t + every_ms)
                sched.run(t, stop)
                if on_sample and not (stop and stop.is_set()):
                    on_sample()
        else:
            sched.run(end, stop)
            if on_sample:
                on_sample()

    def dump(self, out: IO[str], patterns: Iterable[str] = ()) -> None:
        json.dump(self.cluster.snapshot(patterns), out, separators=(",", ":"))
        out.write("\n")
