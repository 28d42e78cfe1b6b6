"""The real jmx_exporter (1.x standalone HTTP server) against our collection (`kafka-jmx serve`'s
code path: one bulk JMX read, the rules, the exposition), same JMX endpoint, same rules file.

    .venv/bin/python benchmarks/jmx_exporter_vs_serve.py --partitions 340 1700
        # -> results-jmx-exporter.json

The embedded cluster (5 brokers, RF 3) with one topic of N partitions, published over JMX; both read
the busiest broker with the built-in rules. jmx_exporter's time is a whole scrape of its /metrics
(it reads JMX on every scrape); ours is one collection of the target plus the exposition it renders.
Median of 5 after one warm-up each; the two JVMs and this process share the machine's 2 cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jvm_support import free_port_block
from prometheus_client.registry import CollectorRegistry

from broker.jmx.publisher import JmxPublisher
from exporter.collector import Target, TargetWorker, exposition
from exporter.rules import RuleSet
from exporter.sources.jmx import JmxReader, JmxSource
from realkafka.install import tool_jar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jmx import build

RULES = (Path(__file__).resolve().parent.parent / "exporter" / "rulesets" / "kafka-4x.yml").read_text()


def jmx_exporter_times(url: str, repeat: int) -> tuple[list[float], int]:
    port = free_port_block(1)
    with tempfile.TemporaryDirectory() as d:
        config = Path(d) / "config.yml"
        config.write_text(f"jmxUrl: {url}\n" + RULES)
        proc = subprocess.Popen(["java", "-Xmx512m", "-jar", str(tool_jar("jmx_prometheus_httpserver")),
                                 f"127.0.0.1:{port}", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=120).text
                    if "jmx_scrape_error 0.0" in text:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("jmx_exporter did not answer")
                time.sleep(0.5)
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=120).text
                times.append(time.perf_counter() - t)
            samples = sum(1 for line in text.splitlines() if line.startswith("kafka_"))
            return times, samples
        finally:
            proc.kill()
            proc.wait()


def our_times(url: str, repeat: int) -> tuple[list[float], int]:
    rules = RuleSet.from_yaml(RULES, "kafka-4x.yml")
    worker = TargetWorker(Target("broker", "broker", JmxSource("broker", url, timeout_ms=120_000), "1"), rules,
                          lambda w: None, cluster="bench", target_labels=False)
    registry = CollectorRegistry(auto_describe=False)
    worker.collect_once()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        worker.collect_once()
        text = b"".join(exposition([worker], registry))
        times.append(time.perf_counter() - t)
    samples = sum(1 for line in text.decode().splitlines() if line.startswith("kafka_"))
    return times, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, nargs="+", default=[340, 1700])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results = []
    for partitions in args.partitions:
        c = build(partitions)
        pub = JmxPublisher(c, base_port=free_port_block(8))
        pub.start()
        try:
            busiest = max(c.brokers.values(), key=lambda b: len(b.partitions))
            url = pub.urls()[busiest.name]
            theirs, their_samples = jmx_exporter_times(url, args.repeat)
            mine, my_samples = our_times(url, args.repeat)
        finally:
            pub.stop()
            JmxReader.stop_all()
        results.append({
            "partitions_in_cluster": partitions, "replicas_on_broker": len(busiest.partitions),
            "mbeans_on_broker": sum(1 for _ in busiest.mbeans.items()),
            "samples": {"jmx_exporter": their_samples, "kafka_jmx": my_samples},
            "jmx_exporter_s": round(statistics.median(theirs), 3), "kafka_jmx_s": round(statistics.median(mine), 3),
            "speedup": round(statistics.median(theirs) / statistics.median(mine), 1),
        })
        print(json.dumps(results[-1]), flush=True)
    out = Path(__file__).resolve().parent / "results-jmx-exporter.json"
    out.write_text(json.dumps({"command": "benchmarks/jmx_exporter_vs_serve.py " + " ".join(sys.argv[1:]),
                               "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
