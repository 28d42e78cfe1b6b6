"""Alert rehearsal: run a scenario on the embedded cluster wired to a Zabbix and/or a Prometheus,
and report for every expected trigger and alert whether it fired, how fast, and when it resolved.

A timeline entry lists what it should fire: `{at: 30s, kill: broker-3, expect: [brokers_below_min]}`
(ids of exporter/catalog/kafka-4x.yaml's triggers). Zabbix gets a host group and hosts of its own for the
run (JMX interfaces polled by the Java gateway, or trapper items the exporter pushes); Prometheus
must scrape the exporter this command serves (it prints the target) and load
templates/prometheus/kafka-4x-alerts.yml. With an Alertmanager that Prometheus notifies, whose receivers post
to the rehearsal's webhook inbox, what reaches a person is judged too (the third system, `alertmanager`).

Before the first fault the cluster is in steady state: nothing may fire then. Afterwards a problem or
alert may fire only if a fault so far expects it or allows it (`allow: [...]`: side effects it may
have, not required). Anything else is unexpected and fails the rehearsal: precision (expected that
fired, over those plus the unexpected) and recall (expected that fired, over expected) are reported
per system. A scenario without a timeline is a steady-state run for its whole run_for.

FAST_MACROS shorten the templates' waiting periods on the rehearsal's own hosts (the faults stay
real, the waits do not take production's minutes); the Prometheus rules' equivalent is
`kafka-jmx generate --alerts-out FILE --hold-max 10s --scrape-interval 5s` (scraped every 5 s at most).
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import requests

from broker.clock import WallClock

if TYPE_CHECKING:
    from realkafka.engine import Engine
from broker.jmx.publisher import JmxPublisher
from broker.scenario import Fault, Scenario
from broker.simulation import Simulation
from exporter.catalog.groups import GroupTrigger
from exporter.catalog.model import Trigger, load_catalog
from exporter.collector import Target
from exporter.config import KafkaSpec, PrometheusSpec
from exporter.daemon import Daemon
from exporter.lag.model import Snapshot
from exporter.provision import NodeSpec, Provisioner
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_jmx.embedded import ClusterThread, embedded_targets
from kafka_jmx.notifications import AlertmanagerWatch, Inbox

BOUNCE_SETTLE_S = 10.0
Rehearsable = Trigger | GroupTrigger      # the node and cluster triggers, and the consumer groups'
LAG_SECONDS_MAX = 10.0
# a rehearsal topic keeps seconds of records: a group may lose them within seconds (generate --retention-margin-min)
RETENTION_MARGIN_MIN = 25.0
LAG_INTERVAL_S, LAG_STATUS_WINDOW_S = 2.0, 20.0
# the rates' window: three collections, shorter than the falling-behind alert's 10 s, so a burst the group
# absorbs leaves it before the alert's wait is over (its groups must commit often: a rate over 6 s of a
# group committing every 5 s is off by half)
LAG_RATE_WINDOW_S = 6.0
# what undoes a fault: the time to resolve runs from it
UNDO = {"kill": "restart", "isolate": "heal", "slow": "heal", "flood": "heal", "fail_log_dir": "restart",
        "stop_consumer": "resume_consumer", "slow_consumer": "resume_consumer"}
FAST_MACROS = {"{$KAFKA.NODATA.TIMEOUT}": "20s", "{$KAFKA.AGGREGATE.PERIOD}": "10s", "{$KAFKA.CONTROLLER.GAP}": "20s",
               "{$KAFKA.URP.PERIOD}": "10s", "{$KAFKA.ISR.SHRINK.PERIOD}": "10s", "{$KAFKA.RAFT.NO_LEADER.PERIOD}": "10s", "{$KAFKA.IDLE.PERIOD}": "10s",
               "{$KAFKA.BROKER.STATE.PERIOD}": "10s", "{$KAFKA.LAG.SECONDS.MAX}": str(int(LAG_SECONDS_MAX)),
               "{$KAFKA.LAG.SECONDS.PERIOD}": "10s", "{$KAFKA.LAG.GROWING.PERIOD}": "10s",
               "{$KAFKA.GROUP.STOPPED.PERIOD}": "10s", "{$KAFKA.LAG.TREND.PERIOD}": "10s",
               "{$KAFKA.RETENTION.MARGIN.PERIOD}": "10s", "{$KAFKA.RETENTION.LOST.PERIOD}": "10s",
               "{$KAFKA.RETENTION.MARGIN.MIN}": str(int(RETENTION_MARGIN_MIN))}
# the consumer groups' collection in a rehearsal: often, and a short status window, so a stalled or
# lagging group shows within seconds (Prometheus rules for it: generate --lag-seconds-max 10)


@dataclass
class Check:
    at_s: float
    fault: str
    trigger: str
    system: str                   # zabbix | prometheus | alertmanager (the notifications)
    expected: str                 # the trigger's or alert's name
    fired: bool = False
    fire_s: float | None = None
    resolve_s: float | None = None
    active_before: bool = False   # already raised before the fault: firing then proves nothing
    how: str = ""                 # alertmanager: "inhibited by X" when its cause paged for it


@dataclass
class Unexpected:
    """A problem or alert that nothing so far expected or allowed (reported once per trigger)."""

    system: str
    name: str
    at_s: float
    after: str = ""               # the last fault applied before it ("" in steady state)


@dataclass
class Rehearsal:
    cluster: str
    checks: list[Check] = field(default_factory=list)
    steady_s: float | None = None                           # a steady-state run of this long
    unexpected: list[Unexpected] = field(default_factory=list)
    # with an Alertmanager: every alert its notifications carried, as {at_s, status, alert, node}
    notifications: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.fired and not c.active_before for c in self.checks) and not self.unexpected

    def scores(self) -> dict[str, dict[str, float]]:
        """Per system: precision = fired expected / (fired expected + unexpected), recall = fired
        expected / expected (a check already raised before its fault proves nothing: not fired)."""
        out = {}
        systems = {c.system for c in self.checks} | {u.system for u in self.unexpected}
        for system in sorted(systems):
            checks = [c for c in self.checks if c.system == system]
            hits = sum(1 for c in checks if c.fired and not c.active_before)
            false = sum(1 for u in self.unexpected if u.system == system)
            out[system] = {"precision": round(hits / (hits + false), 3) if hits + false else 1.0,
                           "recall": round(hits / len(checks), 3) if checks else 1.0,
                           "expected": len(checks), "fired": hits, "unexpected": false}
        return out

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "ok": self.ok, "checks": [asdict(c) for c in self.checks],
                "steady_s": self.steady_s, "unexpected": [asdict(u) for u in self.unexpected],
                "scores": self.scores(), "notifications": self.notifications}

    def table(self) -> str:
        lines = []
        steady = [u for u in self.unexpected if not u.after]
        later = [u for u in self.unexpected if u.after]
        if self.steady_s:
            lines.append(f"steady state for {self.steady_s:.0f}s: "
                         + ("nothing fired" if not steady else f"{len(steady)} unexpected"))
            lines += [f"  {u.at_s:6.1f}s  {u.system}: {u.name}" for u in steady]
        if later:
            lines.append("unexpected during the faults (nothing so far expects or allows them):")
            lines += [f"  {u.at_s:6.1f}s  {u.system}: {u.name} (after {u.after})" for u in later]
        if self.notifications:
            firing = sum(1 for n in self.notifications if n["status"] == "firing")
            lines.append(f"alertmanager: {len(self.notifications)} alerts notified ({firing} firing, "
                         f"{len(self.notifications) - firing} resolved)")
        lines += [f"{system}: precision {s['precision']:.2f}, recall {s['recall']:.2f} ({s['fired']} of "
                  f"{s['expected']} expected fired, {s['unexpected']} unexpected)" for system, s in self.scores().items()]
        if not self.checks:
            return "\n".join(lines)
        rows = [("time", "fault", "system", "expected", "fired", "to fire", "to resolve")]
        for c in self.checks:
            fired = "already before" if c.active_before else f"yes, {c.how}" if c.how else "yes" if c.fired else "NO"
            rows.append((f"{c.at_s:.0f}s", c.fault, c.system, c.expected[:70], fired,
                         f"{c.fire_s:.1f}s" if c.fire_s is not None else "-",
                         f"{c.resolve_s:.1f}s" if c.resolve_s is not None else "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows])


def _name_pattern(t: Rehearsable) -> re.Pattern[str]:
    """A problem name with its macros as wildcards, to recognise the problem Zabbix made of it."""
    parts = re.split(r"(\{[^}]+\})", t.problem)
    return re.compile("".join(".*" if p.startswith("{") else re.escape(p) for p in parts) + "$")


class ZabbixWatch:
    def __init__(self, prov: Provisioner, hostids: list[str]) -> None:
        self.api = prov.api
        self.hostids = hostids

    def firing(self, t: Rehearsable) -> bool:
        pattern = _name_pattern(t)
        return any(pattern.match(p) for p in self.everything())

    active = firing

    def fired_since(self, t: Rehearsable, since: float) -> bool:
        """Raised at or after `since` (epoch s), even if already resolved: a change() trigger's
        problem lasts one collection interval, shorter than this watch's polling."""
        pattern = _name_pattern(t)
        return any(pattern.match(p["name"]) for p in self.api.problem.get(
            hostids=self.hostids, recent=True, time_from=int(since), output=["name"]))

    def everything(self) -> list[str]:
        return [p["name"] for p in self.api.problem.get(hostids=self.hostids, output=["name"])]

    def how(self, t: Rehearsable) -> str:
        return ""


class PrometheusWatch:
    def __init__(self, url: str, cluster: str) -> None:
        self.url = url.rstrip("/")
        self.cluster = cluster

    def firing(self, t: Rehearsable, states: tuple[str, ...] = ("firing",)) -> bool:
        r = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        r.raise_for_status()
        return any(a["labels"].get("alertname") == t.alert.name and a["labels"].get("cluster") == self.cluster
                   and a["state"] in states for a in r.json()["data"]["alerts"])

    def active(self, t: Rehearsable) -> bool:
        return self.firing(t, ("pending", "firing"))

    def fired_since(self, t: Rehearsable, since: float) -> bool:
        return self.firing(t)      # an alert fires for at least its range window, longer than the polling

    def everything(self) -> list[str]:
        r = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        r.raise_for_status()
        return [f"{a['labels'].get('alertname')} {a['labels'].get('node', '')}".strip()
                for a in r.json()["data"]["alerts"] if a["labels"].get("cluster") == self.cluster and a["state"] == "firing"]

    def how(self, t: Rehearsable) -> str:
        return ""


class Referee:
    """Everything that fires, against what the faults applied so far expect or allow: the rest is
    unexpected (once per system and trigger)."""

    def __init__(self, watches: dict, triggers: list[Rehearsable], result: Rehearsal, started: float, log) -> None:
        self.watches, self.result, self.started, self.log = watches, result, started, log
        self.patterns = [(t.id, _name_pattern(t)) for t in triggers]
        self.alerts = {t.alert.name: t.id for t in triggers}
        self.explained: set[str] = set()
        self.after = ""
        self.seen: set[tuple[str, str]] = set()

    def applied(self, fault: Fault, label: str) -> None:
        self.explained |= set(fault.expect) | set(fault.allow)
        self.after = label

    def _ids(self, system: str, name: str) -> set[str]:
        if system != "zabbix":
            found = {self.alerts[name.split()[0]]} if name.split()[0] in self.alerts else set()
        else:
            found = {tid for tid, pattern in self.patterns if pattern.match(name)}
        return found or {name}

    def tick(self) -> None:
        elapsed = time.monotonic() - self.started
        for system, watch in self.watches.items():
            for name in watch.everything():
                ids = self._ids(system, name)
                if ids & self.explained:
                    continue
                key = (system, min(ids))
                if key not in self.seen:
                    self.seen.add(key)
                    self.result.unexpected.append(Unexpected(system, name, round(elapsed, 1), self.after))
                    self.log(f"{elapsed:6.1f}s  UNEXPECTED {system}: {name}" + (f" (after {self.after})" if self.after else ""))


class EmbeddedEngine:
    """The embedded cluster on the wall clock, published over JMX for the Java gateway."""

    def __init__(self, scenario: Scenario, jmx_base_port: int, publish: bool, kafka_base_port: int, log) -> None:
        self.sim = Simulation(scenario, WallClock())
        self.publisher = JmxPublisher(self.sim.cluster, base_port=jmx_base_port, refresh_ms=1000) if publish else None
        self.runner = ClusterThread(self.sim, threading.Event(), log)
        self.kafka_base_port = kafka_base_port
        self.listeners: list = []

    def bootstrap_servers(self) -> str:
        """The Kafka protocol listeners the consumer-group collection reads (opened on start)."""
        return ",".join(f"127.0.0.1:{self.kafka_base_port + i}" for i in range(len(self.sim.cluster.brokers)))

    def targets(self) -> list[Target]:
        return embedded_targets(self.sim.cluster, interval_s=2.0, timeout_s=5.0)

    def nodes(self) -> list[NodeSpec]:
        ports = self.publisher.ports() if self.publisher else {n: 0 for n in self.sim.cluster.node_names()}
        return [NodeSpec(n, self.sim.cluster.node(n).role, "127.0.0.1", p) for n, p in ports.items()]

    def start(self) -> None:
        from broker.wire.listener import start_listeners
        self.sim.start(apply_timeline=False)
        if self.sim.scenario.groups:
            self.listeners = start_listeners(self.sim.cluster, self.kafka_base_port)
        self.runner.start()
        if self.publisher is not None:
            self.publisher.start(background=True)

    def ready(self) -> bool:
        return self.sim.cluster.ready()

    def apply(self, fault: Fault) -> None:
        with self.sim.cluster.sched.lock:
            self.sim.apply(fault)

    def check(self) -> None:
        self.runner.check()

    def stop(self) -> None:
        self.runner.stopping.set()
        for listener in self.listeners:
            listener.stop()
        if self.publisher is not None:
            self.publisher.stop()


class KafkaEngine:
    """Real Apache Kafka from the Maven jars: the scenario's cluster, topics and client workload; the
    exporter and the Java gateway read its JMX endpoints."""

    def __init__(self, scenario: Scenario, version: str, jmx_base_port: int, kafka_base_port: int, log) -> None:
        from realkafka.cluster import RealCluster
        from realkafka.engine import check
        check(scenario)
        self.scenario, self.log = scenario, log
        self.cluster = RealCluster(version, scenario.brokers, scenario.controllers, jmx_base_port, kafka_base_port,
                                   None, scenario.config, combined=scenario.combined)
        self.engine: Engine | None = None

    def targets(self) -> list[Target]:
        """Every MBean of six JVMs read over RMI: every 5 s with 10 s to answer. Every 2 s with 5 s, the
        reads themselves starved two cores shared with the JVMs, Zabbix and Prometheus, and a broker's
        reads timed out for minutes (a KafkaTargetDown nobody caused) while the Java gateway read it."""
        from exporter.sources.jmx import JmxSource
        return [Target(n, node.role, JmxSource(n, node.jmx_url, timeout_ms=10_000), str(node.node_id), {}, 5.0, 10.0)
                for n, node in self.cluster.nodes.items()]

    def nodes(self) -> list[NodeSpec]:
        return [NodeSpec(n, node.role, "127.0.0.1", node.jmx_port) for n, node in self.cluster.nodes.items()]

    def start(self) -> None:
        from realkafka.engine import Engine
        self.cluster.start()
        self.log(f"real Kafka {self.cluster.version}: bootstrap.servers={self.cluster.bootstrap_servers()}")
        self.engine = Engine(self.scenario, self.cluster)
        self.engine.create_topics()
        self.engine.start_workload()

    def ready(self) -> bool:
        return self.engine is not None

    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers()

    def apply(self, fault: Fault) -> None:
        assert self.engine is not None
        seen = len(self.engine.events)
        self.engine.apply(fault)
        for _, event in self.engine.events[seen:]:
            if "skipped" in event:
                raise RuntimeError(f"real Kafka: {event}")

    def check(self) -> None:
        """Real processes report their own failures to the watches; nothing to raise here."""

    def stop(self) -> None:
        from exporter.sources.jmx import JmxReader
        if self.engine is not None:
            self.engine.close()
        self.cluster.stop()
        JmxReader.stop_all()


def rehearse(scenario: Scenario, *, zabbix_url: str | None = None, zabbix_user: str = "Admin",
             zabbix_password: str | None = None, prometheus_url: str | None = None, transport: str = "jmx",
             jmx_base_port: int = 9990, metrics_listen: tuple[str, int] = ("127.0.0.1", 9404),
             zabbix_server: tuple[str, int] | None = None, interval: str = "5s", fire_timeout_s: float = 180.0,
             settle_s: float = 20.0, macros: dict[str, str] | None = None, engine: str = "embedded",
             kafka_base_port: int = 9092, alertmanager_url: str | None = None,
             notifications_listen: tuple[str, int] | None = None, log=print) -> Rehearsal:
    """engine: 'embedded', or 'kafka[:VERSION]' for real Apache Kafka (kill, restart, pause, resume, heal).
    alertmanager_url: the Alertmanager Prometheus notifies, whose receivers post to notifications_listen: the
    notifications are judged as a third system, `alertmanager`."""
    catalog = load_catalog()
    by_id: dict[str, Rehearsable] = {t.id: t for t in catalog.triggers}
    by_id.update({t.id: t for t in catalog.groups.triggers})
    for fault in scenario.timeline:
        for key, ids in (("expect", fault.expect), ("allow", fault.allow)):
            for tid in ids:
                if tid not in by_id:
                    raise ValueError(f"{scenario.source}:{fault.line}: {key}: unknown trigger {tid!r} "
                                     f"(catalog ids: {', '.join(sorted(by_id))})")
    name = f"rehearsal-{time.strftime('%Y%m%d-%H%M%S')}"
    kind, _, version = engine.partition(":")
    if kind == "embedded" and not version:
        runner: EmbeddedEngine | KafkaEngine = EmbeddedEngine(scenario, jmx_base_port, transport == "jmx",
                                                              kafka_base_port, log)
    elif kind == "kafka":
        runner = KafkaEngine(scenario, version or scenario.kafka_version, jmx_base_port, kafka_base_port, log)
    else:
        raise ValueError(f"unknown engine {engine!r} (embedded, or kafka[:VERSION])")
    sink = None
    if zabbix_url and (transport == "trapper" or scenario.groups):
        if zabbix_server is None:
            raise ValueError("the trapper transport, and consumer groups (trapper values to the cluster's host), "
                             "need the Zabbix server's address (--zabbix-server)")
        sink = TrapperSink(zabbix_server[0], zabbix_server[1], catalog, name, lld_settle_s=10.0)
    daemon = None
    watches: list[tuple[str, object]] = []
    if bool(alertmanager_url) != bool(notifications_listen):
        raise ValueError("an Alertmanager is judged through its notifications: give alertmanager_url and "
                         "notifications_listen together")
    inbox = Inbox(*notifications_listen) if alertmanager_url and notifications_listen else None
    began = time.time()
    try:
        if inbox is not None:
            inbox.start()
        runner.start()
        kafka = KafkaSpec({"bootstrap.servers": runner.bootstrap_servers()}, LAG_INTERVAL_S, 5.0,
                          status_window_s=LAG_STATUS_WINDOW_S, rate_window_s=LAG_RATE_WINDOW_S) \
            if scenario.groups else None
        daemon = Daemon(name, runner.targets(), builtin_rules(), PrometheusSpec(*metrics_listen), zabbix=sink,
                        kafka=kafka, zabbix_targets=transport == "trapper")
        daemon.start()
        log(f"exporter: {daemon.url} (Prometheus must scrape it and load templates/prometheus/kafka-4x-alerts.yml)")
        if zabbix_url:
            prov = Provisioner(zabbix_url, zabbix_user, zabbix_password or "")
            hosts = prov.provision(name, runner.nodes(), transport, scenario.broker_count, interval, macros=macros)
            watches.append(("zabbix", ZabbixWatch(prov, list(hosts.values()))))
            log(f"zabbix: host group 'Kafka {name}', {len(hosts)} hosts")
        if prometheus_url:
            watches.append(("prometheus", PrometheusWatch(prometheus_url, name)))
        if alertmanager_url and inbox is not None:
            watches.append(("alertmanager", AlertmanagerWatch(alertmanager_url, inbox, name)))
            log(f"alertmanager: {alertmanager_url}, notifications to {inbox.url}")
        deadline = time.monotonic() + 120
        while not runner.ready() and time.monotonic() < deadline:
            time.sleep(0.5)
        if daemon.lag is not None:
            deadline = time.monotonic() + fire_timeout_s
            while not _groups_caught_up(daemon.lag.snapshot, scenario) and time.monotonic() < deadline:
                time.sleep(1.0)
            log("consumer groups: " + ("caught up" if _groups_caught_up(daemon.lag.snapshot, scenario)
                                       else f"still behind after {fire_timeout_s:.0f}s"))
        time.sleep(settle_s)            # the first values reach Zabbix and Prometheus before any fault
        if not scenario.timeline:
            result = _steady(dict(watches), scenario.run_for_ms / 1000.0, name, log, runner, list(by_id.values()))
        else:
            result = _run_timeline(runner, list(scenario.timeline), dict(watches), by_id, fire_timeout_s, name, log)
        if inbox is not None:
            if inbox.errors:
                raise RuntimeError("Alertmanager sent notifications the rehearsal cannot read: " + "; ".join(inbox.errors))
            result.notifications = [{"at_s": round(n.at - began, 1), "status": n.status, "alert": n.alertname,
                                     "node": n.labels.get("node", "")} for n in inbox.received
                                    if n.labels.get("cluster") == name]
        return result
    finally:
        if daemon is not None:
            daemon.stop()
        runner.stop()
        if inbox is not None:
            inbox.stop()


def _groups_caught_up(snap: Snapshot | None, scenario: Scenario) -> bool:
    """Every scenario group has committed on every partition of its topic and is under the lag-seconds
    limit. A new group starts at the earliest offset, and on real Kafka its first join (the offsets
    topic created, the initial rebalance delay, two cores shared by six JVMs) can leave it tens of
    seconds behind: a start, not the steady state the rehearsal judges."""
    if snap is None:
        return False
    for spec in scenario.groups:
        partitions = snap.partitions.get(spec.topic, 0)
        if spec.group not in snap.groups or not partitions:
            return False
        for p in range(partitions):
            tp = (spec.topic, p)
            if tp not in snap.groups[spec.group].committed:
                if snap.ends.get(tp, 1) > snap.starts.get(tp, 0):       # records never committed past
                    return False
                continue
            behind = snap.lag_seconds(spec.group, tp)
            if behind is None or behind >= LAG_SECONDS_MAX:
                return False
    return True


def _poll(until, timeout_s: float, runner: EmbeddedEngine | KafkaEngine, referee: Referee) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        referee.tick()
        runner.check()
        if until() or time.monotonic() >= deadline:
            return
        time.sleep(1.0)


def _steady(watches: dict, duration_s: float, name: str, log, runner: EmbeddedEngine | KafkaEngine,
            triggers: list[Rehearsable]) -> Rehearsal:
    """Watch for duration_s: anything that fires is unexpected."""
    result = Rehearsal(name, steady_s=duration_s)
    started = time.monotonic()
    _poll(lambda: time.monotonic() - started >= duration_s, duration_s + 1.0, runner,
          Referee(watches, triggers, result, started, log))
    return result


def _run_timeline(runner: EmbeddedEngine | KafkaEngine, timeline: list[Fault], watches: dict,
                  by_id: dict[str, Rehearsable], timeout_s: float, name: str, log) -> Rehearsal:
    """Faults in order, each at its time (and no sooner after the previous one than the timeline
    spaces them) or as soon as the previous checks are done and what it expects and allows is quiet:
    after a fault its expected triggers and alerts are awaited; after the fault's undo, their
    resolution."""
    started = time.monotonic()
    result = Rehearsal(name, steady_s=timeline[0].at_ms / 1000.0)
    referee = Referee(watches, list(by_id.values()), result, started, log)
    open_checks: dict[tuple[str, str | None], list[Check]] = {}
    last_at, last_applied = 0.0, 0.0
    for fault in timeline:
        # at its time, and at least as long after the previous fault as the timeline puts them apart
        # (a follower slowed 12 s before a kill has left the ISRs even when earlier waits ran late)
        at = fault.at_ms / 1000.0
        due = max(at, last_applied + at - last_at)
        _poll(lambda: time.monotonic() - started >= due, due + 1.0, runner, referee)
        # an expected trigger still raised by an earlier fault's side effects gets time to clear:
        # firing afterwards must be this fault's doing. What it allows clears too: a rolling restart
        # bounces the next broker once the last one is back in the ISRs
        before: dict[tuple[str, str], bool] = {}

        def quiet() -> bool:
            before.update({(tid, system): watches[system].active(by_id[tid])
                           for tid in fault.expect + fault.allow for system in watches})
            return not any(before.values())
        _poll(quiet, timeout_s, runner, referee)
        runner.apply(fault)
        applied, applied_epoch = time.monotonic(), time.time()
        last_at, last_applied = at, applied - started
        label = f"{fault.action} {fault.node or 'all'}"
        referee.applied(fault, label)
        log(f"{applied - started:6.1f}s  {label}")
        checks = [Check(round(applied - started, 1), label, tid, system,
                        by_id[tid].problem if system == "zabbix" else by_id[tid].alert.name,
                        active_before=before.get((tid, system), False))
                  for tid in fault.expect for system in watches]
        result.checks.extend(checks)

        def all_fired() -> bool:
            for c in checks:
                if not c.fired and watches[c.system].fired_since(by_id[c.trigger], applied_epoch):
                    c.fired, c.fire_s = True, time.monotonic() - applied
                    c.how = watches[c.system].how(by_id[c.trigger])
                    log(f"        {c.system}: {c.expected} after {c.fire_s:.1f}s" + (f" ({c.how})" if c.how else ""))
            return all(c.fired for c in checks)
        _poll(all_fired, timeout_s, runner, referee)
        open_checks[(fault.action, fault.node)] = [c for c in checks if c.fired]
        undone = [k for k in open_checks if UNDO.get(k[0]) == fault.action and fault.node in (k[1], None)]
        resolving = [c for k in undone for c in open_checks.pop(k)]

        def all_resolved() -> bool:
            for c in resolving:
                if c.resolve_s is None and not watches[c.system].firing(by_id[c.trigger]):
                    c.resolve_s = time.monotonic() - applied
            return all(c.resolve_s is not None for c in resolving)
        _poll(all_resolved, timeout_s, runner, referee)
        if fault.action == "bounce":
            # as an operator waits: the node back and the cluster whole before the next step, then long
            # enough for what the restart raised to show (the next step waits for it to clear)
            back = applied + fault.down_ms / 1000.0
            _poll(lambda: time.monotonic() >= back and runner.ready(), timeout_s, runner, referee)
            settled = time.monotonic() + BOUNCE_SETTLE_S
            _poll(lambda: time.monotonic() >= settled, BOUNCE_SETTLE_S + 1.0, runner, referee)
    return result
