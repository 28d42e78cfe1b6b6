"""LogManager of one broker: the partition logs under log.dirs, which directory holds each, the
directories that failed, the high-watermark checkpoints, and retention: every
log.retention.check.interval.ms (the first log.initial.task.delay.ms after start) each log deletes the
segments its topic's retention.ms and retention.bytes no longer keep."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from broker.config import topic_setting
from broker.log import Log
from broker.mbeans.yammer import INT, LONG
from broker.raft import QuorumStore
from broker.structs import TopicPartition

if TYPE_CHECKING:
    from broker.broker import BrokerNode

# Kafka's internal topics, created with cleanup.policy=compact (no compaction here: they are kept whole)
COMPACTED = {"__consumer_offsets", "__share_group_state", "__transaction_state"}


@dataclass
class BrokerDisk:
    """What survives a broker restart: partition logs (each in one of log.dirs), the metadata log,
    HW checkpoints."""
    logs: dict[TopicPartition, Log] = field(default_factory=dict)
    dirs: dict[TopicPartition, str] = field(default_factory=dict)
    quorum: QuorumStore = field(default_factory=lambda: QuorumStore(Log()))
    hw_checkpoint: dict[TopicPartition, int] = field(default_factory=dict)


class LogManager:
    def __init__(self, node: BrokerNode, disk: BrokerDisk) -> None:
        self.node = node
        self.disk = disk
        disk.quorum.log.io = node.disk_io
        self.log_dirs: tuple[str, ...] = tuple(node.cfg["log.dirs"].split(","))
        # a failed directory stays offline until the process restarts, as in Kafka
        self.offline_dirs: set[str] = set()
        # RetentionSizeInPercent (KIP-1257, Kafka 4.3): set by each retention check, as UnifiedLog does
        self.retention_percent: dict[TopicPartition, int] = {}

    def start(self) -> None:
        """LogManager.startup's kafka-log-retention task."""
        cfg = self.node.cfg
        self.node.every(float(cfg["log.retention.check.interval.ms"]), self.cleanup_logs,
                        first_ms=float(cfg["log.initial.task.delay.ms"]))

    def _setting(self, tp: TopicPartition, key: str) -> int:
        topic = self.node.image.topics.get(tp.topic)
        return int(str(topic_setting(self.node.cfg, topic.configs if topic else {}, key)))

    def configure(self, tp: TopicPartition, log: Log) -> None:
        """The log's topic settings (its own, else the brokers'), as a LogConfig update applies them."""
        log.segment_bytes = self._setting(tp, "segment.bytes")
        log.segment_ms = float(self._setting(tp, "segment.ms"))

    def cleanup_logs(self) -> None:
        """LogManager.cleanupLogs: each live log deletes what its retention settings no longer keep."""
        now = self.node.now()          # the batches' timestamps are on the cluster's clock too
        partitions = self.node.replica_manager.partitions
        for tp, log in self.disk.logs.items():
            p = partitions.get(tp)
            if p is None or self.disk.dirs.get(tp) in self.offline_dirs:
                continue
            self.configure(tp, log)
            retention_bytes = self._setting(tp, "retention.bytes")
            if tp.topic in COMPACTED:       # cleanup.policy=compact: only what is below the log start offset goes
                log.delete_old_segments(now, -1, -1, p.high_watermark)
            else:
                log.delete_old_segments(now, self._setting(tp, "retention.ms"), retention_bytes, p.high_watermark)
            self.retention_percent[tp] = log.size * 100 // retention_bytes if retention_bytes > 0 else 0

    def register_metrics(self) -> None:
        m = self.node.mbeans
        for name, read in self.node.disk_io.gauges(self.node.kafka.linux_io_all_fields):
            m.gauge("kafka.server", "KafkaServer", name, read, java_type=LONG)
        m.gauge("kafka.log", "LogManager", "OfflineLogDirectoryCount", lambda: len(self.offline_dirs), java_type=INT)
        for d in self.log_dirs:
            m.gauge("kafka.log", "LogManager", "LogDirectoryOffline", lambda d=d: int(d in self.offline_dirs),
                    {"logDirectory": d}, java_type=INT)

    def register_log_metrics(self, tp: TopicPartition) -> None:
        m = self.node.mbeans
        tags = {"topic": tp.topic, "partition": str(tp.partition)}
        log = self.disk.logs[tp]
        m.gauge("kafka.log", "Log", "Size", lambda: log.size, tags, LONG)
        m.gauge("kafka.log", "Log", "LogEndOffset", lambda: log.end_offset, tags, LONG)
        m.gauge("kafka.log", "Log", "LogStartOffset", lambda: log.start_offset, tags, LONG)
        m.gauge("kafka.log", "Log", "NumLogSegments", lambda: log.num_segments, tags, INT)
        if self.node.kafka.retention_size_percent:
            m.gauge("kafka.log", "Log", "RetentionSizeInPercent", lambda: self.retention_percent.get(tp, 0), tags, INT)

    def live_dirs(self) -> list[str]:
        return [d for d in self.log_dirs if d not in self.offline_dirs]

    def log_for(self, tp: TopicPartition) -> Log | None:
        """tp's log, created in its directory on first use; None when that directory is offline."""
        if self._dir_for(tp) is None:
            return None
        log = self.disk.logs.get(tp)
        if log is None:
            log = self.disk.logs[tp] = Log(io=self.node.disk_io)
        self.configure(tp, log)
        return log

    def _dir_for(self, tp: TopicPartition) -> str | None:
        """The directory holding tp's log: where it already is, else the live directory with the
        fewest logs (LogManager's placement); None when that directory is offline."""
        placed = self.disk.dirs.get(tp)
        if placed is None:
            live = self.live_dirs()
            counts = {d: 0 for d in live}
            for d in self.disk.dirs.values():
                if d in counts:
                    counts[d] += 1
            placed = min(live, key=lambda d: (counts[d], live.index(d)))
            self.disk.dirs[tp] = placed
        return None if placed in self.offline_dirs else placed

    def fail_dir(self, log_dir: str | None) -> tuple[str, bool, list[TopicPartition]]:
        """Marks log_dir (default: the first live one) offline: (the directory, whether it was the last
        live one, the partitions whose logs it held)."""
        live = self.live_dirs()
        log_dir = log_dir or (live[0] if live else None)
        if log_dir not in live:
            raise ValueError(f"{self.node.name}: {log_dir!r} is not a live log directory "
                             f"(live: {', '.join(live) or 'none'})")
        self.offline_dirs.add(log_dir)
        return log_dir, len(live) == 1, sorted(tp for tp, d in self.disk.dirs.items() if d == log_dir)

    def checkpoint_hw(self, high_watermarks: dict[TopicPartition, int]) -> None:
        self.disk.hw_checkpoint = dict(high_watermarks)
