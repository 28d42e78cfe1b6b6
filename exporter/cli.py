"""kafka-jmx: the command line of the toolkit."""
from __future__ import annotations

import argparse
import sys
import threading
from typing import Sequence

from broker.clock import WallClock
from broker.config import ConfigError
from broker.mbeans.names import ObjectNamePattern
from broker.scenario import ScenarioError, load_scenario_file, parse_duration_ms
from broker.simulation import Simulation
from exporter.endpoints import start_publisher


def _duration(text: str) -> float:
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _pattern(text: str) -> str:
    try:
        ObjectNamePattern(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-jmx",
        description="Monitor Apache Kafka 4.x (KRaft) correctly: an embedded cluster with Kafka's MBeans, "
                    "and the tools to prove templates and alerts against it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="run a scenario on the virtual clock and dump every node's MBeans",
                         description="Run SCENARIO on the virtual clock (minutes of cluster time in seconds) and "
                                     "write the MBeans of every node as JSON.")
    sim.add_argument("scenario", help="scenario YAML file")
    sim.add_argument("--dump", required=True, metavar="FILE", help="where to write the JSON ('-' for stdout)")
    sim.add_argument("--every", type=_duration, metavar="DURATION",
                     help="write one JSON line per sample time (e.g. 1s) instead of one object at the end")
    sim.add_argument("--mbean", type=_pattern, action="append", default=[], metavar="PATTERN",
                     help="only MBeans matching this JMX ObjectName pattern (repeatable), "
                          "e.g. 'kafka.controller:*'")

    demo = sub.add_parser("demo", help="run the demo cluster on the wall clock with a live view",
                          description="Start the embedded cluster with a workload and a fault timeline on the "
                                      "wall clock and show it live. Ctrl-C stops.")
    demo.add_argument("--scenario", default=None, help="scenario YAML (default: the bundled demo)")
    demo.add_argument("--duration", type=_duration, default=None, metavar="DURATION",
                      help="stop after this long (default: the scenario's run_for)")
    _jmx_options(demo, default_port=9990)

    cluster = sub.add_parser("cluster", help="the embedded cluster on the wall clock")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    run = csub.add_parser("run", help="run a scenario on the wall clock, printing its events")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--duration", type=_duration, default=None, metavar="DURATION")
    _jmx_options(run, default_port=None)
    return parser


def _jmx_options(parser: argparse.ArgumentParser, default_port: int | None) -> None:
    parser.add_argument("--jmx-base-port", type=int, default=default_port, metavar="PORT",
                        help="publish every node over JMX/RMI on PORT, PORT+1, ... (controllers first)"
                             + (f"; default {default_port}" if default_port else ""))
    parser.add_argument("--no-jmx", action="store_true", help="do not publish over JMX")
    parser.add_argument("--jolokia-base-port", type=int, default=None, metavar="PORT",
                        help="also serve Jolokia for every node on PORT, PORT+1, ...")
    parser.add_argument("--jmx-host", default="127.0.0.1", help="address the endpoints bind to (default 127.0.0.1)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "demo":
            from exporter.demo import run_demo
            return run_demo(args.scenario, args.duration, _jmx_settings(args))
        if args.command == "cluster":
            return cmd_cluster_run(args)
    except (ScenarioError, ConfigError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.scenario)
    sim = Simulation(scenario)
    sim.start()
    out = sys.stdout if args.dump == "-" else open(args.dump, "w", encoding="utf-8")
    try:
        sim.run(every_ms=args.every, on_sample=lambda: sim.dump(out, args.mbean))
    finally:
        if out is not sys.stdout:
            out.close()
    for t, event in sim.events:
        print(f"{t / 1000:8.1f}s  {event}", file=sys.stderr)
    return 0


def _jmx_settings(args: argparse.Namespace) -> dict | None:
    if args.no_jmx or args.jmx_base_port is None:
        return None
    return {"base_port": args.jmx_base_port, "host": args.jmx_host, "jolokia_base_port": args.jolokia_base_port}


def cmd_cluster_run(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.scenario)
    sim = Simulation(scenario, WallClock())
    stop = threading.Event()
    sim.start()
    publisher = start_publisher(sim, _jmx_settings(args))
    seen = 0
    try:
        def report() -> None:
            nonlocal seen
            for t, event in sim.events[seen:]:
                print(f"{t / 1000:8.1f}s  {event}", flush=True)
            seen = len(sim.events)
        sim.run(until_ms=args.duration, every_ms=1000.0, on_sample=report, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if publisher is not None:
            publisher.stop()
    return 0
