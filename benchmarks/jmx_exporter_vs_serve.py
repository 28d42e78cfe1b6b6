"""The real jmx_exporter's standalone HTTP servers, 0.20.0 (the last release before 1.0, which most clusters ran
for years) and 1.0.1 (the newest 1.x Maven Central serves here), against our collection (`kafka-jmx serve`'s code
path: one bulk read, the rules, the exposition) over JMX and over Jolokia, same broker, same rules file.

    scripts/install-realkafka httpserver-0.20       # 0.20.0's server (make test fetches 1.0.1's)
    .venv/bin/python benchmarks/jmx_exporter_vs_serve.py --partitions 1000 10000
        # -> results-jmx-exporter.json

The embedded cluster (5 brokers, RF 3) with one topic of N partitions, published over JMX and Jolokia; all
read the busiest broker with the built-in rules. jmx_exporter's time is a whole scrape of its /metrics (it
reads JMX on every scrape); ours is one collection of the target plus the exposition it renders. Median of
--repeat after one warm-up each; the JVMs and this process share the machine's 2 cores.
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
from exporter.sources.jolokia import JolokiaSource
from realkafka.install import tool_jar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jmx import build
from kafka_throughput import tree_cpu_s

RULES = (Path(__file__).resolve().parent.parent / "exporter" / "rulesets" / "kafka-4x.yml").read_text()


# jmx_exporter version -> the install-realkafka profile holding its standalone server
JMX_EXPORTERS = {"0.20.0": "httpserver-0.20", "1.0.1": "tools"}


def jmx_exporter_times(url: str, repeat: int, profile: str) -> tuple[list[float], int]:
    port = free_port_block(1)
    with tempfile.TemporaryDirectory() as d:
        config = Path(d) / "config.yml"
        config.write_text(f"jmxUrl: {url}\n" + RULES)
        proc = subprocess.Popen(["java", "-Xmx512m", "-jar", str(tool_jar("jmx_prometheus_httpserver", profile)),
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


def our_times(source: JmxSource | JolokiaSource, repeat: int,
              jvms: dict[str, int]) -> tuple[list[float], int, dict[str, float]]:
    """Collection + exposition times, the samples, and where the CPU of the median collection went:
    this process (decoding, rules, rendering) and each JVM in jvms (name -> pid)."""
    rules = RuleSet.from_yaml(RULES, "kafka-4x.yml")
    worker = TargetWorker(Target("broker", "broker", source, "1"), rules,
                          lambda w: None, cluster="bench", target_labels=False)
    registry = CollectorRegistry(auto_describe=False)
    worker.collect_once()
    runs = []
    for _ in range(repeat):
        before = {name: tree_cpu_s(pid) for name, pid in jvms.items()}
        t, cpu = time.perf_counter(), time.process_time()
        worker.collect_once()
        text = b"".join(exposition([worker], registry))
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        runs.append((wall, {"this process": cpu, **{name: tree_cpu_s(pid) - before[name] for name, pid in jvms.items()}}))
    samples = sum(1 for line in text.decode().splitlines() if line.startswith("kafka_"))
    median = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    return [wall for wall, _ in runs], samples, {name: round(s, 2) for name, s in median[1].items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only-ours", action="store_true",
                    help="leave jmx_exporter out: our times and CPU breakdown, printed and not recorded")
    args = ap.parse_args()
    results = []
    for partitions in args.partitions:
        c = build(partitions)
        pub = JmxPublisher(c, base_port=free_port_block(8), jolokia_base_port=free_port_block(8))
        pub.start()
        times: dict[str, float] = {}
        samples: dict[str, int] = {}
        cpu: dict[str, dict[str, float]] = {}
        try:
            busiest = max(c.brokers.values(), key=lambda b: len(b.partitions))
            url = pub.urls()[busiest.name]
            for version, profile in ({} if args.only_ours else JMX_EXPORTERS).items():
                theirs, samples[f"jmx_exporter {version}"] = jmx_exporter_times(url, args.repeat, profile)
                times[f"jmx_exporter {version}"] = statistics.median(theirs)
            endpoint = {"the endpoint's JVM (publisher, Jolokia agent)": pub.jvm.process.pid}
            for over, source in (("jmx", JmxSource("broker", url, timeout_ms=120_000)),
                                 ("jolokia", JolokiaSource("broker", pub.jolokia_urls()[busiest.name], timeout_ms=120_000))):
                jvms = dict(endpoint)
                if over == "jmx":
                    jvms["the reading JVM (RMI client)"] = JmxReader.shared().jvm.process.pid
                mine, samples[f"kafka_jmx {over}"], cpu[f"kafka_jmx {over}"] = our_times(source, args.repeat, jvms)
                times[f"kafka_jmx {over}"] = statistics.median(mine)
        finally:
            pub.stop()
            JmxReader.stop_all()
        results.append({
            "partitions_in_cluster": partitions, "replicas_on_broker": len(busiest.partitions),
            "mbeans_on_broker": sum(1 for _ in busiest.mbeans.items()), "samples": samples,
            "median_s": {name: round(t, 3) for name, t in times.items()},
            # CPU seconds of our median collection, by process: over JMX the RMI round trips are the JVMs'
            "cpu_s": cpu,
            # how many times faster than each jmx_exporter, over each transport
            "speedup": {f"{over} vs {version}": round(times[f"jmx_exporter {version}"] / times[f"kafka_jmx {over}"], 1)
                        for version in JMX_EXPORTERS for over in ("jmx", "jolokia") if f"jmx_exporter {version}" in times},
        })
        print(json.dumps(results[-1]), flush=True)
    if args.only_ours:          # a partial run: printed, not recorded
        return
    out = Path(__file__).resolve().parent / "results-jmx-exporter.json"
    out.write_text(json.dumps({"command": "benchmarks/jmx_exporter_vs_serve.py " + " ".join(sys.argv[1:]),
                               "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
