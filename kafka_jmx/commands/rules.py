"""kafka-jmx rules test: what jmx_exporter rules make of a `simulate --dump` file, offline."""
from __future__ import annotations

import argparse
import sys


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
    rules.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    from prometheus_client.registry import CollectorRegistry

    from exporter.collector import HealthView, Target, TargetWorker, exposition
    from exporter.rules import RuleSet
    from exporter.rulesets import builtin_rules
    from exporter.sources.dump import DumpSource
    from kafka_common.yamlconf import read_text
    rules = builtin_rules() if args.rules == "builtin" else RuleSet.from_yaml(read_text(args.rules), args.rules)
    for warning in rules.warnings:
        print(f"kafka-jmx: warning: {warning}", file=sys.stderr)
    for line in rules.describe():
        print(f"kafka-jmx: {line}", file=sys.stderr)
    try:
        with open(args.mbeans, encoding="utf-8") as fh:
            text = fh.read()
        dump = _last_dump(text)
    except (OSError, ValueError) as e:
        print(f"kafka-jmx: cannot read {args.mbeans} as a `kafka-jmx simulate --dump` file: {e}", file=sys.stderr)
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
