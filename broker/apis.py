"""The APIs each listener enables, as Kafka 4.1 registers RequestMetrics for them at startup
(RequestChannel.Metrics over the listener's ApiKeys, plus FetchConsumer and FetchFollower): every
API has its request histograms from the start, whether or not a client ever sends it. Read off a
real Kafka 4.1.1 broker and controller (kafka-jmx conformance); 4.4 adds UnregisterController on
both and StreamsGroupTopologyDescriptionUpdate on brokers."""

BROKER_APIS = (
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

CONTROLLER_APIS = (
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
