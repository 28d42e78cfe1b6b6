"""`kafka-jmx demo`: the embedded cluster on the wall clock, shown live in the terminal."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from broker.clock import WallClock
from broker.scenario import bundled_scenario, describe_nodes, load_scenario, load_scenario_file
from broker.simulation import Simulation
from broker.wire.listener import bootstrap_servers, start_listeners
from exporter.catalog.model import load_catalog
from exporter.config import DEFAULT_HOST_NAME, PrometheusSpec
from exporter.daemon import Daemon
from exporter.provision import NodeSpec, Provisioner
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_common.roles import is_broker
from kafka_jmx.control import ControlServer
from kafka_jmx.embedded import ClusterThread, embedded_targets
from kafka_jmx.endpoints import start_publisher

KC = "kafka.controller:type=KafkaController,name="
RM = "kafka.server:type=ReplicaManager,name="


@dataclass
class DemoZabbix:
    """Where the demo pushes trapper values, and optionally the API that creates its hosts first."""

    server: str
    port: int = 10051
    url: str | None = None
    user: str = "Admin"
    password: str | None = None
    host_name: str = DEFAULT_HOST_NAME


def _read(node: Any, mbean: str, attr: str = "Value") -> Any:
    try:
        return node.mbeans.read(mbean)[attr]
    except KeyError:
        return "-"


def zabbix_status(sink: TrapperSink) -> str:
    text = (f"Zabbix {sink.server}:{sink.port}: sent {sink.sent}  waiting {sink.spooled}  "
            f"refused {sink.refused}  dropped {sink.dropped}")
    return text + (f"  [red]{sink.last_error}[/red]" if sink.last_error else "")


def render(sim: Simulation, sink: TrapperSink | None = None) -> Group:
    c = sim.cluster
    with c.sched.lock:
        active = c.active_controller()
        head = Table.grid(padding=(0, 2))
        head.add_row(f"[b]t={c.now_ms() / 1000:6.1f}s[/b]",
                     f"active controller: [b]{active.name if active else 'NONE'}[/b]",
                     *(f"{k}: [b]{_read(active, KC + k)}[/b]" for k in
                       ("ActiveBrokerCount", "FencedBrokerCount", "OfflinePartitionsCount", "GlobalPartitionCount"))
                     if active else ["[red]no active controller[/red]"])
        table = Table(title="nodes", expand=False)
        for col in ("node", "up", "raft state", "BrokerState", "leaders", "URP", "under min ISR",
                    "ISR shrinks", "msgs in/s (1m)"):
            table.add_column(col, justify="right" if col not in ("node", "raft state") else "left")
        for name, node in c.servers.items():
            if not node.alive:
                table.add_row(name, "[red]down[/red]", *["-"] * 7)
                continue
            raft = _read(node, "kafka.server:type=raft-metrics", "current-state")
            if is_broker(node.role):
                rate = _read(node, "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec", "OneMinuteRate")
                table.add_row(name, "up", raft, str(_read(node, "kafka.server:type=KafkaServer,name=BrokerState")),
                              str(_read(node, RM + "LeaderCount")), str(_read(node, RM + "UnderReplicatedPartitions")),
                              str(_read(node, RM + "UnderMinIsrPartitionCount")),
                              str(_read(node, RM + "IsrShrinksPerSec", "Count")), f"{rate:.0f}")
            else:
                table.add_row(name, "up", raft, "-", "-", "-", "-", "-", "-")
        stats = sim.workload.stats()
        events = Table.grid()
        for t, e in sim.events[-8:]:
            events.add_row(f"{t / 1000:7.1f}s  {e}")
        summary = (f"produced {stats['produced']}  acked {stats['acked']}  failed {stats['failed']}  "
                   f"consumed {stats['consumed']}")
    return Group(head, table, summary, *([zabbix_status(sink)] if sink is not None else []), events)


def run_demo(scenario_path: str | None, duration_ms: float | None, jmx: dict | None = None,
             metrics_listen: str | None = "127.0.0.1:9404", control_listen: str | None = "127.0.0.1:9399",
             cluster_name: str = "demo", zabbix: DemoZabbix | None = None, kafka_base_port: int | None = None) -> int:
    scenario = load_scenario_file(scenario_path) if scenario_path else load_scenario(bundled_scenario("demo.yaml"), "demo.yaml")
    sim = Simulation(scenario, WallClock())
    stop = threading.Event()
    sim.start()
    console = Console()
    console.print(f"[b]Kafka 4.x embedded cluster[/b]: {describe_nodes(scenario)}, cluster id "
                  f"{sim.cluster.cluster_id}. Ctrl-C stops.")
    sink = None
    if zabbix is not None:
        if zabbix.url:
            nodes = [NodeSpec(name, node.role, "127.0.0.1", 0) for name, node in sim.cluster.servers.items()]
            hosts = Provisioner(zabbix.url, zabbix.user, zabbix.password or "").provision(
                cluster_name, nodes, "trapper", scenario.broker_count, host_name=zabbix.host_name)
            console.print(f"Zabbix hosts (trapper templates, group 'Kafka {cluster_name}'): {', '.join(hosts)}. "
                          "Zabbix refuses their values until its configuration cache reloads (CacheUpdateFrequency, "
                          "60 s by default; zabbix_server -R config_cache_reload does it now)")
        else:
            console.print(f"Zabbix: the hosts must exist on the trapper templates; create them with kafka-jmx zabbix "
                          f"provision --transport trapper --cluster {cluster_name} ... (or pass --zabbix-url)")
        sink = TrapperSink(zabbix.server, zabbix.port, load_catalog(), cluster_name, zabbix.host_name)
    publisher = start_publisher(sim, jmx, console.file)
    listeners = []
    if kafka_base_port is not None:
        try:
            listeners = start_listeners(sim.cluster, kafka_base_port)
            console.print(f"Kafka protocol: bootstrap.servers={bootstrap_servers(listeners)}")
        except OSError as e:
            console.print(f"[yellow]Kafka protocol: cannot listen from 127.0.0.1:{kafka_base_port} ({e}); "
                          "choose other ports with --kafka-base-port[/yellow]")
    exporter = None
    if metrics_listen or sink is not None:
        host, _, port = (metrics_listen or "127.0.0.1:0").rpartition(":")
        exporter = Daemon(cluster_name, embedded_targets(sim.cluster, interval_s=5.0, timeout_s=5.0), builtin_rules(),
                          PrometheusSpec(host or "127.0.0.1", int(port)), zabbix=sink)
        exporter.start()
        if metrics_listen:
            console.print(f"Prometheus metrics: {exporter.url}")
    control = None
    if control_listen:
        host, _, port = control_listen.rpartition(":")
        control = ControlServer(sim, host or "127.0.0.1", int(port))
        control.start()
        console.print(f"Faults: kafka-jmx fault kill broker-3 --control {control_listen}")
    # the duration counts from here: a first JVM start (javac of the helper) may take a while
    until_ms = None if duration_ms is None else sim.cluster.now_ms() + duration_ms
    # the demo ends with the cluster's error, never hangs without it
    worker = ClusterThread(sim, stop, until_ms=until_ms)
    worker.start()
    try:
        with Live(render(sim, sink), console=console, refresh_per_second=2) as live:
            while not stop.wait(1.0):
                live.update(render(sim, sink))
            live.update(render(sim, sink))
    except KeyboardInterrupt:
        stop.set()
    finally:
        worker.join(timeout=5)
        if exporter is not None:
            exporter.stop()
        if control is not None:
            control.stop()
        if publisher is not None:
            publisher.stop()
        for listener in listeners:
            listener.stop()
    if worker.error is not None:
        console.print(f"[red]kafka-jmx demo: the cluster stopped: {type(worker.error).__name__}: {worker.error}[/red]")
        return 1
    return 0
