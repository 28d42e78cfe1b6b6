"""kafka-jmx demo: the embedded cluster on the wall clock with a live view, its exporter and fault control."""
from __future__ import annotations

import argparse
import sys

from kafka_jmx.commands.options import duration, jmx_options, jmx_settings, zabbix_api, zabbix_server


def add(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the demo cluster on the wall clock with a live view",
                          description="Start the embedded cluster with a workload and a fault timeline on the "
                                      "wall clock and show it live. Ctrl-C stops.")
    demo.add_argument("--scenario", default=None, help="scenario YAML (default: the bundled demo)")
    demo.add_argument("--duration", type=duration, default=None, metavar="DURATION",
                      help="stop after this long (default: the scenario's run_for)")
    jmx_options(demo, default_port=9990)
    demo.add_argument("--control-listen", default="127.0.0.1:9399", metavar="HOST:PORT",
                      help="where `kafka-jmx fault` reaches the demo (default 127.0.0.1:9399)")
    demo.add_argument("--metrics-listen", default="127.0.0.1:9404", metavar="HOST:PORT",
                      help="serve the exporter's Prometheus metrics for the demo cluster here (default 127.0.0.1:9404)")
    demo.add_argument("--kafka-base-port", type=int, default=9092, metavar="PORT",
                      help="the brokers' Kafka protocol on 127.0.0.1:PORT, PORT+1, ... (default 9092)")
    demo.add_argument("--cluster", default="demo",
                      help="the cluster's name: its Prometheus label and the prefix of its Zabbix hosts (default demo)")
    demo.add_argument("--zabbix-server", metavar="HOST[:PORT]",
                      help="also push the template items to this Zabbix server as trapper values, to hosts "
                           "CLUSTER-NODE on the trapper templates")
    demo.add_argument("--zabbix-url", metavar="URL",
                      help="with --zabbix-server: create those hosts first through this Zabbix API "
                           "(as kafka-jmx zabbix provision --transport trapper does)")
    demo.add_argument("--zabbix-user", default="Admin", help="Zabbix API user (default Admin)")
    demo.add_argument("--zabbix-password-env", default="ZABBIX_PASSWORD", metavar="VAR",
                      help="environment variable holding the Zabbix API password (default ZABBIX_PASSWORD)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from exporter.provision import ProvisionError
    from kafka_jmx.demo import DemoZabbix, run_demo
    zabbix = None
    if args.zabbix_url and not args.zabbix_server:
        print("kafka-jmx: --zabbix-url needs --zabbix-server (where the values go)", file=sys.stderr)
        return 2
    if args.zabbix_server:
        server = zabbix_server(args.zabbix_server)
        api = zabbix_api(args.zabbix_url, args.zabbix_password_env)
        if server is None or api is None:
            return 2
        zabbix = DemoZabbix(*server, api[0], args.zabbix_user, api[1])
    try:
        return run_demo(args.scenario, args.duration, jmx_settings(args), args.metrics_listen, args.control_listen,
                        args.cluster, zabbix, args.kafka_base_port)
    except ProvisionError as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 1
