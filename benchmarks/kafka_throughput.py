"""One real client's produce and consume throughput against the embedded cluster's Kafka protocol
listeners and against real Apache Kafka on the same machine, in one run.

    .venv/bin/python benchmarks/kafka_throughput.py      # -> results-kafka-throughput.json

Each cluster runs as `kafka-jmx cluster run` in its own process tree (3 brokers; 1 controller; a topic of
6 partitions, RF 3, min ISR 2; no JMX), so its CPU is measured apart from the client's: the embedded
cluster's one Python process, real Kafka's four JVMs. The client is confluent-kafka (librdkafka):
acks=all, linger.ms 5, 1 KiB values; then one consumer reads them all back from the beginning.
Target (issue #13): the embedded cluster at least 20% of real Kafka's produce throughput, with the
wall-clock cluster under one core.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

SCENARIO = """cluster: {brokers: 3, controllers: 1}
topics:
  - {name: bench, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
"""
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (from /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def ready(bootstrap: str) -> bool:
    try:
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).topics
    except KafkaException:
        return False
    return "bench" in topics and all(p.leader >= 0 and len(p.isrs) == 3 for p in topics["bench"].partitions.values())


def measure(engine: str, port: int, records: int, warmup: int, scenario: Path) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "kafka_jmx", "cluster", "run", str(scenario), "--duration", "3600s",
                             "--engine", engine, "--kafka-base-port", str(port), "--no-jmx"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = ""
        while not line.startswith("bootstrap.servers="):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{engine}: `cluster run` ended before printing bootstrap.servers")
        bootstrap = line.strip().split("=", 1)[1]
        deadline = time.monotonic() + 180
        while not ready(bootstrap):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{engine}: topic bench not led with a full ISR within 180 s")
            time.sleep(1)
        value = os.urandom(1024)
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})

        def produce(n: int) -> None:
            for i in range(n):
                while True:
                    try:
                        p.produce("bench", key=str(i).encode(), value=value)
                        break
                    except BufferError:         # the client's queue is full: let it send
                        p.poll(0.01)
                p.poll(0)
            if p.flush(300) != 0:
                raise RuntimeError(f"{engine}: records left undelivered")
        produce(warmup)                         # the JVM's JIT and both sides' connections warm up first
        cpu0, t0 = tree_cpu_s(proc.pid), time.monotonic()
        produce(records)
        produce_s, produce_cpu = time.monotonic() - t0, tree_cpu_s(proc.pid) - cpu0
        records += warmup                       # the consumer reads everything back
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                      "fetch.max.bytes": 52428800})
        c.assign([TopicPartition("bench", i, 0) for i in range(6)])
        got, cpu1, t1 = 0, tree_cpu_s(proc.pid), time.monotonic()
        while got < records and time.monotonic() - t1 < 300:
            got += sum(1 for m in c.consume(1000, 1.0) if m.error() is None)
        consume_s, consume_cpu = time.monotonic() - t1, tree_cpu_s(proc.pid) - cpu1
        c.close()
        produced = records - warmup
        return {"engine": engine, "records": produced, "warmup_records": warmup, "consumed": got,
                "produce": {"seconds": round(produce_s, 2), "records_per_s": round(produced / produce_s),
                            "MB_per_s": round(produced * 1024 / 1e6 / produce_s, 2),
                            "cluster_cores": round(produce_cpu / produce_s, 2)},
                "consume": {"seconds": round(consume_s, 2), "records_per_s": round(got / consume_s),
                            "MB_per_s": round(got * 1024 / 1e6 / consume_s, 2),
                            "cluster_cores": round(consume_cpu / consume_s, 2)}}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=20000, help="records produced before the measured ones")
    ap.add_argument("--kafka", default="4.1", help="real Kafka line (default 4.1)")
    ap.add_argument("--port", type=int, default=29092)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results-kafka-throughput.json")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench.yaml"
        scenario.write_text(SCENARIO)
        embedded = measure("embedded", args.port, args.records, args.warmup, scenario)
        real = measure(f"kafka:{args.kafka}", args.port + 10, args.records, args.warmup, scenario)
    result = {
        "command": f"benchmarks/kafka_throughput.py --records {args.records} --warmup {args.warmup}",
        "machine": f"{os.cpu_count()} cores, CPython {platform.python_version()}, {platform.machine()}",
        "embedded": embedded, "real": real,
        "produce_ratio": round(embedded["produce"]["records_per_s"] / real["produce"]["records_per_s"], 3),
        "consume_ratio": round(embedded["consume"]["records_per_s"] / real["consume"]["records_per_s"], 3),
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
