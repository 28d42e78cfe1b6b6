"""kafka-jmx rules test|explain: what jmx_exporter rules make of MBeans (a `simulate --dump` file), offline,
and which rule made a series."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.rules import RuleSet


def add(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="check jmx_exporter rules offline")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rtest = rsub.add_parser("test", help="print the exposition RULES make from a `simulate --dump` file")
    rtest.add_argument("rules", help="a jmx_exporter rules file, or 'builtin'")
    rtest.add_argument("--mbeans", required=True, metavar="DUMP.json", help="output of kafka-jmx simulate --dump")
    rtest.add_argument("--node", action="append", default=[], help="only these nodes (repeatable)")
    rtest.add_argument("--target-labels", action="store_true",
                       help="add the labels `serve` gives every series (cluster, node, node_id, role); without it the "
                            "output is what jmx_exporter prints for these rules and MBeans")
    explain = rsub.add_parser("explain", help="which rule makes a series, or what the rules make of an MBean",
                              description="Print the rule (file and line) that makes the Prometheus series NAME, or "
                                          "what the rules make of each attribute of OBJECTNAME (a pattern may end in "
                                          ",*), and why each earlier rule did not decide. The MBeans come from "
                                          "--mbeans, or from 20 s of the bundled demo cluster (the lab extra).")
    explain.add_argument("what", metavar="NAME|OBJECTNAME")
    explain.add_argument("--rules", default="builtin", help="a jmx_exporter rules file, or 'builtin' (default)")
    explain.add_argument("--mbeans", metavar="DUMP.json", help="output of kafka-jmx simulate --dump")
    explain.add_argument("--node", action="append", default=[], help="only these nodes (repeatable)")
    explain.set_defaults(run=run_explain)
    rules.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from prometheus_client.registry import CollectorRegistry

    from exporter.collector import HealthView, Target, TargetWorker, exposition
    from exporter.sources.dump import DumpSource
    rules = _load_rules(args.rules)
    for warning in rules.warnings:
        print(f"kafka-jmx: warning: {warning}", file=sys.stderr)
    for line in rules.describe():
        print(f"kafka-jmx: {line}", file=sys.stderr)
    dump = _read_dump(args.mbeans)
    if dump is None:
        return 2
    workers = []
    cluster = dump.get("cluster", "kafka")
    for name, node in dump["nodes"].items():
        if args.node and name not in args.node:
            continue
        target = Target(name, node["role"], DumpSource(name, node), str(node["node_id"]))
        worker = TargetWorker(target, rules, lambda w: None, cluster=cluster, target_labels=args.target_labels)
        worker.collect_once()
        workers.append(worker)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthView(workers, cluster))
    sys.stdout.write(b"".join(exposition(workers, registry)).decode())
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from exporter.rules.explain import explain
    from exporter.sources.dump import DumpSource
    rules = _load_rules(args.rules)
    dump = _read_dump(args.mbeans) if args.mbeans else _demo_dump()
    if dump is None:
        return 2
    nodes = {name: DumpSource(name, node).read().samples for name, node in dump["nodes"].items()
             if (not args.node or name in args.node) and node.get("alive", True)}
    try:
        found, lines = explain(rules, args.what, nodes)
    except ValueError as e:         # not an ObjectName pattern
        print(f"kafka-jmx: {args.what}: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if found else 1


def _load_rules(spec: str) -> RuleSet:
    """'builtin' or a jmx_exporter rules file."""
    from exporter.rules import RuleSet
    from exporter.rulesets import builtin_rules
    from kafka_common.yamlconf import read_text
    return builtin_rules() if spec == "builtin" else RuleSet.from_yaml(read_text(spec), spec)


def _read_dump(path: str) -> dict | None:
    """A `simulate --dump` file; None, after saying why, when it cannot be read as one."""
    try:
        with open(path, encoding="utf-8") as fh:
            return _last_dump(fh.read())
    except (OSError, ValueError) as e:
        print(f"kafka-jmx: cannot read {path} as a `kafka-jmx simulate --dump` file: {e}", file=sys.stderr)
        return None


def _demo_dump() -> dict:
    """The bundled demo cluster after 20 s of virtual time (before its first fault), as a dump."""
    from broker.scenario import bundled_scenario, load_scenario
    from broker.simulation import Simulation
    sim = Simulation(load_scenario(bundled_scenario("demo.yaml"), "demo.yaml"))
    sim.start()
    sim.cluster.run_for(20_000)
    return sim.cluster.snapshot()


def _last_dump(text: str) -> dict:
    """The dump as `simulate --dump` writes it: one object (on one line or indented), or with
    --every one object per line, of which the last is used."""
    import json
    try:
        dump = json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError("the file is empty") from None
        dump = json.loads(lines[-1])
    if not isinstance(dump, dict) or not isinstance(dump.get("nodes"), dict):
        raise ValueError("expected an object with 'nodes'")
    return dump
