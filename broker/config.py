"""Kafka settings the simulation honours, with Kafka's defaults.

Names are Kafka's own config keys (broker, topic and client settings share one namespace here,
as a scenario sets them all in one place). An unknown key or a wrong type is an error that
names the key and the closest known ones.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_common.yamlconf import InputError

# key: (default, type, documentation hint)
DEFAULTS: dict[str, tuple[Any, type]] = {
    # KRaft quorum
    "controller.quorum.election.timeout.ms": (1000, int),
    "controller.quorum.fetch.timeout.ms": (2000, int),
    "controller.quorum.request.timeout.ms": (2000, int),
    "metadata.max.idle.interval.ms": (500, int),
    # broker lifecycle
    "broker.heartbeat.interval.ms": (2000, int),
    "broker.session.timeout.ms": (9000, int),
    # replication
    "replica.lag.time.max.ms": (30000, int),
    "replica.fetch.wait.max.ms": (500, int),
    "replica.fetch.max.bytes": (1048576, int),
    "replica.fetch.backoff.ms": (1000, int),
    "max.incremental.fetch.session.cache.slots": (1000, int),
    "min.insync.replicas": (1, int),
    "unclean.leader.election.enable": (False, bool),
    "auto.leader.rebalance.enable": (True, bool),
    "leader.imbalance.check.interval.seconds": (300, int),
    "log.segment.bytes": (1073741824, int),
    # retention (LogManager's cleanup task): the brokers' defaults; a topic's own retention.ms, retention.bytes,
    # segment.bytes and segment.ms win over them
    "log.retention.hours": (168, int),
    "log.retention.bytes": (-1, int),
    "log.roll.hours": (168, int),
    "log.retention.check.interval.ms": (300000, int),
    "log.initial.task.delay.ms": (30000, int),
    "retention.ms": (604800000, int),
    "retention.bytes": (-1, int),
    "segment.bytes": (1073741824, int),
    "segment.ms": (604800000, int),
    # comma-separated (JBOD); Kafka falls back to log.dir's default when log.dirs is unset
    "log.dirs": ("/tmp/kafka-logs", str),
    "num.io.threads": (8, int),
    "num.network.threads": (3, int),
    "connections.max.idle.ms": (600000, int),
    "num.partitions": (1, int),
    "default.replication.factor": (1, int),
    # group coordinator
    "offsets.topic.num.partitions": (50, int),
    "offsets.topic.replication.factor": (3, int),
    "group.initial.rebalance.delay.ms": (3000, int),
    "group.min.session.timeout.ms": (6000, int),
    "group.max.session.timeout.ms": (1800000, int),
    "group.consumer.session.timeout.ms": (45000, int),
    "group.consumer.heartbeat.interval.ms": (5000, int),
    # share groups (KIP-932): 4.1 serves them only with this internal switch (or the share.version feature)
    "group.share.enable": (False, bool),
    "group.share.session.timeout.ms": (45000, int),
    "group.share.heartbeat.interval.ms": (5000, int),
    "group.share.max.size": (200, int),
    "group.share.record.lock.duration.ms": (30000, int),
    "group.share.delivery.count.limit": (5, int),
    "group.share.partition.max.record.locks": (2000, int),
    "group.share.max.share.sessions": (2000, int),
    "share.coordinator.state.topic.num.partitions": (50, int),
    "share.coordinator.state.topic.replication.factor": (3, int),
    "share.coordinator.state.topic.min.isr": (2, int),
    # producer
    "acks": ("all", str),
    "linger.ms": (5, int),
    "request.timeout.ms": (30000, int),
    "delivery.timeout.ms": (120000, int),
    "retry.backoff.ms": (100, int),
    "max.block.ms": (60000, int),
    "enable.idempotence": (True, bool),
    "partitioner.ignore.keys": (False, bool),
    # consumer
    "session.timeout.ms": (45000, int),
    "heartbeat.interval.ms": (3000, int),
    "max.poll.interval.ms": (300000, int),
    "auto.commit.interval.ms": (5000, int),
    "enable.auto.commit": (True, bool),
    "auto.offset.reset": ("latest", str),
    "fetch.max.wait.ms": (500, int),
    "fetch.max.bytes": (52428800, int),
    "max.poll.records": (500, int),
    "partition.assignment.strategy": ("range", str),
    "group.protocol": ("classic", str),
    "group.remote.assignor": ("", str),
}

# a topic's settings, and the broker setting each falls back to (LogConfig's synonyms)
TOPIC_SYNONYMS = {"min.insync.replicas": "min.insync.replicas",
                  "unclean.leader.election.enable": "unclean.leader.election.enable",
                  "retention.ms": "log.retention.hours", "retention.bytes": "log.retention.bytes",
                  "segment.bytes": "log.segment.bytes", "segment.ms": "log.roll.hours"}
TOPIC_KEYS = set(TOPIC_SYNONYMS)
# a topic's only: a broker has their log.* synonyms instead
TOPIC_ONLY_KEYS = {k for k, broker in TOPIC_SYNONYMS.items() if k != broker}
HOURS_MS = 3_600_000
# the producer's and consumer's settings: not a broker's (DescribeConfigs leaves them out)
CLIENT_KEYS = {"acks", "linger.ms", "delivery.timeout.ms", "retry.backoff.ms", "max.block.ms", "enable.idempotence",
               "partitioner.ignore.keys", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
               "auto.commit.interval.ms", "enable.auto.commit", "auto.offset.reset", "fetch.max.wait.ms",
               "fetch.max.bytes", "max.poll.records", "partition.assignment.strategy", "group.protocol",
               "group.remote.assignor"}
BROKER_KEYS = sorted(set(DEFAULTS) - CLIENT_KEYS - TOPIC_ONLY_KEYS)
# DynamicBrokerConfig's reconfigurable settings among BROKER_KEYS; the others are read-only on a running broker
DYNAMIC_BROKER_KEYS = {"min.insync.replicas", "unclean.leader.election.enable", "log.segment.bytes", "num.io.threads",
                       "num.network.threads", "log.retention.bytes", "log.roll.hours", "log.retention.hours"}
# ConfigDef types where they are not what the Python type says (DescribeConfigsResponse's config_type)
LONG_KEYS = {"replica.lag.time.max.ms", "leader.imbalance.check.interval.seconds", "connections.max.idle.ms",
             "log.retention.bytes", "log.retention.check.interval.ms", "log.initial.task.delay.ms", "retention.ms",
             "retention.bytes", "segment.ms"}
# -1: no limit (Kafka's ConfigDef lets these below 0)
UNLIMITED_KEYS = {"retention.ms", "retention.bytes", "log.retention.bytes", "log.retention.hours"}
# KIP-1030 (Kafka 4.0): segments of at least 1 MiB
MIN_SEGMENT_BYTES = 1_048_576
# DescribeConfigsResponse's config sources
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


class KafkaConfigError(InputError):
    """A setting the simulation cannot honour; the message names the key."""


def check(key: str, value: Any, where: str = "config") -> Any:
    if key not in DEFAULTS:
        close = difflib.get_close_matches(key, DEFAULTS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see broker/config.py for the supported settings)"
        raise KafkaConfigError(f"{where}: unknown Kafka setting {key!r}{hint}")
    _default, kind = DEFAULTS[key]
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise KafkaConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)          # as Kafka's configs arrive on the wire (CreateTopics, AlterConfigs)
        if isinstance(value, bool) or not isinstance(value, int):
            raise KafkaConfigError(f"{where}: {key} must be an integer, got {value!r}")
        if value < (-1 if key in UNLIMITED_KEYS else 0):
            raise KafkaConfigError(f"{where}: {key} must not be negative{' (-1: no limit)' if key in UNLIMITED_KEYS else ''}, "
                                   f"got {value}")
        if key in ("segment.bytes", "log.segment.bytes") and value < MIN_SEGMENT_BYTES:
            raise KafkaConfigError(f"{where}: invalid value {value} for configuration {key}: value must be at least "
                                   f"{MIN_SEGMENT_BYTES} (Kafka 4.0 refuses smaller segments, KIP-1030)")
        return value
    if not isinstance(value, (str, int)):
        raise KafkaConfigError(f"{where}: {key} must be a string, got {value!r}")
    value = str(value)
    if key == "acks" and value not in ("0", "1", "all", "-1"):
        raise KafkaConfigError(f"{where}: acks must be 0, 1 or all, got {value!r}")
    if key == "auto.offset.reset" and value not in ("earliest", "latest", "none"):
        raise KafkaConfigError(f"{where}: auto.offset.reset must be earliest, latest or none, got {value!r}")
    if key == "partition.assignment.strategy" and value not in ("range", "roundrobin"):
        raise KafkaConfigError(f"{where}: partition.assignment.strategy must be range or roundrobin, got {value!r}")
    if key == "group.protocol" and value not in ("classic", "consumer"):
        raise KafkaConfigError(f"{where}: group.protocol must be classic or consumer, got {value!r}")
    if key == "group.remote.assignor" and value not in ("", "uniform", "range"):
        raise KafkaConfigError(f"{where}: group.remote.assignor must be uniform or range, got {value!r}")
    if key == "log.dirs":
        dirs = [d.strip() for d in value.split(",")]
        if not all(dirs) or len(set(dirs)) != len(dirs):
            raise KafkaConfigError(f"{where}: log.dirs must list distinct directories separated by commas, got {value!r}")
        value = ",".join(dirs)
    return value


class KafkaConfig(Mapping[str, Any]):
    """Kafka's defaults overlaid with the given settings, validated."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, where: str = "config") -> None:
        self._values = {k: d for k, (d, _) in DEFAULTS.items()}
        for key, value in (overrides or {}).items():
            self._values[key] = check(key, value, where)
        if self._values["heartbeat.interval.ms"] >= self._values["session.timeout.ms"]:
            raise KafkaConfigError(f"{where}: heartbeat.interval.ms must be lower than session.timeout.ms")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def with_overrides(self, overrides: Mapping[str, Any], where: str) -> KafkaConfig:
        merged = {k: v for k, v in self._values.items() if v != DEFAULTS[k][0]}
        merged.update({k: check(k, v, where) for k, v in overrides.items()})
        return KafkaConfig(merged, where)


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One setting as DescribeConfigs reports it: its value, where the value comes from, and the
    synonyms that were looked at (most precedent first)."""
    name: str
    value: str
    source: int
    read_only: bool
    config_type: str
    synonyms: tuple[tuple[str, str, int], ...]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _type(key: str) -> str:
    kind = DEFAULTS[key][1]
    if kind is bool:
        return "BOOLEAN"
    if kind is int:
        return "LONG" if key in LONG_KEYS else "INT"
    return "LIST" if key == "log.dirs" else "STRING"


def _broker_source(cfg: Mapping[str, Any], key: str) -> tuple[str, str, int]:
    value = cfg[key]
    return key, _text(value), DEFAULT_CONFIG if value == DEFAULTS[key][0] else STATIC_BROKER_CONFIG


def describe_broker(cfg: Mapping[str, Any], keys: Iterable[str] | None) -> list[ConfigEntry]:
    """A broker's settings (keys: those asked for; None: all)."""
    wanted = BROKER_KEYS if keys is None else [k for k in keys if k in BROKER_KEYS]
    out = []
    for key in wanted:
        _, value, source = _broker_source(cfg, key)
        out.append(ConfigEntry(key, value, source, key not in DYNAMIC_BROKER_KEYS, _type(key), ((key, value, source),)))
    return out


def topic_setting(cfg: Mapping[str, Any], overrides: Mapping[str, Any], key: str) -> Any:
    """A topic's setting: its own where set (CreateTopics, AlterConfigs), else the broker's synonym in the
    topic setting's unit."""
    if key in overrides:
        return overrides[key]
    broker_key = TOPIC_SYNONYMS[key]
    value = cfg[broker_key]
    return value * HOURS_MS if broker_key.endswith(".hours") and value >= 0 else value


def describe_topic(cfg: Mapping[str, Any], overrides: Mapping[str, Any], keys: Iterable[str] | None) -> list[ConfigEntry]:
    """A topic's settings: its own where set (CreateTopics, AlterConfigs), else the broker's."""
    wanted = sorted(TOPIC_KEYS) if keys is None else [k for k in keys if k in TOPIC_KEYS]
    out = []
    for key in wanted:
        synonyms = [_broker_source(cfg, TOPIC_SYNONYMS[key])]
        if key in overrides:
            synonyms.insert(0, (key, _text(overrides[key]), DYNAMIC_TOPIC_CONFIG))
        source = synonyms[0][2]
        out.append(ConfigEntry(key, _text(topic_setting(cfg, overrides, key)), source, False, _type(key),
                               tuple(synonyms)))
    return out
