"""Zabbix outages survived by the exporter's trapper push: a real Zabbix 6.0 server is stopped while
collection goes on, then restarted; the spool must deliver what it held, with the original clocks.

    .venv/bin/python benchmarks/zabbix_outage.py [--outages 2] [--outage-seconds 60]   # -> results-outage.json

Needs root and the Debian packages make test installs (the test harness starts the services).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyzabbix import ZabbixAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from zabbix_stack import IMPORT_RULES, running_stack

from broker.cluster import Cluster
from exporter.catalog.generate import ROOT
from exporter.catalog.model import load_catalog
from exporter.collector import TargetWorker
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_jmx.embedded import embedded_targets


def stored_between(api: ZabbixAPI, hostids: list[str], start: int, end: int) -> int:
    return sum(len(api.history.get(hostids=hostids, history=t, time_from=start, time_till=end, output=["clock"],
                                   limit=10**7)) for t in (0, 1, 3, 4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outages", type=int, default=2)
    ap.add_argument("--outage-seconds", type=int, default=60)
    args = ap.parse_args()
    with running_stack("kafka-jmx-bench-") as stack:
        sink = None
        try:
            api = ZabbixAPI(stack.api_url)
            api.login("Admin", "zabbix")
            source = (ROOT / "templates" / "zabbix" / "kafka-4x-6.0.yaml").read_text()
            api.configuration["import"](format="yaml", source=source, rules=IMPORT_RULES)
            tpl = {t["host"]: t["templateid"] for t in api.template.get(search={"host": "Apache Kafka 4.x"}, output=["host"])}
            c = Cluster(brokers=3, controllers=1, seed=1, config={"offsets.topic.replication.factor": 3})
            c.start()
            c.run_until(c.ready, 30_000)
            group = api.hostgroup.create(name="outage")["groupids"][0]
            hostids = []
            for node in c.servers.values():
                template = f"Apache Kafka 4.x {node.role} by trapper"
                hostids.append(api.host.create(host=f"bench-{node.name}", groups=[{"groupid": group}],
                                               templates=[{"templateid": tpl[template]}])["hostids"][0])
            stack.reload_config_cache()
            time.sleep(5)
            sink = TrapperSink("127.0.0.1", stack.server_port, load_catalog(), "bench", host_name="{cluster}-{node}",
                               spool_limit=1_000_000)
            sink.start()
            workers = [TargetWorker(t, builtin_rules(), lambda w: None, sink.offer) for t in embedded_targets(c)]

            def collect_for(seconds: float) -> None:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    t0 = time.monotonic()
                    c.run_for(1000)
                    for w in workers:
                        w.collect_once()
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))

            collect_for(10)
            outages = []
            for _ in range(args.outages):
                stack.stop_server()
                start = int(time.time())
                refused_before = sink.refused
                collect_for(args.outage_seconds)
                end = int(time.time())
                held = sink.spooled
                stack.start_server()
                t0 = time.monotonic()
                while sink.spooled and time.monotonic() - t0 < 300:
                    c.run_for(1000)
                    for w in workers:
                        w.collect_once()
                    time.sleep(1.0)
                drained = time.monotonic() - t0
                time.sleep(5)                          # the history syncers write what the trapper accepted
                stored = stored_between(api, hostids, start, end)
                outages.append({"outage_s": end - start, "values_spooled": held, "drain_s": round(drained, 1),
                                "refused": sink.refused - refused_before,
                                "stored_with_outage_clocks": stored})
                collect_for(10)
            result = {"outages": outages, "sent_total": sink.sent, "dropped_total": sink.dropped,
                      "refused_total": sink.refused, "spooled_at_end": sink.spooled}
            print(json.dumps(result, indent=2))
        finally:
            if sink is not None:
                sink.stop()


if __name__ == "__main__":
    main()
