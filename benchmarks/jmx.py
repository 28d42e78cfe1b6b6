"""Real JMX speed: publishing the embedded cluster's MBeans, and reading one endpoint in bulk
(one py4j call per collection) against the straightforward one-call-per-bean reads.

    .venv/bin/python benchmarks/jmx.py [--partitions 1700]     # -> results-jmx.json

Targets (issue #3): 10,000 MBeans on one node refreshed in under 200 ms; 10,000 MBeans (about
50,000 attributes) read from one endpoint in under 1 s (>= 50k attributes/s), for JMX and Jolokia.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jvm_support import free_port_block

from broker.cluster import Cluster
from broker.jmx.publisher import JmxPublisher
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from kafka_common.jvm import start_jvm

# the BrokerTopicMetrics meters a busy broker has per topic
PER_TOPIC_METERS = ("MessagesInPerSec", "BytesInPerSec", "BytesOutPerSec", "TotalProduceRequestsPerSec",
                    "TotalFetchRequestsPerSec", "FailedProduceRequestsPerSec", "FailedFetchRequestsPerSec",
                    "BytesRejectedPerSec")


def build(partitions: int) -> Cluster:
    c = Cluster(brokers=5, controllers=3, seed=3)
    c.start()
    c.run_until(c.ready, 30_000)
    c.create_topic("wide", partitions, 3, 2)
    c.run_until(lambda: c.topic_exists("wide"), 30_000)
    p = c.producer("p")
    for i in range(partitions):
        p.send("wide", i, partition=i)
    c.run_for(10_000)
    return c


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def naive_jmx(url: str, include: str) -> int:
    """One py4j call per MBean attribute value, from Python (what a direct py4j client does)."""
    jvm = start_jvm()
    try:
        j = jvm.jvm
        conn = j.javax.management.remote.JMXConnectorFactory.connect(
            j.javax.management.remote.JMXServiceURL(url), None).getMBeanServerConnection()
        values = 0
        started = time.perf_counter()
        names = list(conn.queryNames(j.javax.management.ObjectName(include), None))
        for name in names:
            for info in conn.getMBeanInfo(name).getAttributes():
                conn.getAttribute(name, info.getName())
                values += 1
        return values, time.perf_counter() - started, len(names)
    finally:
        jvm.stop()


def naive_jolokia(url: str, names: list[str]) -> float:
    """Seconds for one HTTP request per MBean."""
    session = requests.Session()
    started = time.perf_counter()
    for name in names:
        session.post(url, json={"type": "read", "mbean": name}).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=1700)
    args = ap.parse_args()
    c = build(args.partitions)
    base = free_port_block(16)
    pub = JmxPublisher(c, base_port=base, jolokia_base_port=base + 8)
    t = time.perf_counter()
    pub.start()
    first = time.perf_counter() - t
    busiest = max(c.brokers.values(), key=lambda b: len(b.mbeans))
    result: dict = {"partitions": args.partitions, "busiest_node": busiest.name,
                    "mbeans_on_busiest": len(busiest.mbeans),
                    "mbeans_total": sum(len(n.mbeans) for n in c.servers.values()),
                    "publish_start_incl_jvm_s": round(first, 2)}
    c.run_for(1_000)
    result["refresh_all_nodes_ms"] = round(timed(lambda: (c.run_for(1_000), pub.refresh()))[0] * 1000, 1)
    node_state = pub._state[busiest.name]
    endpoint = pub._nodes[busiest.name]

    def refresh_busiest() -> None:
        c.run_for(1_000)
        with c.sched.lock:
            payload = pub._payload(busiest, node_state)
        endpoint.apply(payload)
    result["refresh_busiest_node_ms"] = round(timed(refresh_busiest)[0] * 1000, 1)

    url = pub.urls()[busiest.name]
    src = JmxSource("bench", url, includes=["kafka.*:*"])
    src.read()
    secs, collection = timed(src.read)
    n = len(collection.samples)
    result["jmx_bulk"] = {"attributes": n, "seconds": round(secs, 3), "attributes_per_s": round(n / secs)}
    values, naive_secs, beans = naive_jmx(url, "kafka.*:*")
    result["jmx_naive_per_value"] = {"mbeans": beans, "attributes": values, "seconds": round(naive_secs, 2),
                                     "attributes_per_s": round(values / naive_secs)}
    result["jmx_bulk_speedup"] = round(naive_secs / secs, 1)

    # a meter-heavy node: per-topic BrokerTopicMetrics for 700 topics led here (14 meters x 7 attributes)
    heavy = c.brokers["broker-1"]
    with c.sched.lock:
        for i in range(700):
            for meter in PER_TOPIC_METERS:
                heavy.topic_meter(meter, f"topic-{i}", 1)
    pub.refresh()
    heavy_src = JmxSource("heavy", pub.urls()["broker-1"], includes=["kafka.server:type=BrokerTopicMetrics,*"])
    heavy_src.read()
    hsecs, hcollection = timed(heavy_src.read)
    hn = len(hcollection.samples)
    result["jmx_bulk_meters"] = {"mbeans": len({s.object_name for s in hcollection.samples}), "attributes": hn,
                                 "seconds": round(hsecs, 3), "attributes_per_s": round(hn / hsecs)}

    jurl = pub.jolokia_urls()[busiest.name]
    jsrc = JolokiaSource("bench", jurl, includes=["kafka.*:*"])
    jsrc.read()
    jsecs, jcollection = timed(jsrc.read)
    jn = len(jcollection.samples)
    result["jolokia_bulk"] = {"attributes": jn, "seconds": round(jsecs, 3), "attributes_per_s": round(jn / jsecs)}
    names = sorted({s.object_name for s in jcollection.samples})
    # one request per MBean takes minutes for 10k beans: time the first 300 and scale to all of them
    sample = names[:300]
    per_bean = naive_jolokia(jurl, sample) / len(sample) * len(names)
    result["jolokia_naive_per_mbean"] = {"mbeans": len(names), "measured_mbeans": len(sample),
                                         "seconds_estimated": round(per_bean, 2)}
    result["jolokia_bulk_speedup"] = round(per_bean / jsecs, 1)
    pub.stop()
    JmxReader.stop_all()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
