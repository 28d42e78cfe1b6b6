"""What brokers and controllers share: request handling with Kafka's request metrics.

A request waits for one of num.io.threads handler threads (RequestQueueTimeMs), is handled
(LocalTimeMs), may wait in a purgatory (RemoteTimeMs), and is answered (TotalTimeMs). Handler
and network idle ratios come from the time the simulated threads really spent busy.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable

from broker.mbeans.kafka_metrics import StandardBean
from broker.mbeans.names import ObjectName
from broker.mbeans.registry import MBeanRegistry
from broker.mbeans.yammer import DOUBLE, INT, LONG, STRING
from broker.net import Network
from broker.node import Node
from broker.sched import Scheduler

KAFKA_VERSION = "4.0.0"
COMMIT_ID = "985bc99521dd22bb"
# latest version of each API a 4.0 client sends (the version= tag of RequestsPerSec)
API_VERSIONS = {"Produce": 12, "Fetch": 17, "Metadata": 13, "ListOffsets": 9, "FindCoordinator": 6,
                "JoinGroup": 9, "SyncGroup": 5, "Heartbeat": 4, "LeaveGroup": 5, "OffsetCommit": 9,
                "OffsetFetch": 9, "CreateTopics": 7, "Vote": 2, "BeginQuorumEpoch": 1,
                "BrokerRegistration": 4, "BrokerHeartbeat": 1, "AlterPartition": 3}
_HIST_NAMES = ("RequestQueueTimeMs", "LocalTimeMs", "RemoteTimeMs", "ThrottleTimeMs",
               "ResponseQueueTimeMs", "ResponseSendTimeMs", "TotalTimeMs", "RequestBytes")
# no client here needs down-conversion: both are recorded as 0 for every Produce and Fetch, as Kafka does
_CONVERSION_HIST_NAMES = ("MessageConversionsTimeMs", "TemporaryMemoryBytes")
NETWORK_BYTES_PER_MS = 100_000.0    # what one network thread moves per ms when never idle


class ServerNode(Node):
    """A Kafka process: node.id, an MBean registry rebuilt on every start, request handling."""

    apis: tuple[str, ...] = ()

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str) -> None:
        super().__init__(name, sched, net, rng)
        self.node_id = node_id
        self.cfg = config
        self.cluster_id = cluster_id
        self.mbeans = MBeanRegistry(self.now, rng)
        self.start_time_ms = 0.0

    def on_start(self) -> None:
        # a restarted JVM starts with fresh metrics
        self.mbeans = MBeanRegistry(self.now, self.rng)
        self.start_time_ms = self.now()
        threads = self.cfg["num.io.threads"]
        self._thread_free_at = [self.now()] * threads
        self._busy_ms = 0.0
        self._net_bytes = 0.0
        self._net_idle = 1.0
        self._req_metrics: dict[str, dict[str, Any]] = {}
        self._queue: deque[float] = deque()
        self._register_server_metrics()
        self.every(1000.0, self._sample_idle)

    def _register_server_metrics(self) -> None:
        m = self.mbeans
        m.register(ObjectName.kafka("kafka.server", "app-info", None, {"id": str(self.node_id)}),
                   StandardBean({"Version": (STRING, lambda: KAFKA_VERSION), "CommitId": (STRING, lambda: COMMIT_ID),
                                 "StartTimeMs": (LONG, lambda: int(self.start_time_ms))}))
        info = m.kafka_metrics("app-info")
        info.add_value("version", lambda: KAFKA_VERSION)
        info.add_value("commit-id", lambda: COMMIT_ID)
        info.add_value("start-time-ms", lambda: int(self.start_time_ms))
        self._idle_meter = m.meter("kafka.server", "KafkaRequestHandlerPool", "RequestHandlerAvgIdlePercent",
                                   "percent", rate_unit="NANOSECONDS")
        m.gauge("kafka.network", "SocketServer", "NetworkProcessorAvgIdlePercent", lambda: self._net_idle, java_type=DOUBLE)
        m.gauge("kafka.network", "RequestChannel", "RequestQueueSize", self._request_queue_size, java_type=INT)
        # the quota managers' delay queues (ClientQuotaManager, on brokers and controllers): no quota is
        # configured here, so nothing is ever throttled into them
        for quota in ("Produce", "Fetch", "Request", "ControllerMutation"):
            m.kafka_metrics(quota).add_value("queue-size", lambda: 0.0)
        # LogSegment's static flush timer exists in every process with a log (the metadata log too);
        # with Kafka's default flush settings it counts only explicit flushes, which the simulation has none of
        m.timer("kafka.log", "LogFlushStats", "LogFlushRateAndTimeMs", "flushes")
        for api in self.apis:
            self._request_metrics(api)

    def _request_metrics(self, api: str) -> dict[str, Any]:
        found = self._req_metrics.get(api)
        if found is None:
            tags = {"request": api}
            # RequestMetrics.isFetchOrProduce: conversion histograms for these two exact names only
            names = _HIST_NAMES + (_CONVERSION_HIST_NAMES if api in ("Produce", "Fetch") else ())
            found = {h: self.mbeans.histogram("kafka.network", "RequestMetrics", h, tags) for h in names}
            self._req_metrics[api] = found
        return found

    def _request_queue_size(self) -> int:
        now = self.now()
        while self._queue and self._queue[0] <= now:
            self._queue.popleft()
        return len(self._queue)

    def _sample_idle(self) -> None:
        threads = len(self._thread_free_at)
        busy = min(self._busy_ms, 1000.0 * threads)
        self._idle_meter.mark(self.now(), (1.0 - busy / (1000.0 * threads)) * 1e9)
        self._busy_ms = 0.0
        net_threads = self.cfg["num.network.threads"]
        self._net_idle = max(0.0, 1.0 - self._net_bytes / (NETWORK_BYTES_PER_MS * 1000.0 * net_threads))
        self._net_bytes = 0.0

    def serve(self, request_type: type, api: str, handler: Callable[[str, Any, Callable[[Any], None]], None],
              cost_ms: Callable[[Any], float] = lambda r: 0.05, size: Callable[[Any], int] = lambda r: 100,
              response_size: Callable[[Any], int] = lambda resp: 100,
              metric_names: Callable[[Any], tuple[str, ...]] | None = None,
              errors_of: Callable[[Any], dict[str, int]] = lambda resp: {getattr(resp, "error", "NONE"): 1}) -> None:
        """Route request_type to handler through the simulated I/O threads, with RequestMetrics."""
        if api not in self.apis:
            raise ValueError(f"{api} is not an API of {type(self).__name__}")

        def route(src: str, req: Any, reply: Callable[[Any], None]) -> None:
            arrival = self.now()
            i = min(range(len(self._thread_free_at)), key=self._thread_free_at.__getitem__)
            start = max(arrival, self._thread_free_at[i])
            local = cost_ms(req)
            self._thread_free_at[i] = start + local
            self._busy_ms += local
            nbytes = size(req)
            self._net_bytes += nbytes
            if start > arrival:
                self._queue.append(start)
            names = metric_names(req) if metric_names else (api,)
            inc = self.incarnation

            def respond(resp: Any) -> None:
                if not self.alive or self.incarnation != inc:
                    return
                done = self.now()
                out = response_size(resp)
                self._net_bytes += out
                self._record(names, api, arrival, start, local, done, nbytes, out, errors_of(resp))
                reply(resp)

            def run() -> None:
                if self.alive and self.incarnation == inc:
                    handler(src, req, respond)

            if start + local > arrival:
                self.after(start + local - arrival, run)
            else:
                run()

        self.routes[request_type] = route

    def _record(self, names: tuple[str, ...], api: str, arrival: float, start: float,
                local: float, done: float, nbytes: int, out_bytes: int, errors: dict[str, int]) -> None:
        now = done
        version = API_VERSIONS.get(api, 0)
        for name in names:
            h = self._request_metrics(name)
            h["RequestQueueTimeMs"].update(start - arrival, now)
            h["LocalTimeMs"].update(local, now)
            h["RemoteTimeMs"].update(max(0.0, done - start - local), now)
            h["ThrottleTimeMs"].update(0.0, now)
            h["ResponseQueueTimeMs"].update(0.0, now)
            # one network thread writing the response at its rate
            h["ResponseSendTimeMs"].update(out_bytes / NETWORK_BYTES_PER_MS, now)
            h["TotalTimeMs"].update(done - arrival, now)
            h["RequestBytes"].update(nbytes, now)
            for conversion in _CONVERSION_HIST_NAMES:
                if conversion in h:
                    h[conversion].update(0, now)
            self.mbeans.meter("kafka.network", "RequestMetrics", "RequestsPerSec", "requests",
                              {"request": name, "version": str(version)}).mark(now)
            for error, count in errors.items():
                self.mbeans.meter("kafka.network", "RequestMetrics", "ErrorsPerSec", "requests",
                                  {"request": name, "error": error}).mark(now, count)
