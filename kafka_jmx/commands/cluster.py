"""kafka-jmx cluster run: a scenario on the wall clock, on the embedded cluster or on real Kafka."""
from __future__ import annotations

import argparse
import sys
import threading
from typing import TYPE_CHECKING

from kafka_jmx.commands.options import duration, jmx_options, jmx_settings

if TYPE_CHECKING:
    from broker.scenario import Scenario


def add(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser("cluster", help="a cluster on the wall clock: the embedded one or real Kafka")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    play = csub.add_parser("run", help="run a scenario on the wall clock, printing its events")
    play.add_argument("scenario", help="scenario YAML file")
    play.add_argument("--duration", type=duration, default=None, metavar="DURATION")
    play.add_argument("--engine", default="embedded", metavar="embedded|kafka[:VERSION]",
                     help="the embedded cluster (default), or real Apache Kafka from the Maven jars "
                          "(scripts/install-realkafka; VERSION 4.1 or 4.4, default 4.1)")
    play.add_argument("--kafka-base-port", type=int, default=None, metavar="PORT",
                     help="the brokers' Kafka protocol listeners on 127.0.0.1:PORT, PORT+1, ... (kafka engine: "
                          "default 9092, the controllers' quorum listeners follow them; embedded engine: only "
                          "when given)")
    jmx_options(play, default_port=None)
    cluster.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from broker.clock import WallClock
    from broker.scenario import load_scenario_file
    from broker.simulation import Simulation
    from kafka_jmx.endpoints import start_publisher
    scenario = load_scenario_file(args.scenario)
    if args.engine != "embedded":
        return _run_real_kafka(args, scenario)
    sim = Simulation(scenario, WallClock())
    stop = threading.Event()
    sim.start()
    publisher = start_publisher(sim, jmx_settings(args))
    listeners = []
    if args.kafka_base_port is not None:
        from broker.wire.listener import bootstrap_servers, start_listeners
        listeners = start_listeners(sim.cluster, args.kafka_base_port)
        print(f"bootstrap.servers={bootstrap_servers(listeners)}", flush=True)
    seen = 0
    try:
        def report() -> None:
            nonlocal seen
            for t, event in sim.events[seen:]:
                print(f"{t / 1000:8.1f}s  {event}", flush=True)
            seen = len(sim.events)
        # the duration counts from when the endpoints are up, not from the process start
        until_ms = None if args.duration is None else sim.cluster.now_ms() + args.duration
        sim.run(until_ms=until_ms, every_ms=1000.0, on_sample=report, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        for listener in listeners:
            listener.stop()
        if publisher is not None:
            publisher.stop()
    return 0


def _run_real_kafka(args: argparse.Namespace, scenario: Scenario) -> int:
    from realkafka.cluster import RealCluster, RealKafkaError
    from realkafka.engine import Engine, EngineError, check
    from realkafka.install import NotInstalled
    engine, _, version = args.engine.partition(":")
    if engine != "kafka":
        print(f"kafka-jmx: unknown engine {args.engine!r} (embedded, or kafka[:VERSION])", file=sys.stderr)
        return 2
    try:
        check(scenario)
        cluster = RealCluster(version or scenario.kafka_version, scenario.brokers, scenario.controllers,
                              args.jmx_base_port or 9990, args.kafka_base_port or 9092, args.jolokia_base_port,
                              scenario.config, combined=scenario.combined)
    except (EngineError, ValueError, NotInstalled, RealKafkaError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    try:
        cluster.start()
        jolokia = cluster.jolokia_urls()
        for name, url in cluster.urls().items():
            print(f"{name:16} {url}" + (f"  {jolokia[name]}" if name in jolokia else ""), flush=True)
        print(f"bootstrap.servers={cluster.bootstrap_servers()}", flush=True)
        run = Engine(scenario, cluster)
        run.create_topics()
        run.start_workload()
        try:
            run.run(args.duration, lambda t, event: print(f"{t:8.1f}s  {event}", flush=True))
        except KeyboardInterrupt:
            run.stop.set()
        print(f"records acknowledged {run.acked}, consumed {run.consumed}", flush=True)
    except (RealKafkaError, RuntimeError) as e:
        print(f"kafka-jmx: real Kafka {cluster.version}: {e}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    return 0
