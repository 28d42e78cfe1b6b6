"""The embedded cluster against real Kafka: the same scenario on both engines, every node's MBeans
read over JMX (MBeanInfo: ObjectName, attribute, declared Java type), diffed per role.

ObjectName values that name the workload's things (topics, partitions, clients, groups, log
directories, threads) are normalised to '*', so `kafka.log:type=Log,name=Size,topic=orders,
partition=3` on one side meets the same bean on the other. What the embedded cluster has and real
Kafka lacks is invented; what real Kafka has and the embedded cluster lacks is missing; coverage is
the share of real Kafka's (ObjectName, attribute) pairs the embedded cluster has, per role.
Differences accepted on purpose live in conformance-accepted.yaml, each with its reason.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib.resources
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from kafka_common.names import ObjectName
from kafka_common.roles import BROKER, CONTROLLER, parts

# key properties whose values name the workload's things, not the kind of bean
WORKLOAD_KEYS = {"topic", "partition", "clientId", "client-id", "groupId", "group", "brokerHost", "brokerPort",
                 "networkProcessor", "processor", "logDirectory", "fetcherType", "clientSoftwareName",
                 "clientSoftwareVersion", "brokerId", "leaderid", "user",
                 "version"}     # RequestsPerSec's request version: what the client negotiated

Triple = tuple[str, str, str]          # (normalised ObjectName, attribute, Java type)


def normalise(object_name: str) -> str:
    name = ObjectName.parse(object_name)
    props = [(k, "*" if k in WORKLOAD_KEYS else v) for k, v in name.props]
    return name.domain + ":" + ",".join(f"{k}={v}" for k, v in sorted(props))


def role_view(described: dict[str, list[tuple[str, str, str]]], roles: dict[str, str],
              domains: tuple[str, ...] = ("kafka.",)) -> dict[str, set[Triple]]:
    """Per role, the union over its nodes of (normalised ObjectName, attribute, type) of kafka.* beans."""
    out: dict[str, set[Triple]] = {}
    for node, triples in described.items():
        bucket = out.setdefault(roles[node], set())
        for on, attr, jtype in triples:
            if on.startswith(domains):
                bucket.add((normalise(on), attr, jtype))
    return out


def node_view(described: dict[str, list[tuple[str, str, str]]]) -> dict[str, set[tuple[str, str]]]:
    """Per node, its normalised (ObjectName, attribute) pairs of kafka.* beans."""
    return {node: {(normalise(on), attr) for on, attr, _ in triples if on.startswith("kafka.")}
            for node, triples in described.items()}


@dataclass
class Accepted:
    role: str
    mbean: str                 # a glob over the normalised ObjectName
    attribute: str             # a glob
    side: str                  # invented | missing | type
    reason: str

    def covers(self, role: str, side: str, on: str, attr: str) -> bool:
        # a combined node is both: what is accepted on either role is accepted on it
        return (self.role in ("*", role, *parts(role)) and self.side == side and fnmatch.fnmatchcase(on, self.mbean)
                and fnmatch.fnmatchcase(attr, self.attribute))


def load_accepted(text: str | None = None) -> list[Accepted]:
    if text is None:
        text = importlib.resources.files("realkafka").joinpath("conformance-accepted.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or []
    out = []
    for i, entry in enumerate(data):
        missing = {"role", "mbean", "attribute", "side", "reason"} - set(entry)
        if missing or entry["side"] not in ("invented", "missing", "type") or not str(entry["reason"]).strip():
            raise ValueError(f"conformance-accepted.yaml entry {i}: needs role, mbean, attribute, side "
                             f"(invented|missing|type) and a reason")
        out.append(Accepted(str(entry["role"]), str(entry["mbean"]), str(entry["attribute"]), entry["side"],
                            str(entry["reason"])))
    return out


@dataclass
class RoleDiff:
    role: str
    real: int                                  # real Kafka's (ObjectName, attribute) pairs
    covered: int
    invented: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    types: list[tuple[str, str, str, str]] = field(default_factory=list)      # on, attr, real, embedded
    accepted: list[tuple[str, str, str, str]] = field(default_factory=list)   # side, on, attr, reason
    signals: list[tuple[str, str, Any, Any]] = field(default_factory=list)    # point, signal, real, embedded
    # what a real node dropped at a timeline fault and the same embedded node kept: point, on, attr
    invented_after: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.covered / self.real if self.real else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "real": self.real, "covered": self.covered, "coverage": round(self.coverage, 4),
                "invented": self.invented, "missing": self.missing, "types": self.types,
                "signals": self.signals, "invented_after": self.invented_after, "accepted": len(self.accepted)}


def diff(real: dict[str, set[Triple]], embedded: dict[str, set[Triple]], accepted: list[Accepted]) -> list[RoleDiff]:
    out = []
    for role in sorted(set(real) | set(embedded)):
        r = {(on, a): t for on, a, t in real.get(role, set())}
        e = {(on, a): t for on, a, t in embedded.get(role, set())}
        d = RoleDiff(role, len(r), len(set(r) & set(e)))
        for side, keys in (("invented", sorted(set(e) - set(r))), ("missing", sorted(set(r) - set(e)))):
            for on, attr in keys:
                rule = next((a for a in accepted if a.covers(role, side, on, attr)), None)
                if rule is not None:
                    d.accepted.append((side, on, attr, rule.reason))
                else:
                    getattr(d, side).append((on, attr))
        for key in sorted(set(r) & set(e)):
            if r[key] != e[key]:
                rule = next((a for a in accepted if a.covers(role, "type", *key)), None)
                if rule is not None:
                    d.accepted.append(("type", key[0], key[1], rule.reason))
                else:
                    d.types.append((key[0], key[1], r[key], e[key]))
        out.append(d)
    return out


def describe_all(urls: dict[str, str], timeout_ms: float = 60_000.0,
                 live_only: bool = False) -> dict[str, list[tuple[str, str, str]]]:
    """Every node's MBeanInfo; live_only: the nodes that answer (after a fault killed some)."""
    from exporter.sample import SourceError
    from exporter.sources.jmx import JmxSource
    out = {}
    for name, url in urls.items():
        source = JmxSource(name, url, includes=["kafka.*:*"], timeout_ms=timeout_ms)
        try:
            out[name] = source.describe()
        except SourceError:
            if not live_only:
                raise
        finally:
            source.close()
    return out


KC = "kafka.controller:type=KafkaController,name="
RM = "kafka.server:type=ReplicaManager,name="
RAFT = "kafka.server:type=raft-metrics"


def signals(urls: dict[str, str], roles: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The cluster signals our alerts stand on, per role, as a cluster-wide reading of every live node:
    controller counts summed over the controllers (ActiveBrokerCount and the like from the active one),
    broker counts summed, raft states counted, NaN-ness of the raft latencies."""
    from exporter.sample import SourceError
    from exporter.sources.jmx import JmxSource
    out: dict[str, dict[str, Any]] = {CONTROLLER: {}, BROKER: {}}
    for name, url in urls.items():
        source = JmxSource(name, url, includes=[KC + "*", RM + "*", RAFT, "kafka.server:type=KafkaServer,*"],
                           timeout_ms=10_000)
        try:
            got = {(s.object_name, s.attr): s.value for s in source.read().samples}
        except SourceError:
            continue                # a node the timeline killed
        finally:
            source.close()
        # a combined node counts among the controllers and among the brokers; its one raft client
        # (a voter's) among the controllers'
        for role in parts(roles[name]):
            _signals_of(out[role], role, got, shares_raft=len(parts(roles[name])) > 1)
    controllers = out[CONTROLLER]
    if controllers.get("nodes reporting") and not controllers.get("ActiveControllerCount sum"):
        # without a quorum a voter cycles: follower of the leader it knew, fetch timeout, prospective,
        # lost pre-vote, follower again. Which phase a reading catches is timing: count them together
        cycling = [k for k in controllers if k.startswith("raft ") and k != "raft leader known"]
        controllers["raft voters without a quorum"] = sum(controllers.pop(k) for k in cycling)
    return out


def _signals_of(view: dict[str, Any], role: str, got: dict[tuple[str, str], Any], shares_raft: bool) -> None:
    view["nodes reporting"] = view.get("nodes reporting", 0) + 1
    nan = {latency: int(isinstance(got.get((RAFT, latency)), float) and got[(RAFT, latency)] != got[(RAFT, latency)])
           for latency in ("election-latency-max", "commit-latency-max")}
    if not (shares_raft and role == BROKER):
        state = got.get((RAFT, "current-state"))
        view[f"raft {state}"] = view.get(f"raft {state}", 0) + 1
        view["raft leader known"] = view.get("raft leader known", 0) + int(got.get((RAFT, "current-leader"), -1) != -1)
    if role == BROKER:
        if not shares_raft:
            # observers never campaign: no election latency
            view["raft election-latency-max NaN"] = view.get("raft election-latency-max NaN", 0) + nan["election-latency-max"]
        for metric in ("UnderReplicatedPartitions", "UnderMinIsrPartitionCount", "OfflineReplicaCount"):
            view[f"{metric} sum"] = view.get(f"{metric} sum", 0) + got.get((RM + metric, "Value"), 0)
        states = view.setdefault("BrokerState", {})
        bs = got.get(("kafka.server:type=KafkaServer,name=BrokerState", "Value"))
        states[bs] = states.get(bs, 0) + 1
        return
    active = got.get((KC + "ActiveControllerCount", "Value"), 0)
    if active == 1:
        # the leader commits all the time: its commit latency is a number on both. Its election
        # latency is not compared: a kafka-metrics Max forgets after two 30 s windows, so it
        # depends on how long ago each cluster elected (NaN on a real 4.1 leader in one CI run)
        view["raft commit-latency-max NaN (active)"] = nan["commit-latency-max"]
        for metric in ("ActiveBrokerCount", "FencedBrokerCount", "OfflinePartitionsCount", "GlobalTopicCount"):
            view[f"{metric} (active)"] = got.get((KC + metric, "Value"))
    view["ActiveControllerCount sum"] = view.get("ActiveControllerCount sum", 0) + active


def signal_diffs(point: str, real: dict[str, dict[str, Any]], embedded: dict[str, dict[str, Any]],
                 diffs: list[RoleDiff]) -> None:
    """Signals are per single role; in a cluster of combined nodes only, the combined diff carries both
    roles' (named 'broker: ...', 'controller: ...')."""
    for role in (CONTROLLER, BROKER):
        d = next((d for d in diffs if d.role == role), None) or next((d for d in diffs if role in parts(d.role)), None)
        if d is None:
            continue
        prefix = "" if d.role == role else f"{role}: "
        r, e = real.get(role, {}), embedded.get(role, {})
        for key in sorted(set(r) | set(e), key=str):
            if r.get(key, 0) != e.get(key, 0):
                d.signals.append((point, prefix + str(key), r.get(key, 0), e.get(key, 0)))


def run(scenario_path: str, version: str, warmup_s: float = 40.0, base_port: int = 19990,
        settle_s: float = 20.0) -> list[RoleDiff]:
    """Both engines on the scenario's cluster, topics and workload, described after warmup_s (the names
    are compared on a healthy cluster); the cluster signals compared then, and after each timeline fault
    (played on both, settle_s apart), with what a real node dropped at the fault and the same embedded
    node kept (a dead leader's fetcher metrics, ...): where the roles' jobs land differs between the
    engines (which broker coordinates a group, leads a partition), so this is asked node by node."""
    from broker.clock import WallClock
    from broker.jmx.publisher import JmxPublisher
    from broker.scenario import load_scenario_file
    from broker.simulation import Simulation
    from realkafka.cluster import RealCluster
    from realkafka.engine import Engine
    from realkafka.install import line_of

    # the embedded cluster is the same Kafka line as the real one it is compared with
    scenario = dataclasses.replace(load_scenario_file(scenario_path), kafka_version=line_of(version))
    n = len(scenario.node_names())
    sim = Simulation(scenario, WallClock())
    publisher = JmxPublisher(sim.cluster, base_port=base_port)
    cluster = RealCluster(version, scenario.brokers, scenario.controllers, jmx_base_port=base_port + n,
                          kafka_base_port=base_port + 2 * n, config=scenario.config, combined=scenario.combined)
    import threading
    stop = threading.Event()
    runner = threading.Thread(target=lambda: sim.run(until_ms=10 ** 12, stop=stop), daemon=True)
    try:
        # the embedded cluster starts once real Kafka is up: both are the same age when read (a
        # kafka-metrics Max forgets its samples after two 30 s windows)
        cluster.start()
        sim.start(apply_timeline=False)
        publisher.start(background=True)
        runner.start()
        engine = Engine(scenario, cluster)
        engine.create_topics()
        engine.start_workload()
        time.sleep(warmup_s)
        roles = {name: node.role for name, node in cluster.nodes.items()}
        real_described = describe_all(cluster.urls())
        real = role_view(real_described, roles)
        embedded = role_view(describe_all(publisher.urls()), roles)
        before = node_view(real_described)
        diffs = diff(real, embedded, load_accepted())
        signal_diffs("healthy", signals(cluster.urls(), roles), signals(publisher.urls(), roles), diffs)
        for n, fault in enumerate(scenario.timeline, 1):
            engine.apply(fault)
            with sim.cluster.sched.lock:
                sim.apply(fault)
            time.sleep(settle_s)
            point = f"{n}. {fault.action} {fault.node or 'all'}"
            signal_diffs(point, signals(cluster.urls(), roles), signals(publisher.urls(), roles), diffs)
            now = node_view(describe_all(cluster.urls(), live_only=True))
            kept = node_view(describe_all(publisher.urls(), live_only=True))
            for node in sorted(now.keys() & kept.keys()):
                d = next(d for d in diffs if d.role == roles[node])
                d.invented_after.extend((point, on, attr) for on, attr in sorted((before.get(node, set()) - now[node])
                                                                                 & kept[node]))
            before = now
        engine.close()
        return diffs
    finally:
        stop.set()
        cluster.stop()
        publisher.stop()
