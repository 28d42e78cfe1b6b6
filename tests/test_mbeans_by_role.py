"""Kafka 4.x MBeans on the role that has them (reference/kafka-4x-mbeans.md), with Kafka's attributes."""
import math

import pytest
from conftest import make_cluster

from broker.mbeans.yammer import TIME_UNIT

METER = {"Count", "EventType", "RateUnit", "MeanRate", "OneMinuteRate", "FiveMinuteRate", "FifteenMinuteRate"}
HIST = {"Count", "Min", "Max", "Mean", "StdDev", "50thPercentile", "75thPercentile", "95thPercentile",
        "98thPercentile", "99thPercentile", "999thPercentile"}
GAUGE = {"Value"}

CONTROLLER_ONLY = {
    **{f"kafka.controller:type=KafkaController,name={n}": GAUGE for n in (
        "ActiveControllerCount", "ActiveBrokerCount", "FencedBrokerCount", "GlobalTopicCount", "GlobalPartitionCount",
        "OfflinePartitionsCount", "PreferredReplicaImbalanceCount", "MetadataErrorCount", "NewActiveControllersCount",
        "TimedOutBrokerHeartbeatCount", "LastAppliedRecordOffset", "LastCommittedRecordOffset",
        "LastAppliedRecordTimestamp", "LastAppliedRecordLagMs", "EventQueueOperationsStartedCount",
        "EventQueueOperationsTimedOutCount")},
    "kafka.controller:type=ControllerEventManager,name=EventQueueTimeMs": HIST,
    "kafka.controller:type=ControllerEventManager,name=EventQueueProcessingTimeMs": HIST,
    "kafka.controller:type=ControllerStats,name=UncleanLeaderElectionsPerSec": METER,
    "kafka.server:type=ControllerServer,name=ClusterId": GAUGE,
}
RAFT_ATTRS = {"current-state", "current-leader", "current-vote", "current-epoch", "high-watermark", "log-end-offset",
              "log-end-epoch", "number-unknown-voter-connections", "commit-latency-avg", "commit-latency-max",
              "election-latency-avg", "election-latency-max", "fetch-records-rate", "append-records-rate",
              "poll-idle-ratio-avg", "current-vote-directory-id"}
BOTH = {
    "kafka.server:type=raft-metrics": RAFT_ATTRS,
    "kafka.server:type=app-info": {"version", "commit-id", "start-time-ms"},
    "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent": GAUGE,
    "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent": METER,
    "kafka.network:type=RequestChannel,name=RequestQueueSize": GAUGE,
    "kafka.log:type=Log,name=LogEndOffset,topic=__cluster_metadata,partition=0": GAUGE,
    "kafka.server:type=MetadataLoader,name=CurrentControllerId": GAUGE,
    "kafka.server:type=SnapshotEmitter,name=LatestSnapshotGeneratedAgeMs": GAUGE,
    "kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs": METER | HIST | {"LatencyUnit"},
    # RequestChannel creates the two fetch variants on every process (controllers serve raft Fetch)
    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchConsumer": HIST,
    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchFollower": HIST,
    # BrokerTopicStats' all-topics meters: controllers of real Kafka 4.1 and 4.4 have them too
    **{f"kafka.server:type=BrokerTopicMetrics,name={n}": METER for n in (
        "MessagesInPerSec", "BytesInPerSec", "BytesOutPerSec", "BytesRejectedPerSec", "FailedProduceRequestsPerSec",
        "FailedFetchRequestsPerSec", "TotalProduceRequestsPerSec", "TotalFetchRequestsPerSec",
        "ReplicationBytesInPerSec", "ReplicationBytesOutPerSec")},
}
BROKER_ONLY = {
    "kafka.server:type=KafkaServer,name=BrokerState": GAUGE,
    "kafka.server:type=broker-metadata-metrics": {"last-applied-record-offset", "last-applied-record-timestamp",
                                                  "last-applied-record-lag-ms", "metadata-load-error-count",
                                                  "metadata-apply-error-count"},
    **{f"kafka.server:type=ReplicaManager,name={n}": GAUGE for n in (
        "UnderReplicatedPartitions", "UnderMinIsrPartitionCount", "AtMinIsrPartitionCount", "OfflineReplicaCount",
        "PartitionCount", "LeaderCount", "ReassigningPartitions", "PartitionsWithLateTransactionsCount",
        "ProducerIdCount")},
    **{f"kafka.server:type=ReplicaManager,name={n}": METER for n in (
        "IsrShrinksPerSec", "IsrExpandsPerSec", "FailedIsrUpdatesPerSec")},
    **{f"kafka.cluster:type=Partition,name={n},topic=orders,partition=0": GAUGE for n in (
        "UnderReplicated", "UnderMinIsr", "AtMinIsr", "InSyncReplicasCount", "ReplicasCount", "LastStableOffsetLag")},
    **{f"kafka.log:type=Log,name={n},topic=orders,partition=0": GAUGE for n in (
        "Size", "LogEndOffset", "LogStartOffset", "NumLogSegments")},
    "kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica": GAUGE,
    "kafka.server:type=ReplicaFetcherManager,name=MinFetchRate,clientId=Replica": GAUGE,
    "kafka.server:type=DelayedOperationPurgatory,name=PurgatorySize,delayedOperation=Produce": GAUGE,
    "kafka.server:type=DelayedOperationPurgatory,name=PurgatorySize,delayedOperation=Fetch": GAUGE,
    "kafka.server:type=DelayedOperationPurgatory,name=NumDelayedOperations,delayedOperation=Produce": GAUGE,
    "kafka.log:type=LogManager,name=OfflineLogDirectoryCount": GAUGE,
    "kafka.coordinator.group:type=GroupMetadataManager,name=NumGroups": GAUGE,
    "kafka.coordinator.group:type=GroupMetadataManager,name=NumGroupsStable": GAUGE,
    "kafka.coordinator.group:type=GroupMetadataManager,name=NumGroupsPreparingRebalance": GAUGE,
    "kafka.coordinator.group:type=GroupMetadataManager,name=NumOffsets": GAUGE,
    "kafka.server:type=group-coordinator-metrics": {"offset-commit-rate", "offset-commit-count",
                                                    "group-completed-rebalance-rate", "group-completed-rebalance-count",
                                                    "partition-load-time-avg", "partition-load-time-max"},
    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce": HIST,
    "kafka.network:type=RequestMetrics,name=RemoteTimeMs,request=Produce": HIST,
    "kafka.network:type=RequestMetrics,name=RequestQueueTimeMs,request=Produce": HIST,
}


@pytest.fixture(scope="module")
def busy_cluster():
    c = make_cluster()
    p = c.producer("p")
    for i in range(50):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "g", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(20_000)
    return c


def _check(c, node, beans):
    for name, attrs in beans.items():
        assert name in node.mbeans, f"{name} missing on {node.name}"
        values = node.mbeans.read(name)
        assert attrs <= set(values), f"{name} on {node.name} lacks {attrs - set(values)}"


def test_controller_beans_only_on_controllers(busy_cluster):
    for node in busy_cluster.controllers.values():
        _check(busy_cluster, node, CONTROLLER_ONLY | BOTH)
        for name in BROKER_ONLY:
            assert name not in node.mbeans, f"broker MBean {name} on controller {node.name}"
    for node in busy_cluster.brokers.values():
        _check(busy_cluster, node, BOTH)
        for name in CONTROLLER_ONLY:
            assert name not in node.mbeans, f"controller MBean {name} on broker {node.name}"


def test_broker_beans(busy_cluster):
    leader = busy_cluster.active_controller().image.partition("orders", 0).leader
    _check(busy_cluster, busy_cluster.brokers[f"broker-{leader}"], BROKER_ONLY)


def test_lazily_created_beans_appear_on_use(busy_cluster):
    c = busy_cluster
    assert c.values("kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders", "Count")
    versioned = c.values("kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,version=12", "Count")
    assert sum(versioned.values()) >= 1
    errors = c.values("kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=Produce,error=NONE", "Count")
    assert sum(errors.values()) >= 1
    follower_lag = [n for b in c.brokers.values() for n in b.mbeans.names()
                    if str(n).startswith("kafka.server:type=FetcherLagMetrics,name=ConsumerLag,clientId=ReplicaFetcherThread-0-")]
    assert follower_lag


def test_attribute_types_follow_kafka(busy_cluster):
    b = busy_cluster.brokers["broker-1"]
    meter = b.mbeans.get("kafka.server:type=ReplicaManager,name=IsrShrinksPerSec")
    assert meter.types()["RateUnit"] == TIME_UNIT and meter.types()["Count"] == "java.lang.Long"
    raft = b.mbeans.get("kafka.server:type=raft-metrics")
    assert set(raft.types().values()) == {"java.lang.Double"}        # published as declared double
    assert isinstance(raft.read(0)["current-state"], str)             # ... but returns a String here
    assert b.mbeans.read("kafka.server:type=KafkaServer,name=ClusterId")["Value"] == busy_cluster.cluster_id


def test_values_come_from_state(busy_cluster):
    c = busy_cluster
    leaders = c.values("kafka.server:type=ReplicaManager,name=LeaderCount")
    assert sum(leaders.values()) == 12 + 50               # orders + __consumer_offsets
    sizes = c.values("kafka.log:type=Log,name=LogEndOffset,topic=orders,partition=0")
    assert len(set(sizes.values())) == 1                 # every replica caught up
    idle = c.values("kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent", "OneMinuteRate")
    assert all(0.5 < v <= 1.0 for v in idle.values())
    active = c.active_controller().name
    hist = c.value(active, "kafka.controller:type=ControllerEventManager,name=EventQueueProcessingTimeMs", "Count")
    assert hist > 10                                     # heartbeats, fencing checks, NoOps...
    commit = c.value(c.active_controller().name, "kafka.server:type=raft-metrics", "commit-latency-max")
    assert not math.isnan(commit) and commit > 0
    assert c.value("broker-1", "kafka.server:type=app-info", "version") == "4.1.1"
    assert c.values("kafka.coordinator.group:type=GroupMetadataManager,name=NumGroupsStable") and \
        sum(c.values("kafka.coordinator.group:type=GroupMetadataManager,name=NumGroupsStable").values()) == 1
