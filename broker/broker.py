"""A Kafka broker (process.roles=broker): registers and heartbeats with the active controller,
follows the metadata log as a raft observer, leads and follows partition replicas, serves
produce and fetch, and hosts the group coordinator for the __consumer_offsets partitions it leads.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from broker.apis import BROKER_APIS
from broker.group import GroupCoordinator
from broker.log import Batch, Log
from kafka_common.names import ObjectName, ObjectNamePattern
from broker.mbeans.yammer import DOUBLE, INT, LONG, STRING, Gauge
from broker.metadata import (
    BrokerRegistrationChangeRecord,
    MetadataImage,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
)
from broker.net import Network, RequestFailed
from broker.partition import Partition
from broker.protocol import (
    AlterPartitionRequest,
    BrokerHeartbeatRequest,
    BrokerRegistrationRequest,
    FetchPartition,
    FetchPartitionData,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    PartitionProduceResult,
    ProduceRequest,
    ProduceResponse,
)
from broker.raft import RAFT_REQUESTS, QuorumStore, RaftClient
from broker.sched import Scheduler
from broker.server import ServerNode
from broker.structs import TopicPartition

# KafkaServer BrokerState values (org.apache.kafka.metadata.BrokerState)
NOT_RUNNING, STARTING, RECOVERY, RUNNING = 0, 1, 2, 3
# errors that FailedProduceRequestsPerSec does not count (ReplicaManager.appendToLocalLog)
KNOWN_PRODUCE_ERRORS = {"UNKNOWN_TOPIC_OR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "MESSAGE_TOO_LARGE",
                        "RECORD_LIST_TOO_LARGE", "CORRUPT_MESSAGE", "KAFKA_STORAGE_ERROR"}


@dataclass
class BrokerDisk:
    """What survives a broker restart: partition logs (each in one of log.dirs), the metadata log,
    HW checkpoints."""
    logs: dict[TopicPartition, Log] = field(default_factory=dict)
    dirs: dict[TopicPartition, str] = field(default_factory=dict)
    quorum: QuorumStore = field(default_factory=lambda: QuorumStore(Log()))
    hw_checkpoint: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass
class _DelayedProduce:
    required: dict[TopicPartition, int]           # tp -> offset the HW must reach
    results: dict[TopicPartition, PartitionProduceResult]
    reply: Callable[[Any], None]
    done: bool = False
    expiry: Any = None                            # the timeout timer, cancelled on completion


@dataclass
class _DelayedFetch:
    req: FetchRequest
    reply: Callable[[Any], None]
    done: bool = False


class BrokerNode(ServerNode):
    role = "broker"
    apis = BROKER_APIS
    listener = "PLAINTEXT"
    # BrokerLifecycleManager (registration and heartbeats), AlterPartitionManager, forwarding,
    # directory assignments (NodeToControllerChannelManagers, tagged with the broker's id), the
    # raft observer's channel, and the inter-broker senders that stay idle without transactions or
    # share groups
    client_channels = (("heartbeat-metrics", True), ("alter-partition-metrics", True), ("forwarding-metrics", True),
                       ("directory-assignments-metrics", True), ("raft-channel-metrics", False),
                       ("txn-marker-channel-metrics", False), ("AddPartitionsManager-channel-metrics", False),
                       ("Persister-channel-metrics", False))

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str, voters: dict[int, str], broker_names: dict[int, str],
                 wall_base_ms: float) -> None:
        super().__init__(node_id, name, sched, net, rng, config, cluster_id)
        self.voters = voters
        self.broker_names = broker_names
        self._broker_ids = {name: i for i, name in broker_names.items()}
        self.wall_base_ms = wall_base_ms
        self.disk = BrokerDisk()
        self.fetch_delay_ms = 0.0          # fault: a slow follower
        self.disk_delay_ms = 0.0           # fault: a slow disk (every append waits this long)
        self.serve(ProduceRequest, "Produce", self._on_produce,
                   cost_ms=lambda r: 0.02 + sum(b.size for _, b in r.batches) / 200_000.0 + self.disk_delay_ms,
                   size=lambda r: sum(b.size for _, b in r.batches) + 100,
                   errors_of=_error_counts)
        self.serve(FetchRequest, "Fetch", self._on_fetch,
                   cost_ms=lambda r: 0.02 + 0.002 * len(r.partitions),
                   metric_names=lambda r: ("Fetch", "FetchFollower" if r.replica_id >= 0 else "FetchConsumer"),
                   response_size=lambda resp: 100 + sum(b.size for d in getattr(resp, "partitions", {}).values()
                                                        for b in d.batches),
                   errors_of=_error_counts)
        self.serve(MetadataRequest, "Metadata", self._on_metadata)
        self.serve(ListOffsetsRequest, "ListOffsets", self._on_list_offsets)
        GroupCoordinator.serve_on(self)


    def channel_of(self, request: Any, dst: str) -> tuple[str, dict[str, str]] | None:
        own = {"BrokerId": str(self.node_id)}
        if isinstance(request, (BrokerRegistrationRequest, BrokerHeartbeatRequest)):
            return "heartbeat-metrics", own
        if isinstance(request, AlterPartitionRequest):
            return "alter-partition-metrics", own
        if isinstance(request, FetchRequest):
            # one replica fetcher thread (num.replica.fetchers=1) per leader
            return "replica-fetcher-metrics", {"broker-id": str(self._broker_ids.get(dst, -1)), "fetcher-id": "0"}
        if isinstance(request, RAFT_REQUESTS):
            return "raft-channel-metrics", {}
        return None
    def wall_ms(self) -> float:
        return self.wall_base_ms + self.now()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def on_start(self) -> None:
        super().on_start()
        self.state = STARTING
        self.image = MetadataImage()
        self.broker_epoch = -1
        self.fenced = True
        self.partitions: dict[TopicPartition, Partition] = {}
        self.fetchers: dict[int, set[TopicPartition]] = {}
        self._fetcher_running: set[int] = set()
        self._lag: dict[TopicPartition, int] = {}
        self._delayed_produce: list[_DelayedProduce] = []
        self._delayed_fetch: dict[TopicPartition, list[_DelayedFetch]] = {}
        self.counters = {"metadata-load-error-count": 0, "metadata-apply-error-count": 0}
        self.log_dirs: tuple[str, ...] = tuple(self.cfg["log.dirs"].split(","))
        # a failed directory stays offline until the process restarts, as in Kafka
        self.offline_dirs: set[str] = set()
        self.offline: set[TopicPartition] = set()
        self._register_broker_metrics()
        self.raft = RaftClient(self, self.node_id, self.voters, self.cfg, self.disk.quorum, self.mbeans,
                               self._on_metadata_commit, lambda: None)
        self.coordinator = GroupCoordinator(self)
        self.raft.start()
        self._registering = False
        self._register()
        self.every(self.cfg["replica.lag.time.max.ms"] / 2, self._shrink_isrs)
        self.every(5000.0, self._checkpoint_hw)

    def on_kill(self) -> None:
        self.state = NOT_RUNNING
        self.partitions = {}

    def _checkpoint_hw(self) -> None:
        self.disk.hw_checkpoint = {tp: p.high_watermark for tp, p in self.partitions.items()}

    # -- metrics ---------------------------------------------------------------------------------------------
    def _register_broker_metrics(self) -> None:
        m = self.mbeans
        m.gauge("kafka.server", "KafkaServer", "BrokerState", lambda: self.state, java_type="java.lang.Byte")
        m.gauge("kafka.server", "KafkaServer", "ClusterId", lambda: self.cluster_id, java_type=STRING)
        m.gauge("kafka.server", "KafkaServer", "yammer-metrics-count",
                lambda: sum(1 for _, b in m.items() if b.kind != "kafka-metrics"), java_type=INT)
        rm = ("kafka.server", "ReplicaManager")
        leaders = lambda: [p for p in self.partitions.values() if p.is_leader]  # noqa: E731
        m.gauge(*rm, "LeaderCount", lambda: len(leaders()), java_type=INT)
        m.gauge(*rm, "PartitionCount", lambda: len(self.partitions), java_type=INT)
        m.gauge(*rm, "OfflineReplicaCount", lambda: len(self.offline), java_type=INT)
        m.gauge(*rm, "UnderReplicatedPartitions",
                lambda: sum(1 for p in leaders() if len(p.isr) < len(p.replicas)), java_type=INT)
        m.gauge(*rm, "UnderMinIsrPartitionCount",
                lambda: sum(1 for p in leaders() if len(p.isr) < p.effective_min_isr), java_type=INT)
        m.gauge(*rm, "AtMinIsrPartitionCount",
                lambda: sum(1 for p in leaders() if len(p.isr) == p.effective_min_isr), java_type=INT)
        m.gauge(*rm, "ReassigningPartitions", lambda: 0, java_type=INT)
        m.gauge(*rm, "PartitionsWithLateTransactionsCount", lambda: 0, java_type=INT)
        m.gauge(*rm, "ProducerIdCount", lambda: sum(len(p.producers) for p in self.partitions.values()), java_type=INT)
        self.isr_shrinks = m.meter(*rm, "IsrShrinksPerSec", "shrinks")
        self.isr_expands = m.meter(*rm, "IsrExpandsPerSec", "expands")
        self.failed_isr_updates = m.meter(*rm, "FailedIsrUpdatesPerSec", "failedUpdates")
        fm = ("kafka.server", "ReplicaFetcherManager")
        tags = {"clientId": "Replica"}
        m.gauge(*fm, "MaxLag", lambda: max(self._lag.values(), default=0), tags, java_type=LONG)
        m.gauge(*fm, "MinFetchRate", self._min_fetch_rate, tags, java_type=DOUBLE)
        m.gauge(*fm, "FailedPartitionsCount", lambda: 0, tags, java_type=INT)
        m.gauge(*fm, "DeadThreadCount", lambda: 0, tags, java_type=INT)
        for op in ("Produce", "Fetch"):
            m.gauge("kafka.server", "DelayedOperationPurgatory", "PurgatorySize", lambda op=op: self._purgatory(op),
                    {"delayedOperation": op}, java_type=INT)
            m.gauge("kafka.server", "DelayedOperationPurgatory", "NumDelayedOperations",
                    lambda op=op: self._purgatory(op, ops=True), {"delayedOperation": op}, java_type=INT)
        m.gauge("kafka.log", "LogManager", "OfflineLogDirectoryCount", lambda: len(self.offline_dirs), java_type=INT)
        for d in self.log_dirs:
            m.gauge("kafka.log", "LogManager", "LogDirectoryOffline", lambda d=d: int(d in self.offline_dirs),
                    {"logDirectory": d}, java_type=INT)
        bm = m.kafka_metrics("broker-metadata-metrics")
        bm.add_value("last-applied-record-offset", lambda: self.image.offset)
        bm.add_value("last-applied-record-timestamp", lambda: self.image.timestamp_ms)
        bm.add_value("last-applied-record-lag-ms",
                     lambda: max(0.0, self.wall_ms() - self.image.timestamp_ms) if self.image.offset >= 0 else 0.0)
        bm.add_value("metadata-load-error-count", lambda: self.counters["metadata-load-error-count"])
        bm.add_value("metadata-apply-error-count", lambda: self.counters["metadata-apply-error-count"])
        self._batch_time = m.histogram("kafka.server", "BrokerMetadataListener", "MetadataBatchProcessingTimeUs")
        self._batch_sizes = m.histogram("kafka.server", "BrokerMetadataListener", "MetadataBatchSizes")
        m.gauge("kafka.server", "MetadataLoader", "CurrentMetadataVersion", lambda: 25, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "CurrentControllerId", lambda: self.raft.leader_id, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "HandleLoadSnapshotCount", lambda: 0, java_type=LONG)

    def topic_meter(self, name: str, topic: str | None, n: float = 1) -> None:
        """Mark a BrokerTopicMetrics meter for all topics and for the topic (created on first use)."""
        now = self.now()
        event = "bytes" if "Bytes" in name else "messages" if name == "MessagesInPerSec" else "requests"
        self.mbeans.meter("kafka.server", "BrokerTopicMetrics", name, event).mark(now, n)
        if topic is not None:
            self.mbeans.meter("kafka.server", "BrokerTopicMetrics", name, event, {"topic": topic}).mark(now, n)

    def _purgatory(self, op: str, ops: bool = False) -> int:
        if op == "Produce":
            live = [d for d in self._delayed_produce if not d.done]
            return len(live) if ops else sum(len(d.required) for d in live)
        watched = [d for ds in self._delayed_fetch.values() for d in ds if not d.done]
        return len({id(d) for d in watched}) if ops else len(watched)

    def _register_partition_metrics(self, tp: TopicPartition) -> None:
        m = self.mbeans
        tags = {"topic": tp.topic, "partition": str(tp.partition)}
        part = lambda: self.partitions.get(tp)  # noqa: E731

        def leader_only(fn: Callable[[Partition], int]) -> Callable[[], int]:
            return lambda: fn(p) if (p := part()) is not None and p.is_leader else 0

        if ObjectName.kafka("kafka.cluster", "Partition", "UnderReplicated", tags) in m:
            return
        m.gauge("kafka.cluster", "Partition", "UnderReplicated", leader_only(lambda p: int(len(p.isr) < len(p.replicas))), tags, INT)
        m.gauge("kafka.cluster", "Partition", "InSyncReplicasCount", leader_only(lambda p: len(p.isr)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "ReplicasCount", leader_only(lambda p: len(p.replicas)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "UnderMinIsr", leader_only(lambda p: int(len(p.isr) < p.effective_min_isr)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "AtMinIsr", leader_only(lambda p: int(len(p.isr) == p.effective_min_isr)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "LastStableOffsetLag", leader_only(lambda p: p.log.end_offset - p.high_watermark), tags, LONG)
        log = self.disk.logs[tp]
        m.gauge("kafka.log", "Log", "Size", lambda: log.size, tags, LONG)
        m.gauge("kafka.log", "Log", "LogEndOffset", lambda: log.end_offset, tags, LONG)
        m.gauge("kafka.log", "Log", "LogStartOffset", lambda: log.start_offset, tags, LONG)
        m.gauge("kafka.log", "Log", "NumLogSegments", lambda: log.num_segments, tags, INT)

    # -- log directories ---------------------------------------------------------------------------------------
    def _log_dir_for(self, tp: TopicPartition) -> str | None:
        """The directory holding tp's log: where it already is, else the live directory with the
        fewest logs (LogManager's placement); None when that directory is offline."""
        placed = self.disk.dirs.get(tp)
        if placed is None:
            live = [d for d in self.log_dirs if d not in self.offline_dirs]
            counts = {d: 0 for d in live}
            for d in self.disk.dirs.values():
                if d in counts:
                    counts[d] += 1
            placed = min(live, key=lambda d: (counts[d], live.index(d)))
            self.disk.dirs[tp] = placed
        return None if placed in self.offline_dirs else placed

    def fail_log_dir(self, log_dir: str | None = None) -> str:
        """A disk under one of log.dirs fails (an I/O error on it): its replicas go offline here and
        the next heartbeat tells the controller, which moves their leadership and ISR membership
        elsewhere. Losing the last live directory halts the broker, as Kafka does."""
        live = [d for d in self.log_dirs if d not in self.offline_dirs]
        log_dir = log_dir or (live[0] if live else None)
        if log_dir not in live:
            raise ValueError(f"{self.name}: {log_dir!r} is not a live log directory (live: {', '.join(live) or 'none'})")
        self.offline_dirs.add(log_dir)
        if len(live) == 1:
            self.kill()
            return log_dir
        for tp in sorted(tp for tp, d in self.disk.dirs.items() if d == log_dir and tp in self.partitions):
            part = self.partitions.pop(tp)
            self.offline.add(tp)
            self._remove_from_fetchers(tp)
            self._complete_delayed_produce(tp)
            if part.is_leader:
                self.coordinator.on_leadership(tp, False)
            # the Partition and Log gauges go with the replica, as Kafka removes them
            gone = [ObjectNamePattern(f"kafka.{domain}:type={kind},topic={tp.topic},partition={tp.partition},*")
                    for domain, kind in (("cluster", "Partition"), ("log", "Log"))]
            for name in list(self.mbeans.names(gone)):
                self.mbeans.unregister(name)
        return log_dir

    # -- registration and heartbeats -------------------------------------------------------------------------------
    def _controller(self) -> str | None:
        return self.raft.leader_name()

    def _register(self) -> None:
        """BrokerRegistration with the active controller, retried until it succeeds."""
        if self.broker_epoch >= 0 or self._registering:
            return
        target = self._controller()
        if target is None:
            self.after(100.0, self._register)
            return
        self._registering = True
        self.state = RECOVERY if self.state == STARTING else self.state

        def done(resp: Any) -> None:
            self._registering = False
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.after(100.0, self._register)
                return
            self.broker_epoch = resp.broker_epoch
            self._heartbeat()

        self.request(target, BrokerRegistrationRequest(self.node_id, self.incarnation), done,
                     self.cfg["controller.quorum.request.timeout.ms"])

    def _heartbeat(self) -> None:
        target = self._controller()
        interval = self.cfg["broker.heartbeat.interval.ms"]
        if target is None:
            self.after(100.0, self._heartbeat)
            return
        epoch = self.broker_epoch

        def done(resp: Any) -> None:
            if epoch != self.broker_epoch:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_CONTROLLER", "REQUEST_TIMED_OUT"):
                self.after(100.0, self._heartbeat)
                return
            if resp.error == "STALE_BROKER_EPOCH":
                self.broker_epoch = -1      # the controller lost our registration: register again
                self._register()
                return
            self.fenced = resp.is_fenced
            if not resp.is_fenced:
                self.state = RUNNING
            self.after(interval, self._heartbeat)

        self.request(target, BrokerHeartbeatRequest(self.node_id, epoch, self.image.offset,
                                                    tuple(sorted(self.offline_dirs)), tuple(sorted(self.offline))),
                     done, interval)

    # -- metadata ------------------------------------------------------------------------------------------------
    def _on_metadata_commit(self, batches: list[Batch]) -> None:
        start = self.now()
        changed: set[TopicPartition] = set()
        for batch in batches:
            for i, record in enumerate(batch.records or ()):
                try:
                    self.image.apply(record, batch.base_offset + i, self.wall_base_ms + batch.timestamp_ms)
                except (KeyError, IndexError, AssertionError):
                    self.counters["metadata-apply-error-count"] += 1
                    continue
                if isinstance(record, (PartitionRecord, PartitionChangeRecord)):
                    changed.add(TopicPartition(record.topic, record.partition))
                elif isinstance(record, (RegisterBrokerRecord, BrokerRegistrationChangeRecord)) \
                        and record.broker_id == self.node_id:
                    reg = self.image.brokers.get(self.node_id)
                    if reg is not None and reg.epoch == self.broker_epoch and not reg.fenced:
                        self.state = RUNNING
            self._batch_sizes.update(batch.count, self.now())
        self._batch_time.update((self.now() - start) * 1000.0, self.now())
        for tp in sorted(changed):
            self._apply_partition(tp)

    def _apply_partition(self, tp: TopicPartition) -> None:
        state = self.image.partition(*tp)
        if state is None or self.node_id not in state.replicas or tp in self.offline:
            return
        part = self.partitions.get(tp)
        if part is None:
            if self._log_dir_for(tp) is None:
                self.offline.add(tp)
                return
            log = self.disk.logs.setdefault(tp, Log(self.cfg["log.segment.bytes"]))
            part = Partition(tp, log, self.node_id, self.disk.hw_checkpoint.get(tp, 0))
            self.partitions[tp] = part
            self._register_partition_metrics(tp)
        topic_cfg = self.image.topics[tp.topic].configs
        min_isr = int(topic_cfg.get("min.insync.replicas", self.cfg["min.insync.replicas"]))  # type: ignore[arg-type]
        role = part.update(state.replicas, state.isr, state.leader, state.leader_epoch, state.partition_epoch,
                           min_isr, self.cfg["replica.lag.time.max.ms"], self.now())
        if role == "leader":
            self._remove_from_fetchers(tp)
            if part.maybe_advance_hw(self.now()):
                self._on_hw_moved(tp)
            self.coordinator.on_leadership(tp, True)
        elif role == "follower":
            self._remove_from_fetchers(tp)
            self._complete_delayed_produce(tp)
            self.coordinator.on_leadership(tp, False)
            if state.leader >= 0:
                self._add_to_fetcher(state.leader, tp)
        elif part.is_leader:
            # ISR changed: the HW may move (shrink) and waiting acks=all requests may complete or fail
            if part.maybe_advance_hw(self.now()):
                self._on_hw_moved(tp)
            self._complete_delayed_produce(tp)

    def _on_metadata(self, src: str, req: MetadataRequest, reply: Callable) -> None:
        topics: dict[str, tuple[PartitionMetadata, ...]] = {}
        errors: dict[str, str] = {}
        for name in req.topics:
            t = self.image.topics.get(name)
            if t is None:
                errors[name] = "UNKNOWN_TOPIC_OR_PARTITION"
                continue
            topics[name] = tuple(PartitionMetadata(p.leader, p.leader_epoch, p.replicas, p.isr) for p in t.partitions)
        live = {b: self.broker_names[b] for b, r in self.image.brokers.items() if not r.fenced}
        reply(MetadataResponse(live, topics, errors))

    def _on_list_offsets(self, src: str, req: ListOffsetsRequest, reply: Callable) -> None:
        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            reply(ListOffsetsResponse("NOT_LEADER_OR_FOLLOWER"))
            return
        reply(ListOffsetsResponse("NONE", p.log.start_offset if req.timestamp == -2 else p.high_watermark))

    # -- produce -------------------------------------------------------------------------------------------------
    def _on_produce(self, src: str, req: ProduceRequest, reply: Callable) -> None:
        now = self.now()
        results: dict[TopicPartition, PartitionProduceResult] = {}
        required: dict[TopicPartition, int] = {}
        marks: dict[tuple[str, str], int] = {}      # (meter, topic) -> amount, marked once per request
        appended_tps: list[TopicPartition] = []
        moved_hw: list[TopicPartition] = []

        def mark(meter: str, topic: str, n: int = 1) -> None:
            marks[(meter, topic)] = marks.get((meter, topic), 0) + n

        for tp, batch in req.batches:
            mark("TotalProduceRequestsPerSec", tp.topic)
            p = self.partitions.get(tp)
            error = "KAFKA_STORAGE_ERROR" if tp in self.offline else \
                "UNKNOWN_TOPIC_OR_PARTITION" if p is None and tp.topic not in self.image.topics else \
                "NOT_LEADER_OR_FOLLOWER" if p is None else p.check_produce(req.acks)
            if error != "NONE":
                if error not in KNOWN_PRODUCE_ERRORS:
                    mark("FailedProduceRequestsPerSec", tp.topic)
                results[tp] = PartitionProduceResult(error)
                continue
            assert p is not None
            original_end = p.duplicate_of(batch)
            if original_end is not None:
                # a retry of a batch appended before: not again, but acknowledged only once that
                # first append is replicated, as acks=all promised
                results[tp] = PartitionProduceResult("NONE", original_end - batch.count)
                if req.acks == -1:
                    required[tp] = original_end
                continue
            appended = p.append_as_leader(batch.count, batch.size, now, batch.producer_id, batch.base_sequence,
                                          batch.records)
            mark("MessagesInPerSec", tp.topic, batch.count)
            mark("BytesInPerSec", tp.topic, batch.size)
            results[tp] = PartitionProduceResult("NONE", appended.base_offset)
            if req.acks == -1:
                required[tp] = appended.next_offset
            appended_tps.append(tp)
            if p.maybe_advance_hw(now):
                moved_hw.append(tp)
        # after the whole request, so a waiting follower fetch is answered once with every partition
        self._on_hw_moved(*moved_hw)
        self._wake_fetches(*appended_tps, follower=True)
        for (meter, topic), n in marks.items():
            self.topic_meter(meter, topic, n)
        if req.acks == 0:
            # Kafka sends no response, but the request still completes and updates its request metrics
            reply(ProduceResponse(results))
            return
        self._await_replication(required, results, reply, req.timeout_ms)

    def _await_replication(self, required: dict[TopicPartition, int],
                           results: dict[TopicPartition, PartitionProduceResult],
                           reply: Callable[[Any], None], timeout_ms: float) -> None:
        """Answer once the HW of every partition reached its required offset (acks=all), or at timeout."""
        if not required:
            reply(ProduceResponse(results))
            return
        delayed = _DelayedProduce(required, results, reply)
        self._delayed_produce.append(delayed)
        for tp in list(required):
            self._complete_delayed_produce(tp)
        if not delayed.done:
            delayed.expiry = self.after(timeout_ms, lambda: self._expire_produce(delayed))

    def append_internal(self, tp: TopicPartition, records: tuple, done: Callable[[str], None]) -> None:
        """Append coordinator records (offset commits) to a partition led here, waiting for the ISR."""
        p = self.partitions.get(tp)
        if p is None or not p.is_leader:
            done("NOT_COORDINATOR")
            return
        batch = p.append_as_leader(len(records), 80 * len(records), self.now(), -1, -1, records)
        if p.maybe_advance_hw(self.now()):
            self._on_hw_moved(tp)
        self._wake_fetches(tp, follower=True)

        def replicated(resp: ProduceResponse) -> None:
            error = resp.results.get(tp, PartitionProduceResult()).error
            done("NOT_COORDINATOR" if error == "NOT_LEADER_OR_FOLLOWER" else error)

        self._await_replication({tp: batch.next_offset}, {}, replicated, self.cfg["request.timeout.ms"])

    def _complete_delayed_produce(self, tp: TopicPartition) -> None:
        for d in self._delayed_produce:
            if d.done or tp not in d.required:
                continue
            p = self.partitions.get(tp)
            if p is None or not p.is_leader:
                d.results[tp] = PartitionProduceResult("NOT_LEADER_OR_FOLLOWER")
                del d.required[tp]
            elif p.high_watermark >= d.required[tp]:
                if len(p.isr) < p.effective_min_isr:
                    d.results[tp] = PartitionProduceResult("NOT_ENOUGH_REPLICAS_AFTER_APPEND")
                del d.required[tp]
            if not d.required:
                d.done = True
                if d.expiry is not None:
                    d.expiry.cancel()
                d.reply(ProduceResponse(d.results))
        self._delayed_produce = [d for d in self._delayed_produce if not d.done]

    def _expire_produce(self, d: _DelayedProduce) -> None:
        if d.done:
            return
        d.done = True
        now = self.now()
        # Kafka's DelayedProduceMetrics registers its meters on the first expiration: the
        # aggregate one and one per partition whose acks were still pending
        self.mbeans.meter("kafka.server", "DelayedProduceMetrics", "ExpiresPerSec", "requests").mark(now)
        for tp in d.required:
            self.mbeans.meter("kafka.server", "DelayedProduceMetrics", "ExpiresPerSec", "requests",
                              {"topic": tp.topic, "partition": str(tp.partition)}).mark(now)
            d.results[tp] = PartitionProduceResult("REQUEST_TIMED_OUT")
        d.reply(ProduceResponse(d.results))
        self._delayed_produce = [x for x in self._delayed_produce if not x.done]

    # -- fetch (followers and consumers) --------------------------------------------------------------------------
    def _on_fetch(self, src: str, req: FetchRequest, reply: Callable) -> None:
        follower = req.replica_id >= 0
        now = self.now()
        if follower:
            moved_hw = []
            for tp, fp in req.partitions.items():
                p = self.partitions.get(tp)
                if p is None or not p.is_leader or fp.current_leader_epoch != p.leader_epoch:
                    continue
                if p.diverging(fp.fetch_offset, fp.last_fetched_epoch) is not None:
                    continue
                moved, propose = p.update_follower(req.replica_id, fp.fetch_offset, now)
                if moved:
                    moved_hw.append(tp)
                if propose is not None:
                    self._alter_isr(p, propose)
            # after the whole request: a waiting consumer fetch is answered once, with every partition
            self._on_hw_moved(*moved_hw)
        resp = self._read(req)
        if any(d.batches or d.error != "NONE" or d.diverging for d in resp.partitions.values()) or req.max_wait_ms <= 0:
            reply(resp)
            return
        delayed = _DelayedFetch(req, reply)
        for tp in req.partitions:
            self._delayed_fetch.setdefault(tp, []).append(delayed)
        self.after(req.max_wait_ms, lambda: self._complete_fetch(delayed))

    def _read(self, req: FetchRequest) -> FetchResponse:
        follower = req.replica_id >= 0
        out: dict[TopicPartition, FetchPartitionData] = {}
        budget = req.max_bytes
        reads: dict[str, int] = {}          # partitions read per topic (TotalFetchRequestsPerSec)
        sent: dict[str, int] = {}           # bytes sent to consumers per topic (BytesOutPerSec)
        replicated = 0
        for tp, fp in req.partitions.items():
            p = self.partitions.get(tp)
            if tp in self.offline:
                out[tp] = FetchPartitionData("KAFKA_STORAGE_ERROR")
                continue
            if p is None or not p.is_leader:
                out[tp] = FetchPartitionData("NOT_LEADER_OR_FOLLOWER")
                continue
            if fp.current_leader_epoch >= 0 and fp.current_leader_epoch != p.leader_epoch:
                out[tp] = FetchPartitionData("FENCED_LEADER_EPOCH" if fp.current_leader_epoch < p.leader_epoch
                                             else "UNKNOWN_LEADER_EPOCH")
                continue
            if follower:
                div = p.diverging(fp.fetch_offset, fp.last_fetched_epoch)
                if div is not None:
                    out[tp] = FetchPartitionData("NONE", p.high_watermark, p.log.end_offset, diverging=div)
                    continue
            log = p.log
            if fp.fetch_offset > log.end_offset or fp.fetch_offset < log.start_offset:
                out[tp] = FetchPartitionData("OFFSET_OUT_OF_RANGE", p.high_watermark, log.end_offset)
                continue
            reads[tp.topic] = reads.get(tp.topic, 0) + 1
            if budget <= 0 or fp.fetch_offset >= (log.end_offset if follower else p.high_watermark):
                out[tp] = FetchPartitionData("NONE", p.high_watermark, log.end_offset)
                continue
            batches = tuple(log.read(fp.fetch_offset, budget, None if follower else p.high_watermark))
            nbytes = sum(b.size for b in batches)
            budget -= nbytes
            if follower:
                replicated += nbytes
            elif nbytes:
                sent[tp.topic] = sent.get(tp.topic, 0) + nbytes
            out[tp] = FetchPartitionData("NONE", p.high_watermark, log.end_offset, batches)
        for topic, n in reads.items():
            self.topic_meter("TotalFetchRequestsPerSec", topic, n)
        for topic, n in sent.items():
            self.topic_meter("BytesOutPerSec", topic, n)
        if replicated:
            self.topic_meter("ReplicationBytesOutPerSec", None, replicated)
        return FetchResponse(out)

    def _complete_fetch(self, d: _DelayedFetch) -> None:
        if d.done:
            return
        d.done = True
        for tp in d.req.partitions:
            waiting = self._delayed_fetch.get(tp)
            if waiting:
                self._delayed_fetch[tp] = [x for x in waiting if not x.done]
        d.reply(self._read(d.req))

    def _wake_fetches(self, *tps: TopicPartition, follower: bool) -> None:
        """Answer the waiting fetches (of followers, or of consumers) that read one of tps."""
        woken: list[_DelayedFetch] = []
        for tp in tps:
            for d in self._delayed_fetch.get(tp, ()):
                if not d.done and (d.req.replica_id >= 0) == follower and d not in woken:
                    woken.append(d)
        for d in woken:
            self._complete_fetch(d)

    def _on_hw_moved(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._complete_delayed_produce(tp)
        self._wake_fetches(*tps, follower=False)

    # -- ISR changes ------------------------------------------------------------------------------------------------
    def _shrink_isrs(self) -> None:
        now = self.now()
        lag = self.cfg["replica.lag.time.max.ms"]
        for p in list(self.partitions.values()):
            new_isr = p.out_of_sync(now, lag)
            if new_isr is not None:
                self._alter_isr(p, new_isr)

    def _alter_isr(self, p: Partition, new_isr: tuple[int, ...]) -> None:
        target = self._controller()
        if target is None or self.broker_epoch < 0:
            return
        p.pending_isr = new_isr
        shrink = len(new_isr) < len(p.isr)
        req = AlterPartitionRequest(self.node_id, self.broker_epoch, p.tp, p.leader_epoch, p.partition_epoch, new_isr)

        def done(resp: Any) -> None:
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.failed_isr_updates.mark(self.now())
                if p.pending_isr == new_isr:
                    p.pending_isr = None
                return
            (self.isr_shrinks if shrink else self.isr_expands).mark(self.now())

        self.request(target, req, done, self.cfg["controller.quorum.request.timeout.ms"])

    # -- replica fetchers ---------------------------------------------------------------------------------------------
    def _add_to_fetcher(self, leader: int, tp: TopicPartition) -> None:
        self.fetchers.setdefault(leader, set()).add(tp)
        if leader not in self._fetcher_running:
            self._fetcher_running.add(leader)
            self.after(0.0, lambda: self._fetch_from(leader))
        name = _lag_bean(leader, tp)
        if name not in self.mbeans:
            self.mbeans.register(name, Gauge(lambda: self._lag.get(tp, 0), LONG))

    def _remove_from_fetchers(self, tp: TopicPartition) -> None:
        for leader, tps in self.fetchers.items():
            if tp in tps:
                tps.discard(tp)
                self.mbeans.unregister(_lag_bean(leader, tp))
        self._lag.pop(tp, None)

    def _fetcher_stats(self, leader: int, name: str, event: str) -> Any:
        """FetcherStats meters of the fetcher thread for one leader."""
        return self.mbeans.meter("kafka.server", "FetcherStats", name, event,
                                 {"clientId": f"ReplicaFetcherThread-0-{leader}", "brokerHost": self.broker_names[leader],
                                  "brokerPort": "9092"})

    def _min_fetch_rate(self) -> float:
        """AbstractFetcherManager MinFetchRate: the slowest fetcher thread's request rate."""
        now = self.now()
        rates = [self._fetcher_stats(leader, "RequestsPerSec", "requests").one_minute_rate(now)
                 for leader, tps in self.fetchers.items() if tps]
        return min(rates, default=0.0)

    def _fetch_from(self, leader: int) -> None:
        tps = self.fetchers.get(leader)
        if not tps:
            self._fetcher_running.discard(leader)
            return
        self._fetcher_stats(leader, "RequestsPerSec", "requests").mark(self.now())
        parts = {tp: FetchPartition(self.partitions[tp].log.end_offset, self.partitions[tp].log.last_epoch,
                                    self.partitions[tp].leader_epoch) for tp in sorted(tps)}
        req = FetchRequest(self.node_id, parts, self.cfg["replica.fetch.wait.max.ms"], self.cfg["replica.fetch.max.bytes"])
        self.request(self.broker_names[leader], req, lambda r: self._on_fetch_response(leader, r),
                     self.cfg["replica.fetch.wait.max.ms"] + self.cfg["request.timeout.ms"])

    def _on_fetch_response(self, leader: int, resp: Any) -> None:
        backoff = 0.0
        wrote = False
        if isinstance(resp, RequestFailed):
            backoff = self.cfg["replica.fetch.backoff.ms"]
        else:
            for tp, data in resp.partitions.items():
                p = self.partitions.get(tp)
                if p is None or p.leader != leader or tp not in self.fetchers.get(leader, ()):
                    continue
                if data.error != "NONE":
                    backoff = self.cfg["replica.fetch.backoff.ms"]
                    continue
                if data.diverging is not None:
                    p.truncate_to(min(data.diverging[1], p.log.end_offset))
                    continue
                appended = p.append_as_follower(data.batches, data.high_watermark)
                if appended:
                    wrote = True
                    nbytes = sum(b.size for b in data.batches)
                    self.topic_meter("ReplicationBytesInPerSec", None, nbytes)
                    self._fetcher_stats(leader, "BytesPerSec", "bytes").mark(self.now(), nbytes)
                self._lag[tp] = max(0, data.log_end_offset - p.log.end_offset)
        # the fetcher thread appends what it fetched before its next fetch: a slow disk slows it down
        delay = max(backoff, self.fetch_delay_ms) + (self.disk_delay_ms if wrote else 0.0)
        self.after(delay, lambda: self._fetch_from(leader))


def _lag_bean(leader: int, tp: TopicPartition) -> ObjectName:
    return ObjectName.kafka("kafka.server", "FetcherLagMetrics", "ConsumerLag",
                            {"clientId": f"ReplicaFetcherThread-0-{leader}", "topic": tp.topic,
                             "partition": str(tp.partition)})


def _error_counts(resp: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    items = resp.results.values() if isinstance(resp, ProduceResponse) else resp.partitions.values()
    for r in items:
        counts[r.error] = counts.get(r.error, 0) + 1
    return counts or {"NONE": 1}
