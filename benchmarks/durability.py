"""The durability checker at scale: 500 seeded fault schedules per acks setting.

    .venv/bin/python benchmarks/durability.py [--schedules 500]     # -> results-durability.json
"""
from __future__ import annotations

import argparse
import json
import time

from broker import durability


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=500)
    args = ap.parse_args()
    out = {}
    for acks in ("all", "1"):
        started = time.perf_counter()
        report, _ = durability.run(args.schedules, 1, acks)
        out[f"acks_{acks}"] = {**report.as_dict(), "lossy_seeds": len(report.lossy_seeds),
                               "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
