"""kafka-jmx zabbix provision: templates, host group and one host per node on a Zabbix server."""
from __future__ import annotations

import argparse
import sys

from kafka_common.roles import ROLES
from kafka_jmx.commands.options import zabbix_api


def add(sub: argparse._SubParsersAction) -> None:
    zbx = sub.add_parser("zabbix", help="Zabbix: provision templates and hosts")
    zsub = zbx.add_subparsers(dest="zabbix_command", required=True, metavar="ACTION")
    prov = zsub.add_parser("provision", help="import the templates and create the cluster's hosts (idempotent)",
                           description="Import the Kafka 4.x templates, create the host group 'Kafka CLUSTER', one "
                                       "host per node linked to its role's template, and the cluster host.")
    prov.add_argument("--url", required=True, help="the frontend, e.g. http://zabbix.example/ (api_jsonrpc.php is added)")
    prov.add_argument("--user", default="Admin")
    prov.add_argument("--password-env", default="ZABBIX_PASSWORD", metavar="VAR",
                      help="environment variable holding the password (default ZABBIX_PASSWORD)")
    prov.add_argument("--cluster", required=True, help="the cluster's name (host group 'Kafka NAME', host prefix)")
    prov.add_argument("--node", action="append", default=[], metavar="NAME=ROLE[@HOST:PORT][/ZABBIX_HOST]",
                      help="a node, e.g. broker-1=broker@10.0.0.5:9999 (repeatable); ROLE is broker, controller "
                           "or combined; /ZABBIX_HOST takes over that existing host instead of CLUSTER-NAME")
    prov.add_argument("--scenario", help="take the nodes from an embedded-cluster scenario (with --jmx-base-port)")
    prov.add_argument("--jmx-base-port", type=int, default=9990)
    prov.add_argument("--transport", choices=("jmx", "trapper"), default="jmx",
                      help="jmx: items polled by the Java gateway; trapper: values pushed by kafka-jmx serve")
    prov.add_argument("--brokers-min", type=int,
                      help="{$KAFKA.BROKERS.MIN} on the cluster host (default: the broker and combined nodes given)")
    prov.add_argument("--interval", help="{$KAFKA.INTERVAL}: how often items update (default 1m)")
    prov.add_argument("--proxy", metavar="NAME",
                      help="monitor the node hosts through this Zabbix proxy (point the exporter's zabbix.server at it)")
    prov.add_argument("--migrate-from", action="append", default=[], metavar="TEMPLATE",
                      help="unlink and clear this template from the nodes' existing hosts before linking ours, "
                           "e.g. 'Apache Kafka by JMX' (Zabbix's bundled one); its items' history goes with them")
    zbx.set_defaults(run=run)


def _nodes(args: argparse.Namespace) -> list:
    from exporter.provision import NodeSpec
    nodes = []
    if args.scenario:
        from broker.scenario import load_scenario_file
        scenario = load_scenario_file(args.scenario)
        for i, name in enumerate(scenario.node_names()):
            nodes.append(NodeSpec(name, name.split("-")[0], "127.0.0.1", args.jmx_base_port + i))
    for text in args.node:
        text, _, zabbix_host = text.partition("/")
        name, eq, rest = text.partition("=")
        role, _, where = rest.partition("@")
        host, _, port = where.rpartition(":")
        if not eq or role not in ROLES or (where and not port.isdigit()):
            raise SystemExit(f"kafka-jmx: --node {text!r}: expected NAME=ROLE[@HOST:PORT] with ROLE broker, "
                             "controller or combined")
        nodes.append(NodeSpec(name, role, host or "127.0.0.1", int(port) if port else 0, zabbix_host))
    if not nodes:
        raise SystemExit("kafka-jmx: give the nodes with --node or --scenario")
    return nodes


def run(args: argparse.Namespace) -> int:
    from exporter.provision import Provisioner, ProvisionError
    api = zabbix_api(args.url, args.password_env)
    if api is None:
        return 2
    url, password = api
    assert url is not None and password is not None     # --url is required here
    try:
        prov = Provisioner(url, args.user, password)
        hosts = prov.provision(args.cluster, _nodes(args), args.transport, args.brokers_min, args.interval,
                               migrate_from=args.migrate_from, proxy=args.proxy)
    except ProvisionError as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 1
    print(f"Zabbix {prov.version}: templates imported; host group 'Kafka {args.cluster}'; hosts:")
    for name, hostid in hosts.items():
        print(f"  {name} (hostid {hostid})")
    return 0
