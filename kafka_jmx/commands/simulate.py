"""kafka-jmx simulate: a scenario on the virtual clock, every node's MBeans dumped as JSON."""
from __future__ import annotations

import argparse
import sys

from kafka_jmx.commands.options import duration, pattern


def add(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("simulate", help="run a scenario on the virtual clock and dump every node's MBeans",
                         description="Run SCENARIO on the virtual clock (minutes of cluster time in seconds) and "
                                     "write the MBeans of every node as JSON.")
    sim.add_argument("scenario", help="scenario YAML file")
    sim.add_argument("--dump", required=True, metavar="FILE", help="where to write the JSON ('-' for stdout)")
    sim.add_argument("--every", type=duration, metavar="DURATION",
                     help="write one JSON line per sample time (e.g. 1s) instead of one object at the end")
    sim.add_argument("--mbean", type=pattern, action="append", default=[], metavar="PATTERN",
                     help="only MBeans matching this JMX ObjectName pattern (repeatable), "
                          "e.g. 'kafka.controller:*'")
    sim.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from broker.scenario import load_scenario_file
    from broker.simulation import Simulation
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
