"""Options and argument types several commands share."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kafka_common.durations import parse_duration_ms
from kafka_common.names import ObjectNamePattern


def duration(text: str) -> float:
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def pattern(text: str) -> str:
    try:
        ObjectNamePattern(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def jmx_options(parser: argparse.ArgumentParser, default_port: int | None) -> None:
    parser.add_argument("--jmx-base-port", type=int, default=default_port, metavar="PORT",
                        help="publish every node over JMX/RMI on PORT, PORT+1, ... (controllers first)"
                             + (f"; default {default_port}" if default_port else ""))
    parser.add_argument("--no-jmx", action="store_true", help="do not publish over JMX")
    parser.add_argument("--jolokia-base-port", type=int, default=None, metavar="PORT",
                        help="also serve Jolokia for every node on PORT, PORT+1, ...")
    parser.add_argument("--jmx-host", default="127.0.0.1", help="address the endpoints bind to (default 127.0.0.1)")


def jmx_settings(args: argparse.Namespace) -> dict | None:
    if args.no_jmx or args.jmx_base_port is None:
        return None
    return {"base_port": args.jmx_base_port, "host": args.jmx_host, "jolokia_base_port": args.jolokia_base_port}


def zabbix_api(url: str | None, password_env: str) -> tuple[str | None, str | None] | None:
    """(JSON-RPC endpoint, password from the environment) for a Zabbix frontend URL, (None, None)
    without one; None, after saying why, when the password is not set."""
    if not url:
        return None, None
    password = os.environ.get(password_env)
    if password is None:
        print(f"kafka-jmx: set the Zabbix password in the environment variable {password_env}", file=sys.stderr)
        return None
    return (url if url.endswith("api_jsonrpc.php") else url.rstrip("/") + "/api_jsonrpc.php"), password


def zabbix_server(text: str) -> tuple[str, int] | None:
    """--zabbix-server HOST[:PORT] (10051 by default); None, after saying why, when malformed."""
    host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()):
        print(f"kafka-jmx: --zabbix-server {text!r}: expected HOST or HOST:PORT", file=sys.stderr)
        return None
    return host, int(port or 10051)


def docs_dir() -> Path | None:
    """The docs/ pages: installed beside the package (VENV/share/doc/kafka-jmx-toolkit/docs) or a checkout's."""
    for d in (Path(sys.prefix) / "share" / "doc" / "kafka-jmx-toolkit" / "docs",
              Path(__file__).resolve().parents[2] / "docs"):
        if (d / "operators" / "configuration.md").is_file():
            return d
    return None
