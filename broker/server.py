"""What brokers and controllers share: request handling with Kafka's request metrics.

A request waits for one of num.io.threads handler threads (RequestQueueTimeMs), is handled
(LocalTimeMs), may wait in a purgatory (RemoteTimeMs), and is answered (TotalTimeMs). Handler
and network idle ratios come from the time the simulated threads really spent busy.
"""
from __future__ import annotations

import random
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any

from broker.mbeans.kafka_metrics import SampledStat, StandardBean
from broker.mbeans.registry import MBeanRegistry
from broker.mbeans.selector import SelectorMetrics
from broker.mbeans.yammer import DOUBLE, INT, LONG, STRING
from broker.net import Network, RequestFailed
from broker.node import Node
from broker.sched import Scheduler
from broker.versions import DEFAULT_LINE, LINES, KafkaLine
from kafka_common.names import ObjectName

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


PER_TOPIC_METERS = (("MessagesInPerSec", "messages"), ("BytesInPerSec", "bytes"), ("BytesOutPerSec", "bytes"),
                    ("BytesRejectedPerSec", "bytes"), ("FailedProduceRequestsPerSec", "requests"),
                    ("FailedFetchRequestsPerSec", "requests"), ("TotalProduceRequestsPerSec", "requests"),
                    ("TotalFetchRequestsPerSec", "requests"), ("ProduceMessageConversionsPerSec", "requests"),
                    ("FetchMessageConversionsPerSec", "requests"), ("NoKeyCompactedTopicRecordsPerSec", "requests"),
                    ("InvalidMagicNumberRecordsPerSec", "requests"), ("InvalidMessageCrcRecordsPerSec", "requests"),
                    ("InvalidOffsetOrSequenceRecordsPerSec", "requests"))
ALL_TOPICS_ONLY = (("ReplicationBytesInPerSec", "bytes"), ("ReplicationBytesOutPerSec", "bytes"),
                   ("ReassignmentBytesInPerSec", "bytes"), ("ReassignmentBytesOutPerSec", "bytes"))
# share groups' meters: all topics only until a share group fetches
SHARE_METERS = (("TotalShareFetchRequestsPerSec", "requests"), ("FailedShareFetchRequestsPerSec", "requests"),
                ("TotalShareAcknowledgementRequestsPerSec", "requests"),
                ("FailedShareAcknowledgementRequestsPerSec", "requests"))

# (request size, response size) per request type, as the serving side registered them: the
# sending side's channel metrics count the same bytes
_WIRE_SIZES: dict[type, tuple[Callable[[Any], int], Callable[[Any], int]]] = {}
JAVA_MAX_LONG = 2**63 - 1


class ServerNode(Node):
    """A Kafka process: node.id, an MBean registry rebuilt on every start, request handling."""

    listener = "PLAINTEXT"
    wall_base_ms = 0.0          # the epoch time (ms) of the clock's zero: set by each role
    # the client channels a process opens (NodeToControllerChannelManager, raft, ...):
    # (kafka-metrics group, tagged with BrokerId)
    client_channels: tuple[tuple[str, bool], ...] = ()

    # the share of the process's request handler threads this server's pool holds (KafkaRequestHandlerPool
    # marks its idle time over all the process's handler threads: a combined node has two pools)
    handler_share = 1.0
    # a part of a combined node reads the process's registry from it
    process_registry: Callable[[], MBeanRegistry] | None = None

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str, kafka: KafkaLine = LINES[DEFAULT_LINE], process: Node | None = None) -> None:
        super().__init__(name, sched, net, rng, process)
        self.node_id = node_id
        self.kafka = kafka
        self.cfg = config
        self.cluster_id = cluster_id
        self.mbeans = MBeanRegistry(self.now, rng)
        self.start_time_ms = 0.0

    def wall_ms(self) -> float:
        return self.wall_base_ms + self.now()

    def on_start(self) -> None:
        # a restarted JVM starts with fresh metrics; the servers of one process share its registry
        self.mbeans = self.process_registry() if self.process_registry else MBeanRegistry(self.now, self.rng)
        self.start_time_ms = self.now()
        threads = self.cfg["num.io.threads"]
        self._thread_free_at = [self.now()] * threads
        self._busy_ms = 0.0
        self._net_bytes = 0.0
        self._net_idle = 1.0
        self._req_metrics: dict[str, dict[str, Any]] = {}
        self._queue: deque[float] = deque()
        self._register_server_metrics()
        self._register_network_metrics()
        self.every(1000.0, self._sample_idle)
        self.every(1000.0, self._close_connections)

    def _register_server_metrics(self) -> None:
        m = self.mbeans
        m.register(ObjectName.kafka("kafka.server", "app-info", None, {"id": str(self.node_id)}),
                   StandardBean({"Version": (STRING, lambda: self.kafka.version), "CommitId": (STRING, lambda: self.kafka.commit_id),
                                 "StartTimeMs": (LONG, lambda: int(self.wall_base_ms + self.start_time_ms))}))
        info = m.kafka_metrics("app-info")
        info.add_value("version", lambda: self.kafka.version)
        info.add_value("commit-id", lambda: self.kafka.commit_id)
        info.add_value("start-time-ms", lambda: int(self.wall_base_ms + self.start_time_ms))     # epoch ms
        self._idle_meter = m.meter("kafka.server", "KafkaRequestHandlerPool", "RequestHandlerAvgIdlePercent",
                                   "percent", rate_unit="NANOSECONDS")
        m.gauge("kafka.network", "SocketServer", "NetworkProcessorAvgIdlePercent", lambda: self._net_idle, java_type=DOUBLE)
        # BrokerTopicStats' all-topics meters exist in every Kafka process, controllers too
        for name, event in PER_TOPIC_METERS + ALL_TOPICS_ONLY + SHARE_METERS:
            m.meter("kafka.server", "BrokerTopicMetrics", name, event)
        m.gauge("kafka.network", "RequestChannel", "RequestQueueSize", self._request_queue_size, java_type=INT)
        # the quota managers' delay queues (ClientQuotaManager, on brokers and controllers): no quota is
        # configured here, so nothing is ever throttled into them
        for quota in ("Produce", "Fetch", "Request", "ControllerMutation"):
            m.kafka_metrics(quota).add_value("queue-size", lambda: 0.0)
        # LogSegment's static flush timer exists in every process with a log (the metadata log too);
        # with Kafka's default flush settings it counts only explicit flushes, which the simulation has none of
        m.timer("kafka.log", "LogFlushStats", "LogFlushRateAndTimeMs", "flushes")
        for api in self.kafka.apis(self.role):
            self._request_metrics(api)

    def _register_network_metrics(self) -> None:
        """The socket server's processors (one Selector each, num.network.threads of them on the
        listener) and the process's client channels."""
        m, now = self.mbeans, self.now()
        n = self.cfg["num.network.threads"]
        self._conns: list[dict[str, int]] = [{} for _ in range(n)]     # peer -> its incarnation
        self._last_seen: dict[str, float] = {}
        self._expired = 0
        self._processors = []
        for i in range(n):
            tags = {"listener": self.listener, "networkProcessor": str(i)}
            self._processors.append(SelectorMetrics(m.kafka_metrics("socket-server-metrics", tags), now,
                                                    lambda i=i: len(self._conns[i]), server=True))
            m.kafka_metrics("socket-server-metrics", {"clientSoftwareName": "apache-kafka-java",
                                                      "clientSoftwareVersion": self.kafka.version, **tags}) \
                .add_value("connections", lambda i=i: float(len(self._conns[i])))
            m.gauge("kafka.network", "Processor", "IdlePercent", lambda: self._net_idle,
                    {"networkProcessor": str(i)}, java_type=DOUBLE)
            # responses go straight back to the connection here: nothing waits in a response queue
            m.gauge("kafka.network", "RequestChannel", "ResponseQueueSize", lambda: 0, {"processor": str(i)},
                    java_type=INT)
        m.gauge("kafka.network", "RequestChannel", "ResponseQueueSize", lambda: 0, java_type=INT)
        self._accepts = SampledStat("rate", now)
        listener = m.kafka_metrics("socket-server-metrics", {"listener": self.listener})
        listener.add_stat("connection-accept-rate", self._accepts)
        # Avg of the connection-rate throttling: no connection quota is set, so never a sample (NaN)
        listener.add_stat("connection-accept-throttle-time", SampledStat("avg", now))
        listener.add_stat("ip-connection-accept-throttle-time", SampledStat("avg", now))
        server = m.kafka_metrics("socket-server-metrics")
        server.add_stat("broker-connection-accept-rate", self._accepts)
        # queued.max.request.bytes is -1 by default: the unbounded memory pool is never depleted
        server.add_value("MemoryPoolAvgDepletedPercent", lambda: 0.0)
        server.add_value("MemoryPoolDepletedTimeTotal", lambda: 0.0)
        m.meter("kafka.network", "Acceptor", "AcceptorBlockedPercent", "blocked time", {"listener": self.listener},
                rate_unit="NANOSECONDS")
        m.gauge("kafka.network", "SocketServer", "ExpiredConnectionsKilledCount", lambda: float(self._expired),
                java_type=DOUBLE)
        m.gauge("kafka.network", "SocketServer", "MemoryPoolAvailable", lambda: JAVA_MAX_LONG, java_type=LONG)
        m.gauge("kafka.network", "SocketServer", "MemoryPoolUsed", lambda: 0, java_type=LONG)
        self._channels: dict[tuple, tuple[SelectorMetrics, set[str]]] = {}
        for group, by_id in self.client_channels + (self.kafka.broker_channels if self.role == "broker" else ()):
            self._channel(group, {"BrokerId": str(self.node_id)} if by_id else {})

    def _channel(self, group: str, tags: dict[str, str]) -> tuple[SelectorMetrics, set[str]]:
        key = (group, tuple(sorted(tags.items())))
        found = self._channels.get(key)
        if found is None:
            conns: set[str] = set()
            found = (SelectorMetrics(self.mbeans.kafka_metrics(group, tags), self.now(), lambda: len(conns)), conns)
            self._channels[key] = found
        return found

    def close_channel(self, group: str, tags: dict[str, str]) -> None:
        """A client channel closed with its network client (Selector.close): its metrics go."""
        if self._channels.pop((group, tuple(sorted(tags.items()))), None) is not None:
            self.mbeans.unregister(ObjectName.kafka("kafka.server", group, None, tags))

    def channel_of(self, request: Any, dst: str) -> tuple[str, dict[str, str]] | None:
        """Which client channel a request goes out on (group and tags), None for none."""
        return None

    def request(self, dst: str, request: Any, on_reply: Callable[[Any], None], timeout_ms: float) -> None:
        which = self.channel_of(request, dst)
        if which is None:
            super().request(dst, request, on_reply, timeout_ms)
            return
        selector, conns = self._channel(*which)
        size, response_size = _WIRE_SIZES.get(type(request), (lambda r: 100, lambda r: 100))
        if dst not in conns:
            conns.add(dst)
            selector.connected(self.now())
        selector.sent(size(request), self.now())
        inc = self.incarnation

        def reply(resp: Any) -> None:
            if self.incarnation == inc:
                if isinstance(resp, RequestFailed):
                    # NetworkClient disconnects on a refused connection and on a request timeout
                    if dst in conns:
                        conns.discard(dst)
                        selector.closed(self.now())
                else:
                    selector.received(response_size(resp), self.now())
            on_reply(resp)

        super().request(dst, request, reply, timeout_ms)

    def _server_io(self, src: str, nbytes: int, outgoing: bool) -> None:
        """A request read from, or a response written to, src's connection on its processor."""
        now = self.now()
        i = zlib.crc32(src.encode()) % len(self._processors)
        selector = self._processors[i]
        if not outgoing and src not in self._conns[i]:
            self._conns[i][src] = self._peer_incarnation(src)
            self._accepts.record(1, now)
            selector.connected(now)
        self._last_seen[src] = now
        if outgoing:
            selector.sent(nbytes, now)
        else:
            selector.received(nbytes, now)

    def _peer_incarnation(self, src: str) -> int:
        try:
            return self.net.endpoint(src).incarnation
        except KeyError:
            return 0

    def _close_connections(self) -> None:
        """Connections whose peer process went away close (EOF/RST); idle ones close after
        connections.max.idle.ms, counted as expired."""
        now = self.now()
        idle = self.cfg["connections.max.idle.ms"]
        for i, conns in enumerate(self._conns):
            for src, inc in list(conns.items()):
                gone = self._peer_incarnation(src) != inc
                expired = now - self._last_seen.get(src, now) > idle
                if gone or expired:
                    del conns[src]
                    self._processors[i].closed(now)
                    self._expired += int(expired and not gone)

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
        self._idle_meter.mark(self.now(), (1.0 - busy / (1000.0 * threads)) * 1e9 * self.handler_share)
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
        if api not in self.kafka.apis(self.role):
            raise ValueError(f"{api} is not an API of {type(self).__name__}")
        _WIRE_SIZES[request_type] = (size, response_size)

        def route(src: str, req: Any, reply: Callable[[Any], None]) -> None:
            arrival = self.now()
            i = min(range(len(self._thread_free_at)), key=self._thread_free_at.__getitem__)
            start = max(arrival, self._thread_free_at[i])
            local = cost_ms(req)
            self._thread_free_at[i] = start + local
            self._busy_ms += local
            nbytes = size(req)
            self._net_bytes += nbytes
            self._server_io(src, nbytes, outgoing=False)
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
                self._server_io(src, out, outgoing=True)
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
        # errors count under the API's own name only (Fetch, never FetchConsumer/FetchFollower)
        for error, count in errors.items():
            self.mbeans.meter("kafka.network", "RequestMetrics", "ErrorsPerSec", "requests",
                              {"request": api, "error": error}).mark(now, count)
