"""kafka-jmx: the command line of the toolkit, one module per command under kafka_jmx/commands.

Exit codes, the same for every command: 0 done; 1 what was run or checked failed (an alert that did
not fire, a stale artifact, a cluster that stopped on an error, a refusing Zabbix); 2 the command line
or an input file is wrong, or something it needs is not installed (the message says which and how to fix it).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from kafka_common.yamlconf import InputError
from kafka_jmx.commands import (
    cluster,
    conformance,
    demo,
    durability,
    fault,
    generate,
    rehearse,
    rules,
    serve,
    simulate,
    zabbix,
)

# what the `lab` extra installs (pyproject.toml): the embedded cluster, the demo, the generators
LAB_MODULES = {"crc32c", "grafana_foundation_sdk", "rich"}

COMMANDS = (simulate, demo, serve, rules, generate, durability, zabbix, rehearse, fault, conformance, cluster)


def toolkit_version() -> str:
    try:
        return version("kafka-jmx-toolkit")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-jmx",
        description="Monitor Apache Kafka 4.x (KRaft) correctly: an embedded cluster with Kafka's MBeans, "
                    "and the tools to prove templates and alerts against it.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {toolkit_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (kill, systemd, a test's terminate) stops a command as Ctrl-C does, so what it started
    # (real Kafka's JVMs, the JMX gateway, listeners) is stopped on the way out, not left running
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.run(args)
    except InputError as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] not in LAB_MODULES:
            raise
        print(f"kafka-jmx: {args.command} needs the lab's packages ({e.name} is missing): "
              "pip install 'kafka-jmx-toolkit[lab]'", file=sys.stderr)
        return 2
