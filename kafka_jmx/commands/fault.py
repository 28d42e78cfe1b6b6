"""kafka-jmx fault: a fault sent to a running `kafka-jmx demo`."""
from __future__ import annotations

import argparse
import sys

from kafka_common.faults import FAULTS


def add(sub: argparse._SubParsersAction) -> None:
    fault = sub.add_parser("fault", help="inject a fault into a running `kafka-jmx demo`",
                           description="Send a fault to the running demo's control endpoint.")
    fault.add_argument("action", choices=FAULTS)
    fault.add_argument("node", nargs="?",
                       help="broker-N, controller-N or active-controller (heal: optional; flood: a topic)")
    fault.add_argument("--fetch-delay", metavar="DURATION", help="slow: the follower's pause between fetches")
    fault.add_argument("--event-delay", metavar="DURATION", help="slow: a controller's extra time per event")
    fault.add_argument("--disk-delay", metavar="DURATION", help="slow: a broker's extra time per disk append")
    fault.add_argument("--bytes-per-sec", metavar="SIZE", help="flood: what the flooding producer sends, e.g. 100MB")
    fault.add_argument("--log-dir", metavar="DIR", help="fail_log_dir: which of log.dirs (default: the first live)")
    fault.add_argument("--down", metavar="DURATION", help="bounce: how long the node stays down (default 5s)")
    fault.add_argument("--control", default="127.0.0.1:9399", metavar="HOST:PORT", help="the demo's control endpoint")
    fault.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import requests
    body = {"action": args.action, "node": args.node}
    if args.fetch_delay:
        body["fetch_delay"] = args.fetch_delay
    for key in ("event_delay", "disk_delay", "bytes_per_sec", "log_dir", "down"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    url = f"http://{args.control}/fault"
    try:
        resp = requests.post(url, json=body, timeout=10)
    except requests.RequestException:
        print(f"kafka-jmx: no demo answers at {url} (is `kafka-jmx demo` running?)", file=sys.stderr)
        return 2
    answer = resp.json()
    if not answer.get("ok"):
        print(f"kafka-jmx: {answer.get('error')}", file=sys.stderr)
        return 1
    print(answer["message"])
    return 0
