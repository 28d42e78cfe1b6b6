"""Exporter speed: collect + apply rules + render a large cluster, and /metrics latency while
collection runs, against the straightforward per-scrape generate_latest of the same data.

    .venv/bin/python benchmarks/exporter_speed.py [--partitions 10000] [--rf 1]   # -> results-exporter.json

Targets (issue #4): a 5-broker, 10,000-partition cluster (about 100k series) collected and
rendered in under 1 s; a scrape under 50 ms p99 while collection runs; RSS under 150 MB.

Part one runs the exporter in this process on the embedded source (collect and render timings,
the per-scrape baseline). Part two runs it as operators do: `kafka-jmx serve` in its own process,
reading the same cluster's Jolokia endpoints (published by this process's JVM), scraped by another
process; its latency and RSS are the exporter's alone.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jvm_support import free_port_block
from prometheus_client.exposition import generate_latest
from straightforward_view import Recording, straightforward_registry

from broker.cluster import Cluster
from broker.jmx.publisher import JmxPublisher
from exporter.config import PrometheusSpec
from exporter.daemon import Daemon
from exporter.rulesets import builtin_rules
from kafka_jmx.embedded import embedded_targets


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def scrape_client(url: str, count: int) -> None:
    """Scrapes as Prometheus does (gzip, a new process), so the client does not share our GIL."""
    session = requests.Session()
    latencies = []
    for _ in range(count):
        t = time.perf_counter()
        r = session.get(url, timeout=30, headers={"Accept-Encoding": "gzip"}, stream=True)
        r.raise_for_status()
        r.raw.read(decode_content=False)        # the exporter's latency, not our gunzip
        latencies.append(time.perf_counter() - t)
    print(json.dumps(latencies))


def scrape(url: str, count: int) -> dict[str, float]:
    client = subprocess.run([sys.executable, __file__, "--scrape-client", url, str(count)],
                            capture_output=True, text=True, check=True)
    latencies = json.loads(client.stdout)
    return {"p50": round(statistics.median(latencies) * 1000, 1), "p99": round(percentile(latencies, 0.99) * 1000, 1)}


def memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "peak_rss": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def apart(c: Cluster, interval_s: float, scrapes: int, tmp: Path) -> dict:
    """`kafka-jmx serve` in its own process over Jolokia: scrape latency and the exporter's own RSS."""
    base = free_port_block(18)
    pub = JmxPublisher(c, base_port=base, jolokia_base_port=base + 8)
    pub.start(background=True)
    port = free_port_block(1)
    targets = "".join(
        f"  - {{name: {name}, role: {c.servers[name].role}, node_id: {c.servers[name].node_id}, "
        f"jolokia: {{url: '{url}'}}}}\n" for name, url in pub.jolokia_urls().items())
    cfg = tmp / "exporter.yml"
    cfg.write_text(f"cluster: bench\ncollection: {{interval: {interval_s}s, timeout: 30s}}\n"
                   f"prometheus: {{listen: '127.0.0.1:{port}'}}\ntargets:\n{targets}")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kafka-jmx"), "serve", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                body = requests.get(url, timeout=10).text
                ups = [line for line in body.splitlines() if line.startswith("kafkajmx_target_up{")]
                if ups and all(line.endswith(" 1.0") for line in ups):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"exporter did not get every target up: {proc.stderr.read() if proc.poll() is not None else body[-2000:]}")
            time.sleep(1)
        time.sleep(3 * interval_s)
        series = sum(1 for line in requests.get(url, timeout=10).text.splitlines() if line and not line.startswith("#"))
        result = {"series": series, "collection_interval_s": interval_s, "scrape_ms": scrape(url, scrapes)}
        result["exporter_memory_mb"] = memory_mb(proc.pid)
        return result
    finally:
        proc.terminate()
        proc.wait(30)
        pub.stop()


def main() -> None:
    if sys.argv[1:2] == ["--scrape-client"]:
        scrape_client(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--rf", type=int, default=1)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--interval", type=float, default=2.0, help="collection interval of the separate exporter")
    ap.add_argument("--only", choices=["in-process", "separate"], help="run one part")
    args = ap.parse_args()
    c = Cluster(brokers=5, controllers=3, seed=5)
    c.start()
    c.run_until(c.ready, 30_000)
    c.create_topic("big", args.partitions, args.rf)
    c.run_until(lambda: c.topic_exists("big"), 60_000)
    c.run_for(5_000)
    result: dict = {"partitions": args.partitions, "replication_factor": args.rf,
                    "mbeans": sum(len(n.mbeans) for n in c.servers.values())}
    if args.only != "separate":
        result.update(in_process(c, args.scrapes))
    if args.only != "in-process":
        with tempfile.TemporaryDirectory() as tmp:
            result["separate_process"] = apart(c, args.interval, args.scrapes, Path(tmp))
    print(json.dumps(result, indent=2))


def in_process(c: Cluster, scrapes: int) -> dict:
    """The exporter in this process on the embedded source, against the per-scrape baseline."""
    port = free_port_block(1)
    # Recording keeps the matched samples for the baseline below; it does not change the exporter's work
    d = Daemon("bench", embedded_targets(c, interval_s=3600, timeout_s=60), Recording(builtin_rules()),  # type: ignore[arg-type]
               PrometheusSpec(port=port))
    result: dict = {}
    # first collection fills the rule cache; the second is the steady state
    for w in d.workers:
        w.collect_once()
    started = time.perf_counter()
    for w in d.workers:
        w.collect_once()
    collect_s = time.perf_counter() - started
    d.renderer.render()
    body = d.renderer.body()
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
    result["scrape_while_collecting_ms"] = scrape(d.url, scrapes)
    stop.set()
    collector.join()
    # baseline: the straightforward custom collector, rendered by generate_latest on every scrape
    baseline = straightforward_registry(d.workers, "bench")
    naive = []
    for _ in range(10):
        t = time.perf_counter()
        generate_latest(baseline)
        naive.append(time.perf_counter() - t)
    result["per_scrape_generate_latest_ms"] = {"p50": round(statistics.median(naive) * 1000, 1),
                                               "max": round(max(naive) * 1000, 1)}
    result["speedup_p50"] = round(statistics.median(naive) * 1000 / result["scrape_while_collecting_ms"]["p50"], 1)
    result["max_rss_mb_with_the_cluster"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    d.stop()
    return result


if __name__ == "__main__":
    main()
