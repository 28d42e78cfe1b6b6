"""kafka-jmx rehearse: break the embedded cluster and report which alerts fired, and how fast."""
from __future__ import annotations

import argparse
import re
import sys

from kafka_jmx.commands.options import duration, zabbix_api, zabbix_server


def add(sub: argparse._SubParsersAction) -> None:
    reh = sub.add_parser("rehearse", help="break the embedded cluster and report which alerts fired, how fast",
                         description="Run SCENARIO on the wall clock with the embedded cluster wired to your Zabbix "
                                     "and/or Prometheus, and report for every timeline entry's `expect:` list whether "
                                     "the trigger/alert fired, the time to fire and the time to resolve. A scenario "
                                     "without a timeline is a steady-state run: anything that fires fails it.")
    reh.add_argument("scenario", help="scenario YAML, or 'builtin' for the bundled rehearsal the test suite runs "
                                      "(3 brokers, 3 controllers; use with --fast and rules made with --hold-max 10s --scrape-interval 5s)")
    reh.add_argument("--zabbix-url", help="the Zabbix frontend URL (hosts are provisioned under 'Kafka rehearsal-...')")
    reh.add_argument("--zabbix-user", default="Admin")
    reh.add_argument("--zabbix-password-env", default="ZABBIX_PASSWORD", metavar="VAR")
    reh.add_argument("--transport", choices=("jmx", "trapper"), default="jmx",
                     help="jmx: the Java gateway polls the cluster's JMX endpoints; trapper: the exporter pushes")
    reh.add_argument("--zabbix-server", metavar="HOST:PORT",
                     help="the trapper port (for --transport trapper, and for scenarios with consumer groups)")
    reh.add_argument("--prometheus-url", help="a Prometheus that scrapes --metrics-listen and loads the alert rules")
    reh.add_argument("--alertmanager-url",
                     help="the Alertmanager --prometheus-url sends its alerts to: the rehearsal also judges what "
                          "reaches a person (give --notifications-listen too)")
    reh.add_argument("--notifications-listen", metavar="HOST:PORT",
                     help="where the rehearsal receives Alertmanager's webhook notifications (its receivers made "
                          "with generate --alertmanager-out FILE --hold-max 10s --webhook-url http://HOST:PORT/)")
    reh.add_argument("--engine", default="embedded", metavar="embedded|kafka[:VERSION]",
                     help="the embedded cluster (default), or real Apache Kafka from the Maven jars (faults: kill, "
                          "restart, pause, resume, heal; scripts/install-realkafka)")
    reh.add_argument("--kafka-base-port", type=int, default=9092, metavar="PORT",
                     help="the brokers' client listeners from PORT on (the kafka engine's; the embedded cluster's "
                          "when the scenario has consumer groups)")
    reh.add_argument("--jmx-base-port", type=int, default=9990)
    reh.add_argument("--metrics-listen", default="127.0.0.1:9404", metavar="HOST:PORT")
    reh.add_argument("--fire-timeout", type=duration, default=180_000.0, metavar="DURATION")
    reh.add_argument("--fast", action="store_true",
                     help="shorten the templates' waiting periods on the rehearsal's hosts (no data 30s, under-"
                          "replicated 10s...); load Prometheus rules made with generate --hold-max 10s --scrape-interval 5s to match")
    reh.add_argument("--zabbix-macro", action="append", default=[], metavar="MACRO=VALUE",
                     help="a macro for the rehearsal's hosts, e.g. '{$KAFKA.NODATA.TIMEOUT}=1m' (repeatable)")
    reh.add_argument("--json", action="store_true")
    reh.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from exporter.provision import ProvisionError
    from kafka_jmx.rehearse import rehearse
    if not args.zabbix_url and not args.prometheus_url:
        print("kafka-jmx: give --zabbix-url and/or --prometheus-url", file=sys.stderr)
        return 2
    if bool(args.alertmanager_url) != bool(args.notifications_listen) or (args.alertmanager_url and not args.prometheus_url):
        print("kafka-jmx: --alertmanager-url and --notifications-listen go together, with --prometheus-url "
              "(the Prometheus that sends its alerts to that Alertmanager)", file=sys.stderr)
        return 2
    inbox_at = None
    if args.notifications_listen:
        inbox_host, _, inbox_port = args.notifications_listen.rpartition(":")
        if not inbox_port.isdigit():
            print(f"kafka-jmx: --notifications-listen {args.notifications_listen!r}: expected HOST:PORT", file=sys.stderr)
            return 2
        inbox_at = (inbox_host or "127.0.0.1", int(inbox_port))
    api = zabbix_api(args.zabbix_url, args.zabbix_password_env)
    if api is None:
        return 2
    url, password = api
    host, _, port = args.metrics_listen.rpartition(":")
    zserver = zabbix_server(args.zabbix_server) if args.zabbix_server else None
    if args.zabbix_server and zserver is None:
        return 2
    from kafka_jmx.rehearse import FAST_MACROS
    macros = dict(FAST_MACROS) if args.fast else {}
    for text in args.zabbix_macro:
        macro, eq, value = text.partition("=")
        if not eq or not re.fullmatch(r"\{\$[A-Z0-9_.]+\}", macro):
            print(f"kafka-jmx: --zabbix-macro {text!r}: expected {{$NAME}}=VALUE", file=sys.stderr)
            return 2
        macros[macro] = value
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    from broker.scenario import bundled_scenario, load_scenario, load_scenario_file
    try:
        scenario = load_scenario(bundled_scenario("rehearsal.yaml"), "rehearsal.yaml") if args.scenario == "builtin" \
            else load_scenario_file(args.scenario)
        result = rehearse(scenario, zabbix_url=url, zabbix_user=args.zabbix_user,
                          zabbix_password=password, prometheus_url=args.prometheus_url, transport=args.transport,
                          jmx_base_port=args.jmx_base_port, metrics_listen=(host or "127.0.0.1", int(port)),
                          zabbix_server=zserver, fire_timeout_s=args.fire_timeout / 1000.0, macros=macros,
                          engine=args.engine, kafka_base_port=args.kafka_base_port,
                          alertmanager_url=args.alertmanager_url, notifications_listen=inbox_at, log=log)
    except (ProvisionError, ValueError, RuntimeError, OSError) as e:
        print(f"kafka-jmx: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return 0 if result.ok else 1
