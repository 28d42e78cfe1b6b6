"""Zabbix ingestion through both paths into one real Zabbix 6.0 server, in one run: the Java
gateway polling our JMX endpoints (items/s) against the exporter's trapper push (values/s).

    .venv/bin/python benchmarks/zabbix_throughput.py [--items 2000] [--seconds 60]   # -> results-zabbix.json

Needs root and the Debian packages make test installs (the test harness starts the services).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyzabbix import ZabbixAPI
from zabbix_utils import ItemValue, Sender

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jvm_support import free_port_block
from zabbix_stack import running_stack

from broker.cluster import Cluster
from broker.jmx.publisher import JmxPublisher


def history_count(api: ZabbixAPI, hostid: str, since: int, value_type: int) -> int:
    return len(api.history.get(hostids=[hostid], history=value_type, time_from=since, output=["clock"], limit=10**7))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    with running_stack("kafka-jmx-bench-") as stack:
        publisher = None
        try:
            api = ZabbixAPI(stack.api_url)
            api.login("Admin", "zabbix")
            c = Cluster(brokers=1, controllers=1, seed=1, config={"offsets.topic.replication.factor": 1})
            c.start()
            c.run_until(c.ready, 30_000)
            c.create_topic("t", args.items // 4 + 1, 1)
            c.run_until(lambda: c.topic_exists("t"), 30_000)
            publisher = JmxPublisher(c, base_port=free_port_block(2, low=20000))
            publisher.start()
            group = api.hostgroup.create(name="bench")["groupids"][0]
            port = publisher.ports()["broker-1"]
            jmx_host = api.host.create(host="bench-jmx", groups=[{"groupid": group}],
                                       interfaces=[{"type": 4, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "",
                                                    "port": str(port)}])["hostids"][0]
            iface = api.hostinterface.get(hostids=[jmx_host], output=["interfaceid"])[0]["interfaceid"]
            trap_host = api.host.create(host="bench-trap", groups=[{"groupid": group}])["hostids"][0]
            keys = []
            for p in range(args.items // 4 + 1):
                for name in ("Size", "LogEndOffset", "LogStartOffset", "NumLogSegments"):
                    keys.append(f'jmx["kafka.log:type=Log,name={name},topic=t,partition={p}","Value"]')
            keys = keys[:args.items]
            api.item.create(*[{"hostid": jmx_host, "name": k, "key_": k, "type": 16, "value_type": 3, "delay": "1s",
                              "interfaceid": iface, "history": "1d"} for k in keys])
            api.item.create(*[{"hostid": trap_host, "name": k, "key_": k, "type": 2, "value_type": 3, "history": "1d"}
                             for k in keys])
            stack.reload_config_cache()
            time.sleep(10)
            # JMX path: what the gateway stores in a window, every item due each second
            start = int(time.time())
            time.sleep(args.seconds)
            polled = history_count(api, jmx_host, start, 3) / args.seconds
            # trapper path: the same number of keys, as many rounds as the sender can push in the window
            sender = Sender(server="127.0.0.1", port=stack.server_port, chunk_size=250)
            sent = 0
            t0 = time.perf_counter()
            clock = int(time.time())
            while time.perf_counter() - t0 < args.seconds / 2:
                clock += 1
                r = sender.send([ItemValue("bench-trap", k, str(i), clock) for i, k in enumerate(keys)])
                sent += r.processed
            pushed = sent / (time.perf_counter() - t0)
            result = {"items": len(keys), "window_s": args.seconds,
                      "java_gateway_items_per_s": round(polled), "java_gateway_pollers": 2,
                      "trapper_values_per_s": round(pushed), "trapper_over_gateway": round(pushed / max(polled, 1), 1)}
            print(json.dumps(result, indent=2))
        finally:
            if publisher is not None:
                publisher.stop()


if __name__ == "__main__":
    main()
