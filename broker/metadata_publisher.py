"""The broker's metadata publisher: applies committed metadata records to the broker's image and
hands partition changes to the ReplicaManager, with the broker-metadata and loader metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING

from broker.lifecycle import RUNNING
from broker.log import Batch
from broker.mbeans.yammer import INT, LONG
from broker.metadata import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
)
from broker.structs import TopicPartition

if TYPE_CHECKING:
    from broker.broker import BrokerNode


class MetadataPublisher:
    def __init__(self, node: BrokerNode) -> None:
        self.node = node
        self.counters = {"metadata-load-error-count": 0, "metadata-apply-error-count": 0}

    def register_metrics(self) -> None:
        node = self.node
        m = node.mbeans
        bm = m.kafka_metrics("broker-metadata-metrics")
        bm.add_value("last-applied-record-offset", lambda: node.image.offset)
        bm.add_value("last-applied-record-timestamp", lambda: node.image.timestamp_ms)
        # before the first load Kafka's provenance timestamp is -1: the lag reads as the epoch time
        bm.add_value("last-applied-record-lag-ms",
                     lambda: node.wall_ms() - (node.image.timestamp_ms if node.image.offset >= 0 else -1.0))
        bm.add_value("metadata-load-error-count", lambda: self.counters["metadata-load-error-count"])
        bm.add_value("metadata-apply-error-count", lambda: self.counters["metadata-apply-error-count"])
        # 1 when controller.quorum.voters is set but the quorum is dynamic (KIP-853); ours is static
        bm.add_value("ignored-static-voters", lambda: 0.0)
        self._batch_time = m.histogram("kafka.server", "BrokerMetadataListener", "MetadataBatchProcessingTimeUs")
        self._batch_sizes = m.histogram("kafka.server", "BrokerMetadataListener", "MetadataBatchSizes")
        m.gauge("kafka.server", "MetadataLoader", "CurrentMetadataVersion", lambda: 25, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "CurrentControllerId", lambda: node.raft.leader_id, java_type=INT)
        m.gauge("kafka.server", "MetadataLoader", "HandleLoadSnapshotCount", lambda: 0, java_type=LONG)
        # brokers write metadata snapshots too (SnapshotEmitter); none is due in these scenarios
        m.gauge("kafka.server", "SnapshotEmitter", "LatestSnapshotGeneratedBytes", lambda: 0, java_type=LONG)
        m.gauge("kafka.server", "SnapshotEmitter", "LatestSnapshotGeneratedAgeMs",
                lambda: int(node.now() - node.start_time_ms), java_type=LONG)

    def on_commit(self, batches: list[Batch]) -> None:
        node = self.node
        start = node.now()
        changed: set[TopicPartition] = set()
        for batch in batches:
            for i, record in enumerate(batch.records or ()):
                try:
                    node.image.apply(record, batch.base_offset + i, node.wall_base_ms + batch.timestamp_ms)
                except (KeyError, IndexError, AssertionError):
                    # a record that cannot be replayed is a load error (MetadataBatchLoader), not fatal on a
                    # broker; apply errors are a publisher's failure
                    self.counters["metadata-load-error-count"] += 1
                    continue
                if isinstance(record, (PartitionRecord, PartitionChangeRecord)):
                    changed.add(TopicPartition(record.topic, record.partition))
                elif isinstance(record, ConfigRecord):
                    # a topic's settings changed (IncrementalAlterConfigs): its logs take them at once
                    for tp, log in node.log_manager.disk.logs.items():
                        if tp.topic == record.topic:
                            node.log_manager.configure(tp, log)
                elif isinstance(record, RemoveTopicRecord):
                    changed = {tp for tp in changed if tp.topic != record.name}
                    node.replica_manager.delete_topic(record.name)
                elif isinstance(record, (RegisterBrokerRecord, BrokerRegistrationChangeRecord)) \
                        and record.broker_id == node.node_id:
                    reg = node.image.brokers.get(node.node_id)
                    if reg is not None and reg.epoch == node.lifecycle.broker_epoch and not reg.fenced:
                        node.state = RUNNING
            self._batch_sizes.update(batch.count, node.now())
        self._batch_time.update((node.now() - start) * 1000.0, node.now())
        for tp in sorted(changed):
            state = node.image.partition(*tp)
            if state is None:
                continue
            topic_cfg = node.image.topics[tp.topic].configs
            min_isr = int(str(topic_cfg.get("min.insync.replicas", node.cfg["min.insync.replicas"])))
            node.replica_manager.apply(tp, state, min_isr)
        node.fetcher_manager.shutdown_idle()
