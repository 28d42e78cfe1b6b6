"""kafka-jmx conformance: the embedded cluster's MBeans against real Kafka's, per role."""
from __future__ import annotations

import argparse
import sys

from kafka_jmx.commands.options import duration


def add(sub: argparse._SubParsersAction) -> None:
    conf = sub.add_parser("conformance", help="the embedded cluster's MBeans against real Kafka's, per role")
    conf.add_argument("scenario", help="scenario YAML file (cluster, topics, workload)")
    conf.add_argument("--kafka", default="4.1", metavar="VERSION", help="real Kafka line: 4.1 or 4.4 (default 4.1)")
    conf.add_argument("--warmup", type=duration, default=40_000.0, metavar="DURATION",
                      help="how long both clusters run before their MBeans are read (default 40s)")
    conf.add_argument("--base-port", type=int, default=19990, metavar="PORT",
                      help="JMX and Kafka ports from PORT on (3 blocks of one port per node)")
    conf.add_argument("--json", action="store_true", help="the whole diff as JSON")
    conf.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from realkafka import conformance
    from realkafka.install import NotInstalled
    try:
        diffs = conformance.run(args.scenario, args.kafka, args.warmup / 1000.0, args.base_port)
    except (NotInstalled, ValueError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([d.as_dict() for d in diffs], indent=1))
    else:
        for d in diffs:
            print(f"{d.role}: covers {d.covered} of real Kafka's {d.real} (MBean, attribute) pairs "
                  f"({d.coverage:.1%}); {len(d.invented)} invented, {len(d.missing)} missing, "
                  f"{len(d.types)} of another type, {len(d.accepted)} accepted differences")
            for label, rows in (("invented", d.invented), ("missing", d.missing), ("type", d.types)):
                for row in rows:
                    print(f"  {label:8} " + "  ".join(row))
    return 1 if any(d.invented or d.types for d in diffs) else 0
