"""kafka-jmx serve: the exporter daemon (and an embedded cluster when the config names one)."""
from __future__ import annotations

import argparse
import logging
from typing import Any

from kafka_jmx.commands.options import docs_dir


def add(sub: argparse._SubParsersAction[Any]) -> None:
    docs = docs_dir()
    where = (f"\n\nThe configuration file's keys:\n  {docs / 'operators' / 'configuration.md'}\n"
             f"Running the exporter:\n  {docs / 'operators' / 'exporter.md'}" if docs else "")
    serve = sub.add_parser("serve", help="run the exporter daemon", formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Collect every configured Kafka node in the background, serve Prometheus\n"
                                       f"metrics and push Zabbix trapper items.{where}")
    serve.add_argument("--config", required=True, metavar="FILE", help="the daemon's YAML configuration")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from exporter.collector import limit_malloc_arenas
    from exporter.config import load_config_file
    from exporter.daemon import Daemon
    limit_malloc_arenas()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_without_py4j_tracebacks)
    config = load_config_file(args.config)
    # the simulator is loaded only for a config with an embedded: scenario
    daemon = Daemon.from_config(config, embedded=_embedded if config.embedded else None)
    print(f"kafka-jmx: serving {daemon.url} for {len(daemon.workers)} targets", flush=True)
    return daemon.serve_forever()


def _embedded(config):
    from kafka_jmx.embedded import embedded_cluster
    return embedded_cluster(config)


def _without_py4j_tracebacks(record: logging.LogRecord) -> bool:
    """py4j logs a traceback (partly through the root logger) when the helper JVM goes away, as on a
    stop; the JMX source reports the same failure as its target's error."""
    return "py4j" not in record.pathname.replace("\\", "/").split("/")
