"""kafka-jmx: the command line of the toolkit."""
from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from typing import Sequence

from broker.clock import WallClock
from broker.config import ConfigError
from broker.mbeans.names import ObjectNamePattern
from broker.scenario import (
    FAULTS,
    Scenario,
    ScenarioError,
    bundled_scenario,
    load_scenario,
    load_scenario_file,
    parse_duration_ms,
)
from broker.simulation import Simulation
from exporter.endpoints import start_publisher
from exporter.yamlconf import ConfigError as ExporterConfigError


def _duration(text: str) -> float:
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _pattern(text: str) -> str:
    try:
        ObjectNamePattern(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-jmx",
        description="Monitor Apache Kafka 4.x (KRaft) correctly: an embedded cluster with Kafka's MBeans, "
                    "and the tools to prove templates and alerts against it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="run a scenario on the virtual clock and dump every node's MBeans",
                         description="Run SCENARIO on the virtual clock (minutes of cluster time in seconds) and "
                                     "write the MBeans of every node as JSON.")
    sim.add_argument("scenario", help="scenario YAML file")
    sim.add_argument("--dump", required=True, metavar="FILE", help="where to write the JSON ('-' for stdout)")
    sim.add_argument("--every", type=_duration, metavar="DURATION",
                     help="write one JSON line per sample time (e.g. 1s) instead of one object at the end")
    sim.add_argument("--mbean", type=_pattern, action="append", default=[], metavar="PATTERN",
                     help="only MBeans matching this JMX ObjectName pattern (repeatable), "
                          "e.g. 'kafka.controller:*'")

    demo = sub.add_parser("demo", help="run the demo cluster on the wall clock with a live view",
                          description="Start the embedded cluster with a workload and a fault timeline on the "
                                      "wall clock and show it live. Ctrl-C stops.")
    demo.add_argument("--scenario", default=None, help="scenario YAML (default: the bundled demo)")
    demo.add_argument("--duration", type=_duration, default=None, metavar="DURATION",
                      help="stop after this long (default: the scenario's run_for)")
    _jmx_options(demo, default_port=9990)
    demo.add_argument("--control-listen", default="127.0.0.1:9399", metavar="HOST:PORT",
                      help="where `kafka-jmx fault` reaches the demo (default 127.0.0.1:9399)")
    demo.add_argument("--metrics-listen", default="127.0.0.1:9404", metavar="HOST:PORT",
                      help="serve the exporter's Prometheus metrics for the demo cluster here (default 127.0.0.1:9404)")
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

    serve = sub.add_parser("serve", help="run the exporter daemon",
                           description="Collect every configured Kafka node in the background and serve "
                                       "Prometheus metrics (see exporter/config.py for the file format).")
    serve.add_argument("--config", required=True, metavar="FILE", help="the daemon's YAML configuration")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    rules = sub.add_parser("rules", help="check jmx_exporter rules offline")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rtest = rsub.add_parser("test", help="print the exposition RULES make from a `simulate --dump` file")
    rtest.add_argument("rules", help="a jmx_exporter rules file, or 'builtin'")
    rtest.add_argument("--mbeans", required=True, metavar="DUMP.json", help="output of kafka-jmx simulate --dump")
    rtest.add_argument("--node", action="append", default=[], help="only these nodes (repeatable)")
    rtest.add_argument("--target-labels", action="store_true",
                       help="add the labels `serve` gives every series (cluster, node, node_id, role); without it the "
                            "output is what jmx_exporter prints for these rules and MBeans")

    gen = sub.add_parser("generate", help="write the Zabbix templates and Prometheus rules from the catalog",
                         description="Regenerate templates/zabbix and templates/prometheus from catalog/kafka-4x.yaml.")
    gen.add_argument("--check", action="store_true", help="only report files that differ (exit 1 if any)")
    gen.add_argument("--alerts-out", metavar="FILE",
                     help="write only the Prometheus alert rules, to FILE, with your thresholds (below)")
    gen.add_argument("--brokers-min", type=int, help="KafkaActiveBrokersBelowMinimum fires below this many brokers")
    gen.add_argument("--election-latency-max-ms", type=float, help="KafkaElectionLatencyHigh fires above this")
    gen.add_argument("--hold-max", metavar="DURATION",
                     help="cap every alert's `for` and range window (e.g. 10s) for an alert rehearsal; not for production")

    dur = sub.add_parser("durability", help="check the cluster keeps Kafka's promises under random faults",
                         description="Run seeded random fault schedules (broker kills and restarts, controller "
                                     "failover, isolation, slow followers) under load on the virtual clock and audit "
                                     "every acknowledged record.")
    dur.add_argument("--schedules", type=int, default=20)
    dur.add_argument("--seed", type=int, default=1, help="the first schedule's seed (the next ones count up)")
    dur.add_argument("--acks", choices=("all", "1"), default="all")
    dur.add_argument("--json", action="store_true", help="print the report as JSON")

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
    prov.add_argument("--node", action="append", default=[], metavar="NAME=ROLE[@HOST:PORT]",
                      help="a node, e.g. broker-1=broker@10.0.0.5:9999 (repeatable); ROLE is broker, controller "
                           "or combined")
    prov.add_argument("--scenario", help="take the nodes from an embedded-cluster scenario (with --jmx-base-port)")
    prov.add_argument("--jmx-base-port", type=int, default=9990)
    prov.add_argument("--transport", choices=("jmx", "trapper"), default="jmx",
                      help="jmx: items polled by the Java gateway; trapper: values pushed by kafka-jmx serve")
    prov.add_argument("--brokers-min", type=int, help="{$KAFKA.BROKERS.MIN} on the cluster host")
    prov.add_argument("--interval", help="{$KAFKA.INTERVAL}: how often items update (default 1m)")

    reh = sub.add_parser("rehearse", help="break the embedded cluster and report which alerts fired, how fast",
                         description="Run SCENARIO on the wall clock with the embedded cluster wired to your Zabbix "
                                     "and/or Prometheus, and report for every timeline entry's `expect:` list whether "
                                     "the trigger/alert fired, the time to fire and the time to resolve. A scenario "
                                     "without a timeline is a steady-state run: anything that fires fails it.")
    reh.add_argument("scenario", help="scenario YAML, or 'builtin' for the bundled rehearsal the test suite runs "
                                      "(3 brokers, 3 controllers; use with --fast and rules made with --hold-max 10s)")
    reh.add_argument("--zabbix-url", help="the Zabbix frontend URL (hosts are provisioned under 'Kafka rehearsal-...')")
    reh.add_argument("--zabbix-user", default="Admin")
    reh.add_argument("--zabbix-password-env", default="ZABBIX_PASSWORD", metavar="VAR")
    reh.add_argument("--transport", choices=("jmx", "trapper"), default="jmx",
                     help="jmx: the Java gateway polls the cluster's JMX endpoints; trapper: the exporter pushes")
    reh.add_argument("--zabbix-server", metavar="HOST:PORT", help="the trapper port (for --transport trapper)")
    reh.add_argument("--prometheus-url", help="a Prometheus that scrapes --metrics-listen and loads the alert rules")
    reh.add_argument("--jmx-base-port", type=int, default=9990)
    reh.add_argument("--metrics-listen", default="127.0.0.1:9404", metavar="HOST:PORT")
    reh.add_argument("--fire-timeout", type=_duration, default=180_000.0, metavar="DURATION")
    reh.add_argument("--fast", action="store_true",
                     help="shorten the templates' waiting periods on the rehearsal's hosts (no data 30s, under-"
                          "replicated 10s...); load Prometheus rules made with generate --hold-max 10s to match")
    reh.add_argument("--zabbix-macro", action="append", default=[], metavar="MACRO=VALUE",
                     help="a macro for the rehearsal's hosts, e.g. '{$KAFKA.NODATA.TIMEOUT}=1m' (repeatable)")
    reh.add_argument("--json", action="store_true")

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
    fault.add_argument("--control", default="127.0.0.1:9399", metavar="HOST:PORT", help="the demo's control endpoint")

    conf = sub.add_parser("conformance", help="the embedded cluster's MBeans against real Kafka's, per role")
    conf.add_argument("scenario", help="scenario YAML file (cluster, topics, workload)")
    conf.add_argument("--kafka", default="4.1", metavar="VERSION", help="real Kafka line: 4.1 or 4.4 (default 4.1)")
    conf.add_argument("--warmup", type=_duration, default=40_000.0, metavar="DURATION",
                      help="how long both clusters run before their MBeans are read (default 40s)")
    conf.add_argument("--base-port", type=int, default=19990, metavar="PORT",
                      help="JMX and Kafka ports from PORT on (3 blocks of one port per node)")
    conf.add_argument("--json", action="store_true", help="the whole diff as JSON")

    cluster = sub.add_parser("cluster", help="a cluster on the wall clock: the embedded one or real Kafka")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    run = csub.add_parser("run", help="run a scenario on the wall clock, printing its events")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--duration", type=_duration, default=None, metavar="DURATION")
    run.add_argument("--engine", default="embedded", metavar="embedded|kafka[:VERSION]",
                     help="the embedded cluster (default), or real Apache Kafka from the Maven jars "
                          "(scripts/install-realkafka; VERSION 4.1 or 4.4, default 4.1)")
    run.add_argument("--kafka-base-port", type=int, default=9092, metavar="PORT",
                     help="kafka engine: brokers' client listeners on PORT, PORT+1, ...; the controllers' "
                          "quorum listeners follow them")
    _jmx_options(run, default_port=None)
    return parser


def _jmx_options(parser: argparse.ArgumentParser, default_port: int | None) -> None:
    parser.add_argument("--jmx-base-port", type=int, default=default_port, metavar="PORT",
                        help="publish every node over JMX/RMI on PORT, PORT+1, ... (controllers first)"
                             + (f"; default {default_port}" if default_port else ""))
    parser.add_argument("--no-jmx", action="store_true", help="do not publish over JMX")
    parser.add_argument("--jolokia-base-port", type=int, default=None, metavar="PORT",
                        help="also serve Jolokia for every node on PORT, PORT+1, ...")
    parser.add_argument("--jmx-host", default="127.0.0.1", help="address the endpoints bind to (default 127.0.0.1)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "cluster":
            return cmd_cluster_run(args)
        if args.command == "conformance":
            return cmd_conformance(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "rules":
            return cmd_rules_test(args)
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "durability":
            return cmd_durability(args)
        if args.command == "zabbix":
            return cmd_zabbix_provision(args)
        if args.command == "rehearse":
            return cmd_rehearse(args)
        if args.command == "fault":
            return cmd_fault(args)
    except (ScenarioError, ConfigError, ExporterConfigError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


def _zabbix_api(url: str | None, password_env: str) -> tuple[str | None, str | None] | None:
    """(JSON-RPC endpoint, password from the environment) for a Zabbix frontend URL, (None, None)
    without one; None, after saying why, when the password is not set."""
    if not url:
        return None, None
    password = os.environ.get(password_env)
    if password is None:
        print(f"kafka-jmx: set the Zabbix password in the environment variable {password_env}", file=sys.stderr)
        return None
    return (url if url.endswith("api_jsonrpc.php") else url.rstrip("/") + "/api_jsonrpc.php"), password


def _zabbix_server(text: str) -> tuple[str, int] | None:
    """--zabbix-server HOST[:PORT] (10051 by default); None, after saying why, when malformed."""
    host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()):
        print(f"kafka-jmx: --zabbix-server {text!r}: expected HOST or HOST:PORT", file=sys.stderr)
        return None
    return host, int(port or 10051)


def cmd_demo(args: argparse.Namespace) -> int:
    from exporter.demo import DemoZabbix, run_demo
    from exporter.provision import ProvisionError
    zabbix = None
    if args.zabbix_url and not args.zabbix_server:
        print("kafka-jmx: --zabbix-url needs --zabbix-server (where the values go)", file=sys.stderr)
        return 2
    if args.zabbix_server:
        server = _zabbix_server(args.zabbix_server)
        api = _zabbix_api(args.zabbix_url, args.zabbix_password_env)
        if server is None or api is None:
            return 2
        zabbix = DemoZabbix(*server, api[0], args.zabbix_user, api[1])
    try:
        return run_demo(args.scenario, args.duration, _jmx_settings(args), args.metrics_listen, args.control_listen,
                        args.cluster, zabbix)
    except ProvisionError as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 1


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from exporter.collector import limit_malloc_arenas
    from exporter.config import load_config_file
    from exporter.daemon import Daemon
    limit_malloc_arenas()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config_file(args.config)
    daemon = Daemon.from_config(config)
    print(f"kafka-jmx: serving {daemon.url} for {len(daemon.workers)} targets", flush=True)
    daemon.serve_forever()
    return 0


def _nodes(args: argparse.Namespace) -> list:
    from exporter.provision import NodeSpec
    nodes = []
    if args.scenario:
        scenario = load_scenario_file(args.scenario)
        names = [f"controller-{1000 + i}" for i in range(1, scenario.controllers + 1)] + \
                [f"broker-{i}" for i in range(1, scenario.brokers + 1)]
        for i, name in enumerate(names):
            nodes.append(NodeSpec(name, name.split("-")[0], "127.0.0.1", args.jmx_base_port + i))
    for text in args.node:
        name, eq, rest = text.partition("=")
        role, _, where = rest.partition("@")
        host, _, port = where.rpartition(":")
        if not eq or role not in ("broker", "controller", "combined") or (where and not port.isdigit()):
            raise SystemExit(f"kafka-jmx: --node {text!r}: expected NAME=ROLE[@HOST:PORT] with ROLE broker, "
                             "controller or combined")
        nodes.append(NodeSpec(name, role, host or "127.0.0.1", int(port) if port else 0))
    if not nodes:
        raise SystemExit("kafka-jmx: give the nodes with --node or --scenario")
    return nodes


def cmd_zabbix_provision(args: argparse.Namespace) -> int:
    from exporter.provision import ProvisionError, Provisioner
    api = _zabbix_api(args.url, args.password_env)
    if api is None:
        return 2
    url, password = api
    try:
        prov = Provisioner(url, args.user, password)
        hosts = prov.provision(args.cluster, _nodes(args), args.transport, args.brokers_min, args.interval)
    except ProvisionError as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 1
    print(f"Zabbix {prov.version}: templates imported; host group 'Kafka {args.cluster}'; hosts:")
    for name, hostid in hosts.items():
        print(f"  {name} (hostid {hostid})")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    import requests
    body = {"action": args.action, "node": args.node}
    if args.fetch_delay:
        body["fetch_delay"] = args.fetch_delay
    for key in ("event_delay", "disk_delay", "bytes_per_sec", "log_dir"):
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


def cmd_rehearse(args: argparse.Namespace) -> int:
    import json
    from exporter.provision import ProvisionError
    from exporter.rehearse import rehearse
    if not args.zabbix_url and not args.prometheus_url:
        print("kafka-jmx: give --zabbix-url and/or --prometheus-url", file=sys.stderr)
        return 2
    api = _zabbix_api(args.zabbix_url, args.zabbix_password_env)
    if api is None:
        return 2
    url, password = api
    host, _, port = args.metrics_listen.rpartition(":")
    zserver = _zabbix_server(args.zabbix_server) if args.zabbix_server else None
    if args.zabbix_server and zserver is None:
        return 2
    from exporter.rehearse import FAST_MACROS
    macros = dict(FAST_MACROS) if args.fast else {}
    for text in args.zabbix_macro:
        macro, eq, value = text.partition("=")
        if not eq or not re.fullmatch(r"\{\$[A-Z0-9_.]+\}", macro):
            print(f"kafka-jmx: --zabbix-macro {text!r}: expected {{$NAME}}=VALUE", file=sys.stderr)
            return 2
        macros[macro] = value
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    try:
        scenario = load_scenario(bundled_scenario("rehearsal.yaml"), "rehearsal.yaml") if args.scenario == "builtin" \
            else load_scenario_file(args.scenario)
        result = rehearse(scenario, zabbix_url=url, zabbix_user=args.zabbix_user,
                          zabbix_password=password, prometheus_url=args.prometheus_url, transport=args.transport,
                          jmx_base_port=args.jmx_base_port, metrics_listen=(host or "127.0.0.1", int(port)),
                          zabbix_server=zserver, fire_timeout_s=args.fire_timeout / 1000.0, macros=macros, log=log)
    except (ProvisionError, ValueError, RuntimeError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return 0 if result.ok else 1


def cmd_durability(args: argparse.Namespace) -> int:
    import json

    from broker import durability
    report, results = durability.run(args.schedules, args.seed, args.acks)
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


def cmd_generate(args: argparse.Namespace) -> int:
    from exporter.catalog import alerts, generate
    from exporter.catalog.model import load_catalog
    if args.alerts_out:
        text = alerts.serialize(alerts.render(load_catalog(), args.brokers_min, args.election_latency_max_ms,
                                              args.hold_max))
        with open(args.alerts_out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.alerts_out}")
        return 0
    if args.check:
        stale = generate.stale()
        for path in stale:
            print(f"stale: {path} (run kafka-jmx generate)")
        return 1 if stale else 0
    for path in generate.write():
        print(f"wrote {path}")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    import json

    from prometheus_client.registry import CollectorRegistry

    from exporter.collector import HealthView, Target, TargetWorker, exposition
    from exporter.rules import RuleSet
    from exporter.rulesets import builtin_rules
    from exporter.sources.dump import DumpSource
    from exporter.yamlconf import read_text
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


def cmd_conformance(args: argparse.Namespace) -> int:
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


def _run_real_kafka(args: argparse.Namespace, scenario: Scenario) -> int:
    from realkafka.cluster import RealCluster, RealKafkaError
    from realkafka.engine import Engine, EngineError, check
    from realkafka.install import DEFAULT_LINE, NotInstalled
    engine, _, version = args.engine.partition(":")
    if engine != "kafka":
        print(f"kafka-jmx: unknown engine {args.engine!r} (embedded, or kafka[:VERSION])", file=sys.stderr)
        return 2
    try:
        check(scenario)
        cluster = RealCluster(version or DEFAULT_LINE, scenario.brokers, scenario.controllers,
                              args.jmx_base_port or 9990, args.kafka_base_port, args.jolokia_base_port, scenario.config)
    except (EngineError, ValueError, NotInstalled, RealKafkaError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    try:
        cluster.start()
        jolokia = cluster.jolokia_urls()
        for name, url in cluster.urls().items():
            print(f"{name:16} {url}" + (f"  {jolokia[name]}" if name in jolokia else ""), flush=True)
        print(f"bootstrap.servers={cluster.bootstrap_servers()}", flush=True)
        run = Engine(scenario, cluster)
        run.create_topics()
        run.start_workload()
        try:
            run.run(args.duration, lambda t, event: print(f"{t:8.1f}s  {event}", flush=True))
        except KeyboardInterrupt:
            run.stop.set()
        print(f"records acknowledged {run.acked}, consumed {run.consumed}", flush=True)
    except (RealKafkaError, RuntimeError) as e:
        print(f"kafka-jmx: real Kafka {cluster.version}: {e}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
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


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.scenario)
    sim = Simulation(scenario)
    sim.start()
    out = sys.stdout if args.dump == "-" else open(args.dump, "w", encoding="utf-8")
    try:
        sim.run(every_ms=args.every, on_sample=lambda: sim.dump(out, args.mbean))
    finally:
        if out is not sys.stdout:
            out.close()
    for t, event in sim.events:
        print(f"{t / 1000:8.1f}s  {event}", file=sys.stderr)
    return 0


def _jmx_settings(args: argparse.Namespace) -> dict | None:
    if args.no_jmx or args.jmx_base_port is None:
        return None
    return {"base_port": args.jmx_base_port, "host": args.jmx_host, "jolokia_base_port": args.jolokia_base_port}


def cmd_cluster_run(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.scenario)
    if args.engine != "embedded":
        return _run_real_kafka(args, scenario)
    sim = Simulation(scenario, WallClock())
    stop = threading.Event()
    sim.start()
    publisher = start_publisher(sim, _jmx_settings(args))
    seen = 0
    try:
        def report() -> None:
            nonlocal seen
            for t, event in sim.events[seen:]:
                print(f"{t / 1000:8.1f}s  {event}", flush=True)
            seen = len(sim.events)
        # the duration counts from when the endpoints are up, not from the process start
        until_ms = None if args.duration is None else sim.cluster.now_ms() + args.duration
        sim.run(until_ms=until_ms, every_ms=1000.0, on_sample=report, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if publisher is not None:
            publisher.stop()
    return 0
