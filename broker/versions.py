"""The Kafka lines the embedded cluster can be (scenario `cluster: {kafka_version: "4.4"}`), and what
differs between them in what a node publishes.

The APIs each listener enables: Kafka registers RequestMetrics for them at startup
(RequestChannel.Metrics over the listener's ApiKeys, plus FetchConsumer and FetchFollower), so every
API has its request histograms from the start, whether or not a client ever sends it. Read off real
Kafka 4.1.1 and 4.4.0 brokers and controllers (kafka-jmx conformance). Version and commit id are
those in each release's kafka-clients jar (kafka/kafka-version.properties).
"""
from __future__ import annotations

from dataclasses import dataclass

_BROKER_APIS_41 = (
    "AddOffsetsToTxn", "AddPartitionsToTxn", "AddPartitionsToTxnVerification", "AddRaftVoter", "AlterClientQuotas",
    "AlterConfigs", "AlterPartitionReassignments", "AlterReplicaLogDirs", "AlterShareGroupOffsets",
    "AlterUserScramCredentials", "ApiVersions", "ConsumerGroupDescribe", "ConsumerGroupHeartbeat", "CreateAcls",
    "CreateDelegationToken", "CreatePartitions", "CreateTopics", "DeleteAcls", "DeleteGroups", "DeleteRecords",
    "DeleteShareGroupOffsets", "DeleteShareGroupState", "DeleteTopics", "DescribeAcls", "DescribeClientQuotas",
    "DescribeCluster", "DescribeConfigs", "DescribeDelegationToken", "DescribeGroups", "DescribeLogDirs",
    "DescribeProducers", "DescribeQuorum", "DescribeShareGroupOffsets", "DescribeTopicPartitions",
    "DescribeTransactions", "DescribeUserScramCredentials", "ElectLeaders", "EndTxn", "ExpireDelegationToken",
    "Fetch", "FetchConsumer", "FetchFollower", "FindCoordinator", "GetTelemetrySubscriptions", "Heartbeat",
    "IncrementalAlterConfigs", "InitProducerId", "InitializeShareGroupState", "JoinGroup", "LeaveGroup",
    "ListClientMetricsResources", "ListConfigResources", "ListGroups", "ListOffsets", "ListPartitionReassignments",
    "ListTransactions", "Metadata", "OffsetCommit", "OffsetDelete", "OffsetFetch", "OffsetForLeaderEpoch", "Produce",
    "PushTelemetry", "ReadShareGroupState", "ReadShareGroupStateSummary", "RemoveRaftVoter", "RenewDelegationToken",
    "SaslAuthenticate", "SaslHandshake", "ShareAcknowledge", "ShareFetch", "ShareGroupDescribe",
    "ShareGroupHeartbeat", "StreamsGroupDescribe", "StreamsGroupHeartbeat", "SyncGroup", "TxnOffsetCommit",
    "UnregisterBroker", "UpdateFeatures", "WriteShareGroupState", "WriteTxnMarkers",
)

_CONTROLLER_APIS_41 = (
    "AddPartitionsToTxnVerification", "AddRaftVoter", "AllocateProducerIds", "AlterClientQuotas", "AlterConfigs",
    "AlterPartition", "AlterPartitionReassignments", "AlterUserScramCredentials", "ApiVersions",
    "AssignReplicasToDirs", "BeginQuorumEpoch", "BrokerHeartbeat", "BrokerRegistration", "ControllerRegistration",
    "CreateAcls", "CreateDelegationToken", "CreatePartitions", "CreateTopics", "DeleteAcls", "DeleteTopics",
    "DescribeAcls", "DescribeCluster", "DescribeConfigs", "DescribeDelegationToken", "DescribeQuorum",
    "DescribeUserScramCredentials", "ElectLeaders", "EndQuorumEpoch", "Envelope", "ExpireDelegationToken", "Fetch",
    "FetchConsumer", "FetchFollower", "FetchSnapshot", "IncrementalAlterConfigs", "ListClientMetricsResources",
    "ListPartitionReassignments", "RemoveRaftVoter", "RenewDelegationToken", "SaslAuthenticate", "SaslHandshake",
    "UnregisterBroker", "UpdateFeatures", "UpdateRaftVoter", "Vote",
)


@dataclass(frozen=True)
class KafkaLine:
    line: str
    version: str
    commit_id: str
    broker_apis: tuple[str, ...]
    controller_apis: tuple[str, ...]
    # client channels a broker of this line opens besides those every 4.x broker has
    broker_channels: tuple[tuple[str, bool], ...] = ()
    # the group coordinator's 4.4 metrics: classic-group-count per state, offset-count, and the
    # streams groups' topology-description store (its counters stay 0 without Kafka Streams clients)
    group_coordinator_44: bool = False
    # share groups as 4.2 made them generally available: on without group.share.enable (a new cluster's
    # share.version is 1), and DescribeShareGroupOffsets v1 says each partition's lag
    share_groups_ga: bool = False
    # LinuxIoMetricsCollector's gauges of every /proc/self/io field (rchar, wchar, syscr, syscw,
    # cancelled_write_bytes) besides read and write bytes; 4.1 has the two
    linux_io_all_fields: bool = False
    # kafka.log:type=Log,name=RetentionSizeInPercent per partition (KIP-1257, 4.3)
    retention_size_percent: bool = False

    def apis(self, role: str) -> tuple[str, ...]:
        return self.broker_apis if role == "broker" else self.controller_apis


LINES = {
    "4.1": KafkaLine("4.1", "4.1.1", "be816b82d25370ce", _BROKER_APIS_41, _CONTROLLER_APIS_41),
    # 4.4 adds UnregisterController on both roles and StreamsGroupTopologyDescriptionUpdate on brokers
    "4.4": KafkaLine("4.4", "4.4.0", "1156b2752aaa28ea",
                     tuple(sorted(_BROKER_APIS_41 + ("StreamsGroupTopologyDescriptionUpdate", "UnregisterController"))),
                     tuple(sorted(_CONTROLLER_APIS_41 + ("UnregisterController",))),
                     # the share groups' dead-letter queue sender: idle without share groups
                     broker_channels=(("ShareGroupDLQManager-channel-metrics", False),),
                     group_coordinator_44=True, share_groups_ga=True, linux_io_all_fields=True,
                     retention_size_percent=True),
}
DEFAULT_LINE = "4.1"


def kafka_line(name: str) -> KafkaLine:
    """'4.4' or '4.4.0' -> that line; anything else is refused with the lines there are."""
    parts = str(name).split(".")
    found = LINES.get(".".join(parts[:2])) if len(parts) in (2, 3) else None
    if found is None or (len(parts) == 3 and found.version != str(name)):
        raise ValueError(f"the embedded cluster has no Kafka {name!r} (lines: "
                         f"{', '.join(f'{k} ({v.version})' for k, v in LINES.items())})")
    return found
