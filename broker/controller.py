"""A KRaft controller (process.roles=controller): raft voter and, when leader, the active
QuorumController that registers, fences and unfences brokers, creates topics, elects partition
leaders and changes ISRs by writing records to the metadata log.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from broker.log import Batch, Log
from broker.mbeans.yammer import INT, LONG, STRING
from broker.metadata import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    MetadataImage,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    PartitionState,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from broker.net import Network
from broker.node import Node
from broker.protocol import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from broker.raft import (
    RAFT_REQUESTS,
    BeginQuorumEpochRequest,
    QuorumStore,
    RaftClient,
    RaftFetchRequest,
    VoteRequest,
)
from broker.sched import Scheduler
from broker.server import ServerNode
from broker.structs import TopicPartition
from broker.versions import DEFAULT_LINE, LINES, KafkaLine
from kafka_common.names import ObjectName

METADATA_VERSION_FEATURE_LEVEL = 25     # 4.0-IV3
EVENT_COST_MS = 0.02                    # controller event handling time without a fault
UNREADABLE_TOPIC = "\x00"                # no topic can have this name (Kafka allows [a-zA-Z0-9._-])


class ControllerNode(ServerNode):
    role = "controller"
    listener = "CONTROLLER"
    # the raft channel to the other voters, and ControllerRegistrationManager's channel
    client_channels = (("raft-channel-metrics", False), ("registration-metrics", True))

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str, voters: dict[int, str], wall_base_ms: float,
                 kafka: KafkaLine = LINES[DEFAULT_LINE], process: Node | None = None) -> None:
        super().__init__(node_id, name, sched, net, rng, config, cluster_id, kafka, process)
        self.voters = voters
        self.wall_base_ms = wall_base_ms
        self.store = QuorumStore(Log(io=self.disk_io))
        self.event_delay_ms = 0.0          # fault: a slow controller event loop
        self.on_activate: list[Callable[[ControllerNode], None]] = []
        self.serve(VoteRequest, "Vote", lambda s, r, reply: self.raft.on_vote(r, reply))
        self.serve(BeginQuorumEpochRequest, "BeginQuorumEpoch",
                   lambda s, r, reply: self.raft.on_begin_quorum_epoch(r, reply))
        self.serve(RaftFetchRequest, "Fetch", lambda s, r, reply: self.raft.on_fetch(r, reply),
                   metric_names=lambda r: ("Fetch", "FetchFollower"))
        self.serve(BrokerRegistrationRequest, "BrokerRegistration", self._on_registration)
        self.serve(BrokerHeartbeatRequest, "BrokerHeartbeat", self._on_heartbeat)
        self.serve(CreateTopicsRequest, "CreateTopics", self._on_create_topics)
        self.serve(DeleteTopicsRequest, "DeleteTopics", self._on_delete_topics)
        self.serve(AlterPartitionRequest, "AlterPartition", self._on_alter_partition)


    def channel_of(self, request: Any, dst: str) -> tuple[str, dict[str, str]] | None:
        return ("raft-channel-metrics", {}) if isinstance(request, RAFT_REQUESTS) else None
    # -- lifecycle -------------------------------------------------------------------------------------
    def on_start(self) -> None:
        super().on_start()
        self.image = MetadataImage()
        self.working: MetadataImage | None = None
        self.active = False
        self._active_token = 0
        self._pending: list[tuple[int, Callable[[], None]]] = []
        self._last_contact: dict[int, float] = {}
        # replicas on failed log directories, as each broker's heartbeats report them
        self._offline_replicas: dict[int, frozenset[TopicPartition]] = {}
        self._queue_free_at = self.now()
        self.counters = {"NewActiveControllersCount": 0, "TimedOutBrokerHeartbeatCount": 0,
                         "EventQueueOperationsStartedCount": 0, "EventQueueOperationsTimedOutCount": 0,
                         "MetadataErrorCount": 0}
        self.raft = RaftClient(self, self.node_id, self.voters, self.cfg, self.store, self.mbeans,
                               self._on_commit, self._on_leader_change)
        self._register_controller_metrics()
        self.raft.start()
        self._heartbeat_gauges: set[int] = set()      # brokers with a TimeSinceLastHeartbeatReceivedMs gauge
        self._published_brokers: set[int] | None = None   # None until the metadata publishers start
        self.every(1000.0, self._sync_broker_gauges)

    def on_kill(self) -> None:
        self.active = False
        self._pending = []

    def _register_controller_metrics(self) -> None:
        m = self.mbeans
        kc = ("kafka.controller", "KafkaController")
        m.gauge(*kc, "ActiveControllerCount", lambda: int(self.active), java_type=INT)
        # brokers in controlled shutdown: the simulated brokers stop without one (a kill)
        m.gauge(*kc, "ControlledShutdownBrokerCount", lambda: 0, java_type=INT)
        for name in ("ActiveBrokerCount", "FencedBrokerCount", "GlobalTopicCount", "GlobalPartitionCount",
                     "OfflinePartitionsCount", "PreferredReplicaImbalanceCount"):
            m.gauge(*kc, name, lambda name=name: self.image.counts()[name], java_type=INT)
        for name in self.counters:
            m.gauge(*kc, name, lambda name=name: self.counters[name],
                    java_type=INT if name == "MetadataErrorCount" else LONG)
        m.gauge(*kc, "LastAppliedRecordOffset", lambda: self._applied().offset, java_type=LONG)
        m.gauge(*kc, "LastCommittedRecordOffset", lambda: self.raft.high_watermark - 1, java_type=LONG)
        m.gauge(*kc, "LastAppliedRecordTimestamp", self._applied_timestamp_ms, java_type=LONG)
        m.gauge(*kc, "LastAppliedRecordLagMs", self._applied_lag_ms, java_type=LONG)
        self._queue_time = m.histogram("kafka.controller", "ControllerEventManager", "EventQueueTimeMs")
        self._processing_time = m.histogram("kafka.controller", "ControllerEventManager", "EventQueueProcessingTimeMs")
        self._unclean_meter = m.meter("kafka.controller", "ControllerStats", "UncleanLeaderElectionsPerSec", "elections")
        # eligible leader replicas (KIP-966) are off by default: no such election happens here
        m.meter("kafka.controller", "ControllerStats", "ElectionFromEligibleLeaderReplicasPerSec", "elections")
        # 1 when controller.quorum.voters is set but the quorum is dynamic (KIP-853); ours is static
        m.gauge(*kc, "IgnoredStaticVoters", lambda: 0, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "CurrentMetadataVersion", lambda: METADATA_VERSION_FEATURE_LEVEL, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "CurrentControllerId", lambda: self.raft.leader_id, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "HandleLoadSnapshotCount", lambda: 0, java_type=LONG)
        m.gauge("kafka.server", "SnapshotEmitter", "LatestSnapshotGeneratedBytes", lambda: 0, java_type=LONG)
        m.gauge("kafka.server", "SnapshotEmitter", "LatestSnapshotGeneratedAgeMs",
                lambda: int(self.now() - self.start_time_ms), java_type=LONG)
        m.gauge("kafka.server", "ControllerServer", "ClusterId", lambda: self.cluster_id, java_type=STRING)
        for name, read in self.disk_io.gauges(self.kafka.linux_io_all_fields):
            m.gauge("kafka.server", "ControllerServer", name, read, java_type=LONG)
        m.gauge("kafka.server", "ControllerServer", "yammer-metrics-count",
                lambda: sum(1 for _, b in m.items() if b.kind != "kafka-metrics"), java_type=INT)

    def _publish_registrations(self) -> None:
        """ControllerMetadataMetricsPublisher: the publishers start once this controller's metadata has
        caught up with the high watermark, from a snapshot of the image, which adds no per-broker gauge;
        only a broker's first registration seen later, as a delta, adds its BrokerRegistrationState
        (10 fenced, 30 active; 20, controlled shutdown, never happens here). So a restarted controller
        has none for the brokers it already knew, and a broker that registered while a controller was
        still catching up has none there."""
        if self._published_brokers is None:
            if self.image.offset >= self.raft.high_watermark - 1:
                self._published_brokers = set(self.image.brokers)
            return
        kc = ("kafka.controller", "KafkaController")
        for broker_id in self.image.brokers.keys() - self._published_brokers:
            self.mbeans.gauge(*kc, "BrokerRegistrationState", lambda b=broker_id: self._registration_state(b),
                              {"broker": str(broker_id)}, INT)
            self._published_brokers.add(broker_id)

    def _sync_broker_gauges(self) -> None:
        """Kafka 4.1's TimeSinceLastHeartbeatReceivedMs, on the active controller only (capped at
        broker.session.timeout.ms), for the brokers it tracks."""
        m, kc = self.mbeans, ("kafka.controller", "KafkaController")
        wanted = set(self.working.brokers) if self.active and self.working is not None else set()
        for broker_id in self._heartbeat_gauges - wanted:
            m.unregister(ObjectName.kafka(*kc, "TimeSinceLastHeartbeatReceivedMs", {"broker": str(broker_id)}))
        for broker_id in wanted - self._heartbeat_gauges:
            m.gauge(*kc, "TimeSinceLastHeartbeatReceivedMs", lambda b=broker_id: self._since_heartbeat(b),
                    {"broker": str(broker_id)}, INT)
        self._heartbeat_gauges = wanted

    def _registration_state(self, broker_id: int) -> int:
        reg = self.image.brokers.get(broker_id)
        return -1 if reg is None else 10 if reg.fenced else 30

    def _since_heartbeat(self, broker_id: int) -> int:
        last = self._last_contact.get(broker_id, self.now())
        return int(min(self.now() - last, self.cfg["broker.session.timeout.ms"]))

    def _applied(self) -> MetadataImage:
        """OffsetControlManager: the active controller's last applied record is its last scheduled
        append (committed or not); a standby's is the last committed record it replayed."""
        return self.working if self.active and self.working is not None else self.image

    def _applied_timestamp_ms(self) -> int:
        applied = self._applied()
        return int(applied.timestamp_ms) if applied.offset >= 0 else -1

    def _applied_lag_ms(self) -> int:
        # on the active controller a sawtooth up to metadata.max.idle.interval.ms (its NoOp writes)
        # that grows when it stops writing; before any record Kafka's timestamp is -1
        return int(self.wall_ms() - self._applied_timestamp_ms())

    # -- the controller event queue ------------------------------------------------------------------
    def _enqueue(self, fn: Callable[[], object], deadline_ms: float | None = None,
                 on_timeout: Callable[[], None] | None = None) -> None:
        """Run fn on the single controller thread, after the events queued before it."""
        now = self.now()
        start = max(now, self._queue_free_at)
        cost = EVENT_COST_MS + self.event_delay_ms
        self._queue_free_at = start + cost
        self._queue_time.update(start - now, now)
        self.counters["EventQueueOperationsStartedCount"] += 1

        def run() -> None:
            self._processing_time.update(cost, self.now())
            if deadline_ms is not None and start > deadline_ms:
                self.counters["EventQueueOperationsTimedOutCount"] += 1
                if on_timeout:
                    on_timeout()
                return
            fn()

        self.after(start + cost - now, run)

    # -- raft callbacks ----------------------------------------------------------------------------------
    def _on_commit(self, batches: list[Batch]) -> None:
        before = self.image.unclean_elections
        for batch in batches:
            for i, record in enumerate(batch.records or ()):
                try:
                    self.image.apply(record, batch.base_offset + i, self.wall_base_ms + batch.timestamp_ms)
                except (KeyError, IndexError, AssertionError):
                    if self.active:
                        continue        # Kafka's active controller replays nothing: it wrote these records
                    # a standby's replay fault is fatal in Kafka (the metadata loader's fault handler on a
                    # controller): counted, then the process halts; after a restart it replays it again
                    self.counters["MetadataErrorCount"] += 1
                    self.after(0.0, self.process.kill)
                    return
        self._publish_registrations()
        if self.image.unclean_elections > before:
            self._unclean_meter.mark(self.now(), self.image.unclean_elections - before)
        committed = self.raft.high_watermark - 1
        ready = [cb for off, cb in self._pending if off <= committed]
        self._pending = [(off, cb) for off, cb in self._pending if off > committed]
        for cb in ready:
            cb()

    def _on_leader_change(self) -> None:
        if self.raft.leader_id != -1:
            self.counters["NewActiveControllersCount"] += 1
        if self.raft.is_leader and not self.active:
            self._activate()
        elif not self.raft.is_leader and self.active:
            self.active = False
            self.working = None
            self._active_token += 1
            self._pending = []

    def _activate(self) -> None:
        self.active = True
        self._active_token += 1
        token = self._active_token
        working = self.image.copy()
        for batch in self.store.log.read(working.offset + 1, 1 << 62):
            for i, record in enumerate(batch.records or ()):
                if batch.base_offset + i > working.offset:
                    working.apply(record, batch.base_offset + i, self.wall_ms())
        self.working = working
        for listener in self.on_activate:
            listener(self)
        now = self.now()
        self._last_contact = {b: now for b in working.brokers}
        self._offline_replicas = {}

        def while_active(fn: Callable[[], object]) -> Callable[[], None]:
            return lambda: self._enqueue(fn) if self.active and self._active_token == token else None

        self.every(500.0, while_active(self._fence_stale_brokers))
        self.every(self.cfg["metadata.max.idle.interval.ms"], while_active(lambda: self._write([NoOpRecord()])))
        if self.cfg["auto.leader.rebalance.enable"]:
            self.every(self.cfg["leader.imbalance.check.interval.seconds"] * 1000.0,
                       while_active(self._balance_leaders))

    def append_unreadable_record(self) -> bool:
        """Fault injection: a partition change for a topic that does not exist, appended to the log
        directly (the working image would reject it); applying it fails on every node."""
        return self.active and self.raft.append([PartitionChangeRecord(UNREADABLE_TOPIC, 0, leader=-1)]) is not None

    def _write(self, records: list, on_committed: Callable[[], None] | None = None) -> bool:
        """Append records (active controller only); on_committed runs once they are committed."""
        if not self.active or self.working is None or not records:
            return False
        last = self.raft.append(records)
        if last is None:
            return False
        first = last - len(records) + 1
        for i, record in enumerate(records):
            self.working.apply(record, first + i, self.wall_ms())
        if on_committed:
            self._pending.append((last, on_committed))
        return True

    # -- broker lifecycle ---------------------------------------------------------------------------------
    def _on_registration(self, src: str, req: BrokerRegistrationRequest, reply: Callable) -> None:
        def run() -> None:
            if not self.active or self.working is None:
                reply(BrokerRegistrationResponse("NOT_CONTROLLER"))
                return
            self._offline_replicas.pop(req.broker_id, None)
            records: list = [RegisterBrokerRecord(req.broker_id, req.incarnation)]
            # a re-registering broker is fenced first: move leadership off its old incarnation
            records += self._changes_for_fencing(req.broker_id)
            self._last_contact[req.broker_id] = self.now()
            self._write(records, lambda: reply(BrokerRegistrationResponse(
                "NONE", self.image.brokers[req.broker_id].epoch)))
        self._enqueue(run)

    def _on_heartbeat(self, src: str, req: BrokerHeartbeatRequest, reply: Callable) -> None:
        deadline = self.now() + self.cfg["broker.heartbeat.interval.ms"] / 2

        def timed_out() -> None:
            self.counters["TimedOutBrokerHeartbeatCount"] += 1
            reply(BrokerHeartbeatResponse("REQUEST_TIMED_OUT"))

        def run() -> None:
            w = self.working
            if not self.active or w is None:
                reply(BrokerHeartbeatResponse("NOT_CONTROLLER"))
                return
            reg = w.brokers.get(req.broker_id)
            if reg is None or reg.epoch != req.broker_epoch:
                reply(BrokerHeartbeatResponse("STALE_BROKER_EPOCH"))
                return
            self._last_contact[req.broker_id] = self.now()
            caught_up = req.metadata_offset >= reg.epoch
            offline = frozenset(req.offline_replicas)
            self._offline_replicas[req.broker_id] = offline
            # a failed log directory: its replicas leave their ISRs and hand over leadership
            moves = self._changes_for_fencing(req.broker_id, only=offline) if offline else []
            if reg.fenced and caught_up:
                records: list[MetadataRecord] = [BrokerRegistrationChangeRecord(req.broker_id, reg.epoch, fenced=False)]
                records += self._changes_for_unfencing(w, req.broker_id) + moves
                self._write(records, lambda: reply(BrokerHeartbeatResponse("NONE", False, True)))
                return
            self._write(moves)
            reply(BrokerHeartbeatResponse("NONE", reg.fenced, caught_up))
        self._enqueue(run, deadline, timed_out)

    def _fence_stale_brokers(self) -> None:
        w = self.working
        if w is None:
            return
        now = self.now()
        timeout = self.cfg["broker.session.timeout.ms"]
        for broker_id, reg in sorted(w.brokers.items()):
            if not reg.fenced and now - self._last_contact.get(broker_id, now) >= timeout:
                self._write([BrokerRegistrationChangeRecord(broker_id, reg.epoch, fenced=True)]
                            + self._changes_for_fencing(broker_id))

    def _unclean_allowed(self, w: MetadataImage, topic: str) -> bool:
        return bool(w.topics[topic].configs.get("unclean.leader.election.enable",
                                                self.cfg["unclean.leader.election.enable"]))

    def _online(self, broker_id: int, topic: str, idx: int) -> bool:
        return TopicPartition(topic, idx) not in self._offline_replicas.get(broker_id, ())

    def _changes_for_fencing(self, broker_id: int,
                             only: frozenset[TopicPartition] | None = None) -> list[PartitionChangeRecord]:
        """PartitionChangeBuilder for a broker going away (or, with `only`, for its replicas on a
        failed log directory): leave ISRs, hand over leadership."""
        w = self.working
        assert w is not None
        live = {b for b, r in w.brokers.items() if not r.fenced and b != broker_id}
        out = []
        for topic, t in w.topics.items():
            for idx, p in enumerate(t.partitions):
                if broker_id not in p.isr and p.leader != broker_id:
                    continue
                if only is not None and TopicPartition(topic, idx) not in only:
                    continue
                isr = tuple(b for b in p.isr if b != broker_id) or p.isr   # the last ISR member stays
                leader = p.leader
                unclean = False
                if leader == broker_id or leader == -1:
                    leader = next((b for b in p.replicas if b in isr and b in live and self._online(b, topic, idx)), -1)
                    if leader == -1 and self._unclean_allowed(w, topic):
                        leader = next((b for b in p.replicas if b in live and self._online(b, topic, idx)), -1)
                        if leader != -1:
                            isr, unclean = (leader,), True
                if isr != p.isr or leader != p.leader:
                    out.append(PartitionChangeRecord(topic, idx, isr if isr != p.isr else None,
                                                     leader if leader != p.leader else None, unclean))
        return out

    def _changes_for_unfencing(self, w: MetadataImage, broker_id: int) -> list[PartitionChangeRecord]:
        out = []
        for topic, t in w.topics.items():
            for idx, p in enumerate(t.partitions):
                if p.leader != -1 or broker_id not in p.replicas or not self._online(broker_id, topic, idx):
                    continue
                if broker_id in p.isr:
                    out.append(PartitionChangeRecord(topic, idx, leader=broker_id))
                elif self._unclean_allowed(w, topic):
                    out.append(PartitionChangeRecord(topic, idx, isr=(broker_id,), leader=broker_id, unclean=True))
        return out

    def _preferred_changes(self) -> list[PartitionChangeRecord]:
        w = self.working
        if w is None:
            return []
        live = {b for b, r in w.brokers.items() if not r.fenced}
        return [PartitionChangeRecord(topic, idx, leader=p.preferred_leader)
                for topic, t in w.topics.items() for idx, p in enumerate(t.partitions)
                if p.leader != p.preferred_leader and p.preferred_leader in p.isr and p.preferred_leader in live
                and self._online(p.preferred_leader, topic, idx)]

    def _balance_leaders(self) -> None:
        self._write(self._preferred_changes())

    def elect_preferred_leaders(self) -> int:
        """ElectLeaders (PREFERRED, every partition), as an admin client sends it."""
        moving = len(self._preferred_changes())
        self._enqueue(self._balance_leaders)
        return moving

    # -- topics and ISR changes ------------------------------------------------------------------------------
    def _on_create_topics(self, src: str, req: CreateTopicsRequest, reply: Callable) -> None:
        def run() -> None:
            w = self.working
            if not self.active or w is None:
                reply(CreateTopicsResponse("NOT_CONTROLLER"))
                return
            error = self._validate_topic(w, req)
            if error:
                reply(CreateTopicsResponse(*error))
                return
            live = sorted(b for b, r in w.brokers.items() if not r.fenced)
            start = self.rng.randrange(len(live))
            records: list[Any] = [TopicRecord(req.name)]
            records += [ConfigRecord(req.name, k, v) for k, v in req.configs]
            for p in range(req.partitions):
                replicas = tuple(live[(start + p + j) % len(live)] for j in range(req.replication_factor))
                records.append(PartitionRecord(req.name, p, replicas, replicas, replicas[0]))
            self._write(records, lambda: reply(CreateTopicsResponse()))
        self._enqueue(run)

    def _on_delete_topics(self, src: str, req: DeleteTopicsRequest, reply: Callable) -> None:
        """ReplicationControlManager.deleteTopic: one record removes the topic; every broker then stops
        and deletes its replicas (Kafka checks no internal-topic rule here: the tools refuse those)."""
        def run() -> None:
            w = self.working
            if not self.active or w is None:
                reply(DeleteTopicsResponse("NOT_CONTROLLER"))
                return
            if req.name not in w.topics:
                reply(DeleteTopicsResponse("UNKNOWN_TOPIC_OR_PARTITION",
                                           "This server does not host this topic-partition."))
                return
            self._write([RemoveTopicRecord(req.name)], lambda: reply(DeleteTopicsResponse()))
        self._enqueue(run)

    def _validate_topic(self, w: MetadataImage, req: CreateTopicsRequest) -> tuple[str, str] | None:
        if req.name in w.topics:
            return "TOPIC_ALREADY_EXISTS", f"Topic '{req.name}' already exists."
        if req.partitions < 1:
            return "INVALID_PARTITIONS", f"Number of partitions was set to an invalid non-positive value: {req.partitions}."
        live = sum(1 for r in w.brokers.values() if not r.fenced)
        if req.replication_factor < 1:
            return "INVALID_REPLICATION_FACTOR", "Replication factor must be larger than 0."
        if req.replication_factor > live:
            return ("INVALID_REPLICATION_FACTOR",
                    f"Unable to replicate the partition {req.replication_factor} time(s): The target replication "
                    f"factor of {req.replication_factor} cannot be reached because only {live} broker(s) are registered.")
        min_isr = dict(req.configs).get("min.insync.replicas")
        if isinstance(min_isr, int) and min_isr > req.replication_factor:
            return ("INVALID_CONFIG",
                    f"min.insync.replicas {min_isr} is greater than the replication factor {req.replication_factor}: "
                    f"acks=all produce requests to '{req.name}' could never succeed.")
        return None

    def _on_alter_partition(self, src: str, req: AlterPartitionRequest, reply: Callable) -> None:
        def run() -> None:
            w = self.working
            if not self.active or w is None:
                reply(AlterPartitionResponse("NOT_CONTROLLER"))
                return
            reg = w.brokers.get(req.broker_id)
            if reg is None or reg.epoch != req.broker_epoch:
                reply(AlterPartitionResponse("STALE_BROKER_EPOCH"))
                return
            p: PartitionState | None = w.partition(*req.tp)
            if p is None:
                reply(AlterPartitionResponse("UNKNOWN_TOPIC_OR_PARTITION"))
                return
            if req.leader_epoch != p.leader_epoch or p.leader != req.broker_id:
                reply(AlterPartitionResponse("FENCED_LEADER_EPOCH"))
                return
            if req.partition_epoch != p.partition_epoch:
                reply(AlterPartitionResponse("INVALID_UPDATE_VERSION"))
                return
            added = set(req.new_isr) - set(p.isr)
            if any(b not in w.brokers or w.brokers[b].fenced for b in added):
                reply(AlterPartitionResponse("INELIGIBLE_REPLICA"))
                return
            self._write([PartitionChangeRecord(req.tp.topic, req.tp.partition, isr=req.new_isr)],
                        lambda: reply(AlterPartitionResponse()))
        self._enqueue(run)
