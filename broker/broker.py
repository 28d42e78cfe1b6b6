"""A Kafka broker (process.roles=broker), wired from Kafka's components: the lifecycle manager
(registration and heartbeats with the active controller), the raft observer and the metadata
publisher, the LogManager, the ReplicaManager with its purgatories, the replica fetchers, and the
group coordinator for the __consumer_offsets partitions it leads.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from broker.config import describe_broker, describe_topic
from broker.fetch_session import FetchSessionCache
from broker.group import GroupCoordinator
from broker.lifecycle import NOT_RUNNING, STARTING, BrokerLifecycleManager
from broker.log_manager import BrokerDisk, LogManager
from broker.mbeans.yammer import INT, STRING
from broker.metadata import MetadataImage
from broker.metadata_publisher import MetadataPublisher
from broker.net import Network, RequestFailed
from broker.node import Node
from broker.partition import Partition
from broker.producer import next_producer_id
from broker.protocol import (
    AlterPartitionRequest,
    BrokerHeartbeatRequest,
    BrokerRegistrationRequest,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeClusterRequest,
    DescribeClusterResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    FetchRequest,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ListOffsetsRequest,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    ProduceRequest,
    ProduceResponse,
    ShareAcknowledgeRequest,
    ShareFetchRequest,
)
from broker.raft import RAFT_REQUESTS, RaftClient
from broker.replica_fetcher import ReplicaFetcherManager
from broker.replica_manager import ReplicaManager
from broker.sched import Scheduler
from broker.server import ServerNode
from broker.share_coordinator import ReadShareStateResponse, ReadShareStateSummaryRequest, ShareCoordinator
from broker.share_fetch import SharePartitionManager
from broker.structs import TopicPartition
from broker.versions import DEFAULT_LINE, LINES, KafkaLine
from broker.wire.topic_ids import topic_id


class BrokerNode(ServerNode):
    role = "broker"
    listener = "PLAINTEXT"
    # BrokerLifecycleManager (registration and heartbeats), AlterPartitionManager, forwarding,
    # directory assignments (NodeToControllerChannelManagers, tagged with the broker's id), the
    # raft observer's channel, and the inter-broker senders that stay idle without transactions or
    # share groups
    client_channels = (("heartbeat-metrics", True), ("alter-partition-metrics", True), ("forwarding-metrics", True),
                       ("directory-assignments-metrics", True), ("raft-channel-metrics", False),
                       ("txn-marker-channel-metrics", False), ("AddPartitionsManager-channel-metrics", False),
                       ("Persister-channel-metrics", False))
    # a combined node's broker: the raft client of the process's controller, which it shares
    controller_raft: Callable[[], RaftClient] | None = None

    def __init__(self, node_id: int, name: str, sched: Scheduler, net: Network, rng: random.Random,
                 config, cluster_id: str, voters: dict[int, str], broker_names: dict[int, str],
                 wall_base_ms: float, kafka: KafkaLine = LINES[DEFAULT_LINE], process: Node | None = None) -> None:
        super().__init__(node_id, name, sched, net, rng, config, cluster_id, kafka, process)
        self.voters = voters
        self.broker_names = broker_names
        self._broker_ids = {name: i for i, name in broker_names.items()}
        self.wall_base_ms = wall_base_ms
        self.disk = BrokerDisk()
        self.fetch_delay_ms = 0.0          # fault: a slow follower
        self.disk_delay_ms = 0.0           # fault: a slow disk (every append waits this long)
        self.serve(ProduceRequest, "Produce", lambda *a: self.replica_manager.on_produce(*a),
                   cost_ms=lambda r: 0.02 + sum(b.size for _, b in r.batches) / 200_000.0 + self.disk_delay_ms,
                   size=lambda r: sum(b.size for _, b in r.batches) + 100,
                   errors_of=_error_counts)
        self.serve(FetchRequest, "Fetch", lambda *a: self.replica_manager.on_fetch(*a),
                   cost_ms=lambda r: 0.02 + 0.002 * len(r.partitions),
                   metric_names=lambda r: ("Fetch", "FetchFollower" if r.replica_id >= 0 else "FetchConsumer"),
                   response_size=lambda resp: 100 + sum(b.size for d in getattr(resp, "partitions", {}).values()
                                                        for b in d.batches),
                   errors_of=_error_counts)
        self.serve(MetadataRequest, "Metadata", self._on_metadata)
        self.serve(ListOffsetsRequest, "ListOffsets", lambda *a: self.replica_manager.on_list_offsets(*a))
        self.serve(InitProducerIdRequest, "InitProducerId", self._on_init_producer_id)
        self.serve(CreateTopicsRequest, "CreateTopics", self._forward_to_controller)
        self.serve(DeleteTopicsRequest, "DeleteTopics", self._forward_to_controller)
        self.serve(DescribeConfigsRequest, "DescribeConfigs", self._on_describe_configs)
        self.serve(DescribeClusterRequest, "DescribeCluster", self._on_describe_cluster)
        GroupCoordinator.serve_on(self, lambda: self.coordinator)
        ShareCoordinator.serve_on(self, lambda: self.share_coordinator)
        self.serve(ShareFetchRequest, "ShareFetch", lambda *a: self.share_partitions.on_share_fetch(*a),
                   cost_ms=lambda r: 0.02 + 0.002 * len(r.partitions))
        self.serve(ShareAcknowledgeRequest, "ShareAcknowledge", lambda *a: self.share_partitions.on_share_acknowledge(*a))

    def channel_of(self, request: Any, dst: str) -> tuple[str, dict[str, str]] | None:
        own = {"BrokerId": str(self.node_id)}
        if isinstance(request, (BrokerRegistrationRequest, BrokerHeartbeatRequest)):
            return "heartbeat-metrics", own
        if isinstance(request, AlterPartitionRequest):
            return "alter-partition-metrics", own
        if isinstance(request, (CreateTopicsRequest, DeleteTopicsRequest)):
            return "forwarding-metrics", own          # forwarded and auto-created topics
        if isinstance(request, FetchRequest):
            # one replica fetcher thread (num.replica.fetchers=1) per leader
            return "replica-fetcher-metrics", {"broker-id": str(self._broker_ids.get(dst, -1)), "fetcher-id": "0"}
        if isinstance(request, RAFT_REQUESTS):
            return "raft-channel-metrics", {}
        return None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def on_start(self) -> None:
        super().on_start()
        self.state = STARTING
        self.image = MetadataImage()
        self.lifecycle = BrokerLifecycleManager(self)
        self.log_manager = LogManager(self, self.disk)
        self.fetch_sessions = FetchSessionCache(self)         # in memory: a restart empties it
        self.replica_manager = ReplicaManager(self)
        self.fetcher_manager = ReplicaFetcherManager(self)
        self.metadata_publisher = MetadataPublisher(self)
        self._register_broker_metrics()
        if self.controller_raft is None:
            self.raft = RaftClient(self, self.node_id, self.voters, self.cfg, self.disk.quorum, self.mbeans,
                                   self.metadata_publisher.on_commit, lambda: None)
        else:
            # a combined node's broker reads the metadata log through its controller's raft client (Kafka's
            # SharedServer), it runs no observer of its own
            self.raft = self.controller_raft()
            self.raft.commit_listeners.append(self.metadata_publisher.on_commit)
        self.coordinator = GroupCoordinator(self)
        self.share_coordinator = ShareCoordinator(self, lambda topic: topic_id(self.cluster_id, topic))
        self.share_partitions = SharePartitionManager(self)
        if self.controller_raft is None:
            self.raft.start()
        self.lifecycle.register()
        self.every(self.cfg["replica.lag.time.max.ms"] / 2, self.replica_manager.shrink_isrs)
        self.every(5000.0, lambda: self.log_manager.checkpoint_hw(self.replica_manager.high_watermarks()))
        self.log_manager.start()

    def on_kill(self) -> None:
        self.state = NOT_RUNNING
        self.replica_manager.partitions = {}

    # what the cluster, the faults and the tests read of a broker
    @property
    def partitions(self) -> dict[TopicPartition, Partition]:
        return self.replica_manager.partitions

    @property
    def offline_dirs(self) -> set[str]:
        return self.log_manager.offline_dirs

    def controller_name(self) -> str | None:
        return self.raft.leader_name()

    # -- metrics ---------------------------------------------------------------------------------------------
    def _register_broker_metrics(self) -> None:
        m = self.mbeans
        m.gauge("kafka.server", "KafkaServer", "BrokerState", lambda: self.state, java_type="java.lang.Byte")
        m.gauge("kafka.server", "KafkaServer", "ClusterId", lambda: self.cluster_id, java_type=STRING)
        m.gauge("kafka.server", "KafkaServer", "yammer-metrics-count",
                lambda: sum(1 for _, b in m.items() if b.kind != "kafka-metrics"), java_type=INT)
        self.replica_manager.register_metrics()
        self.fetcher_manager.register_metrics()
        self.fetch_sessions.register_metrics()
        self.replica_manager.register_purgatory_metrics()
        self.log_manager.register_metrics()
        self.metadata_publisher.register_metrics()

    def topic_meter(self, name: str, topic: str | None, n: float = 1) -> None:
        """Mark a BrokerTopicMetrics meter for all topics and for the topic (created on first use)."""
        now = self.now()
        event = "bytes" if "Bytes" in name else "messages" if name == "MessagesInPerSec" else "requests"
        self.mbeans.meter("kafka.server", "BrokerTopicMetrics", name, event).mark(now, n)
        if name in ("BytesInPerSec", "ReplicationBytesInPerSec"):
            self.disk_io.received(int(n))
        elif name in ("BytesOutPerSec", "ReplicationBytesOutPerSec"):
            self.disk_io.sent_file(int(n))
        if topic is not None:
            self.mbeans.meter("kafka.server", "BrokerTopicMetrics", name, event, {"topic": topic}).mark(now, n)

    # -- faults ---------------------------------------------------------------------------------------------------
    def fail_log_dir(self, log_dir: str | None = None) -> str:
        """A disk under one of log.dirs fails (an I/O error on it): its replicas go offline here and
        the next heartbeat tells the controller, which moves their leadership and ISR membership
        elsewhere. Losing the last live directory halts the broker, as Kafka does."""
        failed, last, tps = self.log_manager.fail_dir(log_dir)
        if last:
            self.process.kill()
            return failed
        self.replica_manager.take_offline(tps)
        return failed

    # -- what the group coordinator reaches (GroupCoordinatorHost) ------------------------------------------------
    def local_partition(self, tp: TopicPartition) -> Partition | None:
        return self.replica_manager.partitions.get(tp)

    def append_internal(self, tp: TopicPartition, records: tuple, done: Callable[[str], None]) -> None:
        self.replica_manager.append_internal(tp, records, done)

    def address_of(self, broker_id: int) -> str:
        return self.broker_names[broker_id]

    def share_state_read(self, group_id: str, tp: TopicPartition, on_reply: Callable[[Any], None]) -> None:
        """ReadShareGroupStateSummary at the share coordinator that holds (group, tp)."""
        target = self.share_coordinator.coordinator_of(group_id, tp)
        if target is None:
            on_reply(ReadShareStateResponse("COORDINATOR_NOT_AVAILABLE"))
            return
        self.request(target, ReadShareStateSummaryRequest(group_id, tp), on_reply, self.cfg["request.timeout.ms"])

    def leadership_changed(self, tp: TopicPartition, leader: bool) -> None:
        """tp is led here now, or no longer: the coordinators of internal topics load or unload, the share
        partitions of a partition no longer led here go."""
        self.coordinator.on_leadership(tp, leader)
        self.share_coordinator.on_leadership(tp, leader)
        self.share_partitions.on_leadership(tp, leader)

    def share_groups_enabled(self) -> bool:
        """4.1 serves share groups as a preview behind group.share.enable; from 4.2 they are on."""
        return self.kafka.share_groups_ga or bool(self.cfg["group.share.enable"])

    # -- Metadata API ------------------------------------------------------------------------------------------------
    def _on_describe_cluster(self, src: str, req: DescribeClusterRequest, reply: Callable) -> None:
        live = {b: self.broker_names[b] for b, r in self.image.brokers.items() if not r.fenced}
        reply(DescribeClusterResponse(live, min(live, default=-1)))

    def _on_describe_configs(self, src: str, req: DescribeConfigsRequest, reply: Callable) -> None:
        """ConfigHelper: a topic's settings from the metadata image, this broker's own from its config."""
        if req.resource_type == "topic":
            topic = self.image.topics.get(req.name)
            if topic is None:
                reply(DescribeConfigsResponse("UNKNOWN_TOPIC_OR_PARTITION", f"Topic {req.name} does not exist"))
                return
            reply(DescribeConfigsResponse(entries=tuple(describe_topic(self.cfg, topic.configs, req.keys))))
        elif req.name == "":
            reply(DescribeConfigsResponse())       # cluster-wide dynamic defaults: none are set
        elif req.name != str(self.node_id):
            reply(DescribeConfigsResponse("INVALID_REQUEST",
                                          f"Unexpected broker id, expected {self.node_id} or empty string, but received {req.name}"))
        else:
            reply(DescribeConfigsResponse(entries=tuple(describe_broker(self.cfg, req.keys))))

    def _forward_to_controller(self, src: str, req: Any, reply: Callable) -> None:
        """ForwardingManager: a broker passes the admin requests only the controller answers to the
        active controller it knows, and the answer back."""
        answer = DeleteTopicsResponse if isinstance(req, DeleteTopicsRequest) else CreateTopicsResponse
        target = self.controller_name()
        if target is None:
            reply(answer("NOT_CONTROLLER"))
            return
        self.request(target, req, lambda r: reply(r if not isinstance(r, RequestFailed) else answer("REQUEST_TIMED_OUT")),
                     self.cfg["request.timeout.ms"])

    def _on_init_producer_id(self, src: str, req: InitProducerIdRequest, reply: Callable) -> None:
        """An idempotent producer's id (Kafka's ProducerIdManager hands out blocks from the controller;
        one counter stands for it). Transactions are not simulated."""
        if req.transactional_id is not None:
            reply(InitProducerIdResponse("INVALID_REQUEST"))
            return
        reply(InitProducerIdResponse("NONE", next_producer_id(), 0))

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


def _error_counts(resp: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    items = resp.results.values() if isinstance(resp, ProduceResponse) else resp.partitions.values()
    for r in items:
        counts[r.error] = counts.get(r.error, 0) + 1
    return counts or {"NONE": 1}
