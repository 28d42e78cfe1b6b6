"""kafka-jmx generate: every artifact from the catalog (templates, alert rules, dashboards)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="write the Zabbix templates, Prometheus rules and Grafana dashboards",
                         description="Write templates/zabbix, templates/prometheus and dashboards/grafana under --out "
                                     "from the catalog shipped in the package (exporter/catalog/kafka-4x.yaml).")
    gen.add_argument("--out", default=".", metavar="DIR",
                     help="where templates/ and dashboards/ go (default: the current directory; in a checkout, "
                          "its root)")
    gen.add_argument("--check", action="store_true", help="only report files that differ (exit 1 if any)")
    gen.add_argument("--alerts-out", metavar="FILE",
                     help="write only the Prometheus alert rules, to FILE, with your thresholds (below)")
    gen.add_argument("--alertmanager-out", metavar="FILE",
                     help="write only the Alertmanager routing tree and inhibitions, to FILE (with --hold-max: "
                          "waits of seconds; with --webhook-url: every Kafka receiver posts there)")
    gen.add_argument("--webhook-url", metavar="URL",
                     help="with --alertmanager-out: the webhook every Kafka receiver notifies (a rehearsal's "
                          "--notifications-listen)")
    gen.add_argument("--brokers-min", type=int, help="KafkaActiveBrokersBelowMinimum fires below this many brokers")
    gen.add_argument("--election-latency-max-ms", type=float, help="KafkaElectionLatencyHigh fires above this")
    gen.add_argument("--lag-seconds-max", type=float, metavar="SECONDS",
                     help="KafkaConsumerGroupLagSecondsHigh fires above this lag in seconds (default 300)")
    gen.add_argument("--retention-margin-min", type=float, metavar="SECONDS",
                     help="KafkaConsumerGroupWillLoseRecords fires when retention may delete a group's unread records "
                          "within this (default 3600)")
    gen.add_argument("--scrape-interval", default="15s", metavar="DURATION",
                     help="your Prometheus's scrape and evaluation interval (default 15s, the README's): every range "
                          "window must hold two samples of it (Prometheus 3's windows are left-open)")
    gen.add_argument("--hold-max", metavar="DURATION",
                     help="cap every alert's `for` and range window (e.g. 10s) for an alert rehearsal; not for production")
    gen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from exporter.catalog import alertmanager, alerts, generate
    from exporter.catalog.model import load_catalog
    if args.webhook_url and not args.alertmanager_out:
        print("kafka-jmx generate: --webhook-url goes with --alertmanager-out FILE", file=sys.stderr)
        return 2
    if args.alertmanager_out:
        catalog = load_catalog()
        doc = alertmanager.render(catalog, args.hold_max, args.webhook_url)
        with open(args.alertmanager_out, "w", encoding="utf-8") as fh:
            fh.write(alertmanager.serialize(doc, catalog))
        print(f"wrote {args.alertmanager_out}")
        if not args.alerts_out:
            return 0
    if args.alerts_out:
        text = alerts.serialize(alerts.render(load_catalog(), args.brokers_min, args.election_latency_max_ms,
                                              args.hold_max, args.lag_seconds_max, args.scrape_interval,
                                              args.retention_margin_min))
        with open(args.alerts_out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.alerts_out}")
        return 0
    if args.check:
        stale = generate.stale(Path(args.out))
        for path in stale:
            print(f"stale: {path} (run kafka-jmx generate --out {args.out})")
        return 1 if stale else 0
    for path in generate.write(Path(args.out)):
        print(f"wrote {path}")
    return 0
