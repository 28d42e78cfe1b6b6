"""Scenario files: a cluster, Kafka settings, topics, a workload and a timeline of faults.

    cluster: {brokers: 5, controllers: 3, seed: 7, kafka_version: "4.1"}   # 4.1 (default) or 4.4
    # or {combined: 3}: nodes with process.roles=broker,controller (combined-1..3, node.id 1..3), with
    # brokers and controllers beside them if given (brokers then take the node.ids after the combined ones)
    config: {replica.lag.time.max.ms: 30000}
    topics:
      - {name: orders, partitions: 12, replication_factor: 3, min_insync_replicas: 2}
    workload:
      - {producer: p1, topic: orders, rate: 200, acks: all, keys: 100}
      - {consumer_group: billing, topic: orders, members: 3}
      - {share_group: jobs, topic: orders, members: 2}   # share consumers (KIP-932; on 4.1 needs
                                                          # config group.share.enable: true)
    timeline:
      - {at: 10s, kill: broker-3}
      - {at: 40s, restart: broker-3}
      - {at: 60s, slow: broker-2, fetch_delay: 45s}
      - {at: 80s, fail_log_dir: broker-1}          # needs log.dirs with two or more directories
      - {at: 90s, flood: orders, bytes_per_sec: 100MB}
      - {at: 95s, slow: broker-1, disk_delay: 80ms}
      - {at: 100s, heal: all}
      - {at: 105s, pause: broker-2}                # a hung process (SIGSTOP on a real cluster)
      - {at: 110s, resume: broker-2}
      - {at: 115s, elect_leaders: all}             # preferred leader election (kafka-leader-election)
      - {at: 120s, bounce: active-controller, down: 5s}   # a restart: down 5 s, then started again
      - {at: 130s, kill: controllers}              # every running controller (restart: every stopped one)
    run_for: 140s

Every mistake is reported with the file, line and field, all at once.
"""
from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from typing import Any

from broker.cluster import LEADER_OF
from broker.config import DEFAULTS, TOPIC_KEYS, TOPIC_ONLY_KEYS, TOPIC_SYNONYMS, KafkaConfig, KafkaConfigError, check
from broker.versions import DEFAULT_LINE, kafka_line
from broker.workload import ConsumerGroupSpec, ProducerSpec
from kafka_common.durations import parse_bytes, parse_duration_ms
from kafka_common.faults import CONSUMER_ACTIONS, FAULTS
from kafka_common.yamlconf import Doc, read_text


def bundled_scenario(name: str) -> str:
    """The text of a scenario shipped in broker/scenarios (demo.yaml, rehearsal.yaml)."""
    return importlib.resources.files("broker").joinpath("scenarios", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int | None = None
    configs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    at_ms: float
    action: str                      # one of FAULTS
    node: str | None                 # None: heal everything; flood: the topic
    fetch_delay_ms: float = 0.0
    event_delay_ms: float = 0.0
    line: int = 0
    expect: tuple[str, ...] = ()     # alert rehearsal: the catalog triggers this fault should fire
    disk_delay_ms: float = 0.0       # slow: every append on the broker's disk takes this much longer
    bytes_per_sec: float = 0.0       # flood: what the flooding producer sends
    log_dir: str | None = None       # fail_log_dir: which of log.dirs (default: the first live one)
    allow: tuple[str, ...] = ()      # alert rehearsal: what it may also raise (side effects), not required
    down_ms: float = 0.0             # bounce: how long the node stays down before it starts again
    processing_ms: float = 0.0       # slow_consumer: each record then takes this long to process

    @property
    def target(self) -> str:
        """The node (or topic) of an action that needs one; loading refuses such a fault without it."""
        if self.node is None:
            raise ValueError(f"{self.action} needs a node")
        return self.node


@dataclass(frozen=True)
class Scenario:
    brokers: int = 5
    controllers: int = 3
    seed: int = 42
    kafka_version: str = DEFAULT_LINE      # which Kafka line the embedded cluster's MBeans are
    config: dict[str, Any] = field(default_factory=dict)
    topics: tuple[TopicSpec, ...] = ()
    producers: tuple[ProducerSpec, ...] = ()
    groups: tuple[ConsumerGroupSpec, ...] = ()
    timeline: tuple[Fault, ...] = ()
    run_for_ms: float = 60_000.0
    source: str = "<scenario>"
    combined: int = 0                      # nodes with process.roles=broker,controller (node.id 1..N)

    @property
    def broker_count(self) -> int:
        """Nodes that hold replicas: brokers and combined nodes."""
        return self.brokers + self.combined

    def node_names(self) -> list[str]:
        """The cluster's nodes in the engines' order: controllers, combined nodes, brokers."""
        return [f"controller-{1000 + i}" for i in range(1, self.controllers + 1)] + \
               [f"combined-{i}" for i in range(1, self.combined + 1)] + \
               [f"broker-{i}" for i in range(self.combined + 1, self.combined + self.brokers + 1)]


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def describe_nodes(scenario: Scenario) -> str:
    """'3 brokers, 3 controllers', '3 combined nodes', '3 combined nodes, 2 brokers', ..."""
    counts = ((scenario.combined, "combined node"), (scenario.brokers, "broker"), (scenario.controllers, "controller"))
    return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in counts if n)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a number of nodes (0 or more), got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"expected a non-negative number, got {value!r}")
    return float(value)


def _str(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def load_scenario(text: str, source: str = "<scenario>") -> Scenario:
    r = Doc(text, source)
    top = r.mapping(r.data, (), {"cluster", "config", "topics", "workload", "timeline", "run_for"})

    cluster = r.mapping(top.get("cluster", {}), ("cluster",),
                        {"brokers", "controllers", "combined", "seed", "kafka_version"})
    combined = r.get(cluster, ("cluster",), "combined", _count, 0)
    # beside combined nodes, separate brokers and controllers are optional
    brokers = r.get(cluster, ("cluster",), "brokers", _count if combined else _positive_int, 0 if combined else 5)
    controllers = r.get(cluster, ("cluster",), "controllers", _count if combined else _positive_int,
                        0 if combined else 3)
    seed = r.get(cluster, ("cluster",), "seed", _int, 42)
    kafka_version = r.get(cluster, ("cluster",), "kafka_version", lambda v: kafka_line(_str(v)).line, DEFAULT_LINE)

    config = top.get("config", {}) or {}
    if not isinstance(config, dict):
        r.fail(("config",), "expected a mapping of Kafka settings")
        config = {}
    checked: dict[str, Any] = {}
    for key, value in config.items():
        if key in TOPIC_ONLY_KEYS:
            r.fail(("config", key), f"a topic's setting: give it in the topic's config, or "
                                    f"{TOPIC_SYNONYMS[key]} here for every topic")
            continue
        try:
            checked[key] = check(key, value, r.where(("config", key)))
        except KafkaConfigError as e:
            r.problems.append(str(e))
    try:
        KafkaConfig(checked, r.where(("config",)))
    except KafkaConfigError as e:
        r.problems.append(str(e))

    topics = []
    names = set()
    for i, t in enumerate(r.sequence(top, "topics")):
        path = ("topics", i)
        t = r.mapping(t, path, {"name", "partitions", "replication_factor", "min_insync_replicas", "config"})
        name = r.get(t, path, "name", _str, required=True)
        partitions = r.get(t, path, "partitions", _positive_int, 1)
        rf = r.get(t, path, "replication_factor", _positive_int, 1)
        min_isr = r.get(t, path, "min_insync_replicas", _positive_int)
        tcfg = t.get("config", {}) or {}
        for key in tcfg:
            if key not in TOPIC_KEYS:
                r.fail(path + ("config", key), f"not a topic setting the simulation honours (use: {', '.join(sorted(TOPIC_KEYS))})")
                continue
            try:
                tcfg[key] = check(key, tcfg[key], r.where(path + ("config", key)))
            except KafkaConfigError as e:
                r.problems.append(str(e))
        if name in names:
            r.fail(path + ("name",), f"topic {name!r} is defined twice")
        if name is not None:
            names.add(name)
        serving = (brokers or 0) + (combined or 0)
        if isinstance(rf, int) and rf > serving:
            r.fail(path + ("replication_factor",), f"replication factor {rf} is above the broker count {serving} "
                                                   "(brokers and combined nodes)")
        if isinstance(min_isr, int) and isinstance(rf, int) and min_isr > rf:
            r.fail(path + ("min_insync_replicas",), f"min.insync.replicas {min_isr} is above the replication factor {rf}")
        topics.append(TopicSpec(str(name), partitions, rf, min_isr, dict(tcfg)))

    producers, groups = [], []
    for i, w in enumerate(r.sequence(top, "workload")):
        path = ("workload", i)
        if isinstance(w, dict) and "producer" in w:
            w = r.mapping(w, path, {"producer", "topic", "rate", "acks", "keys", "record_size", "batch_interval",
                                    "config"})
            topic = r.get(w, path, "topic", _str, required=True)
            if topic is not None and topic not in names:
                r.fail(path + ("topic",), f"unknown topic {topic!r} (topics: {', '.join(sorted(names)) or 'none'})")
            acks = r.get(w, path, "acks", _str, "all")
            if acks not in ("0", "1", "all", "-1"):
                r.fail(path + ("acks",), f"acks must be 0, 1 or all, got {acks!r}")
            producers.append(ProducerSpec(str(w["producer"]), str(topic), r.get(w, path, "rate", _number, 100.0),
                                          str(acks), r.get(w, path, "keys", _int, 0),
                                          r.get(w, path, "record_size", _positive_int, 100), dict(w.get("config") or {}),
                                          r.get(w, path, "batch_interval", parse_duration_ms, 100.0)))
        elif isinstance(w, dict) and "consumer_group" in w:
            w = r.mapping(w, path, {"consumer_group", "topic", "members", "commit", "processing_ms", "config"})
            topic = r.get(w, path, "topic", _str, required=True)
            if topic is not None and topic not in names:
                r.fail(path + ("topic",), f"unknown topic {topic!r} (topics: {', '.join(sorted(names)) or 'none'})")
            commit = r.get(w, path, "commit", _str, "auto")
            if commit not in ("auto", "before", "after"):
                r.fail(path + ("commit",), f"commit must be auto, before or after, got {commit!r}")
            groups.append(ConsumerGroupSpec(str(w["consumer_group"]), str(topic),
                                            r.get(w, path, "members", _positive_int, 1), str(commit),
                                            r.get(w, path, "processing_ms", _number, 0.0), dict(w.get("config") or {})))
        elif isinstance(w, dict) and "share_group" in w:
            w = r.mapping(w, path, {"share_group", "topic", "members", "processing_ms", "config"})
            topic = r.get(w, path, "topic", _str, required=True)
            if topic is not None and topic not in names:
                r.fail(path + ("topic",), f"unknown topic {topic!r} (topics: {', '.join(sorted(names)) or 'none'})")
            if not (kafka_line(kafka_version).share_groups_ga or checked.get("group.share.enable")):
                r.fail(path, f"share groups are a preview in Kafka {kafka_version}: set config group.share.enable: "
                             "true, or cluster kafka_version: \"4.4\"")
            groups.append(ConsumerGroupSpec(str(w["share_group"]), str(topic), r.get(w, path, "members", _positive_int, 1),
                                            "auto", r.get(w, path, "processing_ms", _number, 0.0),
                                            dict(w.get("config") or {}), share=True))
        else:
            r.fail(path, "a workload entry needs 'producer', 'consumer_group' or 'share_group'")

    shape = Scenario(brokers or 0, controllers or 0, combined=combined or 0)
    node_names = set(shape.node_names()) | {"active-controller"}
    timeline = []
    for i, f in enumerate(r.sequence(top, "timeline")):
        path = ("timeline", i)
        f = r.mapping(f, path, {"at", *FAULTS, "fetch_delay", "event_delay", "disk_delay", "bytes_per_sec",
                                "log_dir", "expect", "allow", "down", "processing_ms"})
        at = r.get(f, path, "at", parse_duration_ms, 0.0, required=True)
        actions = [a for a in FAULTS if a in f]
        if len(actions) != 1:
            r.fail(path, f"exactly one action needed, one of {', '.join(FAULTS)}")
            continue
        action = actions[0]
        target = f[action]
        if action in ("heal", "elect_leaders") and target in (None, "all"):
            target = None
        elif action == "elect_leaders":
            r.fail(path + (action,), f"elect_leaders takes all (a preferred leader election over every partition), "
                                     f"got {target!r}")
            continue
        elif action == "corrupt_metadata" and not str(target).startswith(("controller-", "combined-",
                                                                           "active-controller")):
            r.fail(path + (action,), f"corrupt_metadata needs the active controller (active-controller, "
                                     f"controller-N or combined-N), got {target!r}")
            continue
        elif action in CONSUMER_ACTIONS:
            group_names = {g.group for g in groups}
            if target not in group_names:
                r.fail(path + (action,), f"{action} needs a consumer group of the workload, got {target!r} "
                                         f"(groups: {', '.join(sorted(group_names)) or 'none'})")
                continue
        elif action == "flood":
            if target not in names:
                r.fail(path + (action,), f"flood needs a topic of the scenario, got {target!r} "
                                         f"(topics: {', '.join(sorted(names)) or 'none'})")
                continue
        elif str(target).startswith(LEADER_OF):
            topic, _, idx = str(target).removeprefix(LEADER_OF).rpartition("-")
            spec = next((t for t in topics if t.name == topic), None)
            if spec is None or not idx.isdigit() or int(idx) >= spec.partitions:
                r.fail(path + (action,), f"{target!r}: leader: needs a partition of the scenario, like "
                                         f"{LEADER_OF}{next(iter(sorted(names)), 'orders')}-0")
                continue
            if action not in ("kill", "isolate", "slow", "fail_log_dir", "pause"):
                r.fail(path + (action,), f"{action} cannot target a partition leader")
                continue
        elif target == "controllers":
            if action not in ("kill", "restart"):
                r.fail(path + (action,), f"{action} cannot target every controller (controllers: kill or restart)")
                continue
        elif action == "fail_log_dir" and not str(target).startswith(("broker-", "combined-")):
            r.fail(path + (action,), f"fail_log_dir needs a broker (broker-N, combined-N or leader:TOPIC-N), "
                                     f"got {target!r}")
            continue
        elif target not in node_names:
            r.fail(path + (action,), f"unknown node {target!r} (nodes: {', '.join(shape.node_names())}, "
                                     "active-controller, controllers)")
            continue
        fetch_delay = r.get(f, path, "fetch_delay", parse_duration_ms, 0.0)
        event_delay = r.get(f, path, "event_delay", parse_duration_ms, 0.0)
        disk_delay = r.get(f, path, "disk_delay", parse_duration_ms, 0.0)
        bytes_per_sec = r.get(f, path, "bytes_per_sec", parse_bytes, 0.0)
        log_dir = r.get(f, path, "log_dir", _str, None)
        down = r.get(f, path, "down", parse_duration_ms, 5_000.0)
        if "down" in f and action != "bounce":
            r.fail(path + ("down",), "down belongs to bounce")
        if action == "slow" and not (fetch_delay or event_delay or disk_delay):
            r.fail(path, "slow needs fetch_delay or disk_delay (a broker) or event_delay (a controller)")
        if action == "flood" and not bytes_per_sec:
            r.fail(path, "flood needs bytes_per_sec, e.g. 100MB")
        processing_ms = r.get(f, path, "processing_ms", _number, 0.0)
        if action == "slow_consumer" and not processing_ms:
            r.fail(path, "slow_consumer needs processing_ms (per record), e.g. processing_ms: 50")
        if "processing_ms" in f and action != "slow_consumer":
            r.fail(path + ("processing_ms",), "processing_ms belongs to slow_consumer")
        if log_dir is not None and action != "fail_log_dir":
            r.fail(path + ("log_dir",), "log_dir belongs to fail_log_dir")
        dirs = str(checked.get("log.dirs", DEFAULTS["log.dirs"][0]))
        if log_dir is not None and log_dir not in dirs.split(","):
            r.fail(path + ("log_dir",), f"{log_dir!r} is not one of log.dirs ({dirs})")
        lists = {}
        for key in ("expect", "allow"):
            ids = f.get(key, []) or []
            if not isinstance(ids, list) or not all(isinstance(e, str) for e in ids):
                r.fail(path + (key,), "expected a list of trigger ids from the catalog")
                ids = []
            lists[key] = tuple(ids)
        timeline.append(Fault(at, action, target, fetch_delay, event_delay, r.lines.get(path, 0), lists["expect"],
                              disk_delay, bytes_per_sec, log_dir, lists["allow"],
                              down if action == "bounce" else 0.0, processing_ms))

    run_for = r.get(top, (), "run_for", parse_duration_ms, 60_000.0)
    r.check()
    return Scenario(brokers, controllers, seed, kafka_version, checked, tuple(topics), tuple(producers), tuple(groups),
                    tuple(sorted(timeline, key=lambda f: f.at_ms)), run_for, source, combined)


def load_scenario_file(path: str) -> Scenario:
    return load_scenario(read_text(path), path)
