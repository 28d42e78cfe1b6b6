"""Exporter speed: collect + apply rules + render a large cluster, and /metrics latency while
collection runs, against the straightforward per-scrape generate_latest of the same data.

    .venv/bin/python benchmarks/exporter_speed.py [--partitions 10000] [--rf 1]   # -> results-exporter.json

Targets (issue #4): a 5-broker, 10,000-partition cluster (about 100k series) collected and
rendered in under 1 s; a scrape under 50 ms p99 while collection runs; RSS under 150 MB.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import requests
from prometheus_client.exposition import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jvm_support import free_port_block  # noqa: E402

from broker.cluster import Cluster  # noqa: E402
from exporter.config import PrometheusSpec  # noqa: E402
from exporter.daemon import Daemon, embedded_targets  # noqa: E402
from exporter.rulesets import builtin_rules  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--rf", type=int, default=1)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    c = Cluster(brokers=5, controllers=3, seed=5)
    c.start()
    c.run_until(c.ready, 30_000)
    c.create_topic("big", args.partitions, args.rf)
    c.run_until(lambda: c.topic_exists("big"), 60_000)
    c.run_for(5_000)
    port = free_port_block(1)
    d = Daemon("bench", embedded_targets(c, interval_s=3600, timeout_s=60), builtin_rules(), PrometheusSpec(port=port))
    result: dict = {"partitions": args.partitions, "replication_factor": args.rf,
                    "mbeans": sum(len(n.mbeans) for n in c.servers.values())}
    # first collection fills the rule cache; the second is the steady state
    for w in d.workers:
        w.collect_once()
    started = time.perf_counter()
    for w in d.workers:
        w.collect_once()
    collect_s = time.perf_counter() - started
    body = d.renderer.render()
    result["series"] = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    result["collect_all_targets_s"] = round(collect_s, 3)
    result["render_s"] = round(d.renderer.render_seconds, 3)
    result["collect_plus_render_s"] = round(collect_s + d.renderer.render_seconds, 3)

    d.server.start()
    d.renderer.start()
    stop = threading.Event()

    def collect_loop() -> None:
        # every target collected once a second (ten times the default interval), each followed by a render
        while not stop.is_set():
            for w in d.workers:
                w.collect_once()
                d.renderer.mark_dirty()
            stop.wait(1.0)

    collector = threading.Thread(target=collect_loop, daemon=True)
    collector.start()
    session = requests.Session()
    latencies = []
    for _ in range(args.scrapes):
        t = time.perf_counter()
        session.get(d.url, timeout=30).raise_for_status()
        latencies.append(time.perf_counter() - t)
    stop.set()
    collector.join()
    result["scrape_while_collecting_ms"] = {"p50": round(statistics.median(latencies) * 1000, 1),
                                            "p99": round(percentile(latencies, 0.99) * 1000, 1)}
    # baseline: render on every scrape (the straightforward custom-collector setup)
    naive = []
    for _ in range(10):
        t = time.perf_counter()
        generate_latest(d.renderer.registry)
        naive.append(time.perf_counter() - t)
    result["per_scrape_generate_latest_ms"] = {"p50": round(statistics.median(naive) * 1000, 1),
                                               "max": round(max(naive) * 1000, 1)}
    result["speedup_p50"] = round(statistics.median(naive) / statistics.median(latencies), 1)
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    d.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
