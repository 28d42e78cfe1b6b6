"""kafka-jmx durability: seeded random fault schedules under load, every acknowledged record audited."""
from __future__ import annotations

import argparse
import sys


def add(sub: argparse._SubParsersAction) -> None:
    dur = sub.add_parser("durability", help="check the cluster keeps Kafka's promises under random faults",
                         description="Run seeded random fault schedules (broker kills and restarts, controller "
                                     "failover, isolation, slow followers) under load on the virtual clock and audit "
                                     "every acknowledged record.")
    dur.add_argument("--schedules", type=int, default=20)
    dur.add_argument("--seed", type=int, default=1, help="the first schedule's seed (the next ones count up)")
    dur.add_argument("--acks", choices=("all", "1"), default="all")
    dur.add_argument("--json", action="store_true", help="print the report as JSON")
    dur.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from broker import durability
    report, _results = durability.run(args.schedules, args.seed, args.acks)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"{report.schedules} schedules, acks={report.acks}: {report.acked} records acknowledged, "
              f"{report.lost} lost, {report.duplicated} duplicated, {report.out_of_order} out of order, "
              f"{report.max_visible_above_hw} read above the high watermark, "
              f"{report.offset_regressions} committed offsets going back")
        if report.lossy_seeds and args.acks == "1":
            print(f"acks=1 lost records in {len(report.lossy_seeds)} schedules (a leader acknowledged, then died "
                  f"before its followers copied): seeds {report.lossy_seeds}")
    for seed in report.failing_seeds:
        print(f"FAILED seed {seed}: kafka-jmx durability --schedules 1 --seed {seed} --acks {args.acks}", file=sys.stderr)
    return 1 if report.failing_seeds else 0
