"""The consumer-group collection at scale: groups over partitions of real Kafka on this machine, collected by
the exporter's reader, against the straightforward way (one group at a time: its offsets, its description,
its partitions' end offsets, each waited for) in the same run.

    .venv/bin/python benchmarks/lag_collection.py      # -> results-lag-collection.json
    .venv/bin/python benchmarks/lag_collection.py --topics 1000 --partitions 50 --groups 10000 --heap 1g \
        --out benchmarks/results-lag-collection-10k.json

Real Kafka 4.1 (1 controller, 3 brokers, from the Maven jars); by default 100 topics of 10 partitions (RF 1),
20 records each; group i committed offset 10 on every partition of topic i % topics, so every group lags on
every partition of its topic (10 groups per partition): the worst case for lag in seconds. The collection
runs as in the daemon (exporter/lag/worker.py: the reader in a child process, exporter/lag/isolated.py, the
snapshot sent back; then the status, the trends over the rate window and the series, with the daemon's
default cap of 100,000 series), 3 times (the first warms up the connections); RSS is the resident memory
of the daemon's side and of the reader's process after the collections, with librdkafka's buffers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer
from confluent_kafka import TopicPartition as CkTP
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

RECORDS, COMMITTED = 20, 10
# Kafka's controller refuses a request that makes more than 10,000 records (QuorumController's
# MAX_RECORDS_PER_USER_OP): topics are created in requests of at most this many partitions
PARTITIONS_PER_CREATE = 5000


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def setup(bootstrap: str, topics: int, partitions: int, groups: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"t{i:03d}" for i in range(topics)]
    per_request = max(1, PARTITIONS_PER_CREATE // partitions)
    for at in range(0, topics, per_request):
        for f in admin.create_topics([NewTopic(n, partitions, 1) for n in names[at:at + per_request]],
                                     request_timeout=300).values():
            f.result(300)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 2_000_000})
    # a partition the producer's metadata does not have yet fails its records: those are written again
    unwritten = [(name, part) for name in names for part in range(partitions)]
    for _ in range(30):
        refused: set[tuple[str, int]] = set()

        def delivered(err: object, msg: object, refused: set[tuple[str, int]] = refused) -> None:
            if err is not None:
                refused.add((msg.topic(), msg.partition()))     # type: ignore[attr-defined]
        for name, part in unwritten:
            for _r in range(RECORDS):
                p.produce(name, value=b"x" * 100, partition=part, on_delivery=delivered)
            p.poll(0)
        assert p.flush(300) == 0
        unwritten = sorted(refused)
        if not unwritten:
            break
        time.sleep(1.0)
    else:
        raise RuntimeError(f"{len(unwritten)} partitions could not be written")
    # a coordinator still loading its offsets partitions answers per partition, not with an exception
    pending = list(range(groups))
    for _ in range(30):
        failed = []
        for at in range(0, len(pending), 1000):
            futures = {g: admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
                f"g{g:04d}", [CkTP(names[g % topics], part, COMMITTED) for part in range(partitions)])])[f"g{g:04d}"]
                for g in pending[at:at + 1000]}
            for g, f in futures.items():
                try:
                    if any(tp.error is not None for tp in f.result(60).topic_partitions):
                        failed.append(g)
                except KafkaException:
                    failed.append(g)
        pending = failed
        if not pending:
            return
        time.sleep(1.0)
    raise RuntimeError(f"{len(pending)} groups could not commit their offsets")


def straightforward(bootstrap: str) -> tuple[float, int]:
    """One group at a time, each request waited for: what a first exporter does."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    started = time.monotonic()
    lags = 0
    groups = [g.group_id for g in admin.list_consumer_groups().result(60).valid]
    for gid in groups:
        admin.describe_consumer_groups([gid])[gid].result(60)
        committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)])[gid].result(60)
        ends = admin.list_offsets({CkTP(tp.topic, tp.partition): OffsetSpec.latest()
                                   for tp in committed.topic_partitions})
        for tp in committed.topic_partitions:
            end = ends[CkTP(tp.topic, tp.partition)].result(60).offset
            lags += max(0, end - tp.offset)
    return time.monotonic() - started, lags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kafka", default="4.1")
    ap.add_argument("--port", type=int, default=39092)
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=10, help="per topic")
    ap.add_argument("--groups", type=int, default=1000, help="group i commits on every partition of topic i %% topics")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--heap", default="256m", help="of each broker")
    ap.add_argument("--out", default=str(Path(__file__).with_name("results-lag-collection.json")))
    args = ap.parse_args()
    from exporter.lag.filters import Filter
    from exporter.lag.isolated import IsolatedReader
    from exporter.lag.trends import TrendTracker
    from exporter.lag.worker import LagWorker
    from realkafka.cluster import RealCluster
    with RealCluster(args.kafka, args.brokers, 1, jmx_base_port=args.port + 20, kafka_base_port=args.port,
                     config={"num.partitions": 1}, heap=args.heap) as cluster:
        bootstrap = cluster.bootstrap_servers()
        started = time.monotonic()
        setup(bootstrap, args.topics, args.partitions, args.groups)
        print(f"set up in {time.monotonic() - started:.0f} s", flush=True)
        rss_before = rss_mb()
        reader = IsolatedReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 30.0, True,
                                deadline_s=120.0)
        worker = LagWorker(reader, "bench", 30.0, 600.0)
        runs, trend_s = [], []
        for _ in range(3):
            started = time.monotonic()
            worker.collect_once()
            runs.append(time.monotonic() - started)
            print(f"collection {len(runs)}: {runs[-1]:.2f} s", flush=True)
            assert worker.snapshot is not None, worker.last_problem
            snap = worker.snapshot
            # the trends alone, on the same snapshot: what this part of the collection costs
            tracker = TrendTracker(300.0)
            t = time.monotonic()
            tracker.update(snap)
            trend_s.append(time.monotonic() - t)
        lagging = sum(1 for gid, g in snap.groups.items() for tp in g.committed if snap.lag(gid, tp))
        seconds = sum(1 for gid, g in snap.groups.items() for tp in g.committed if snap.lag_seconds(gid, tp))
        rss_after, rss_reader = rss_mb(), rss_mb(reader.pid or 0)
        worker.join(0.0)
        # what the baseline reads (no record timestamps): the like-for-like comparison
        offsets_only = IsolatedReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 30.0, False,
                                      deadline_s=120.0)
        plain_runs = []
        for _ in range(3):
            started = time.monotonic()
            offsets_only.read()
            plain_runs.append(time.monotonic() - started)
        offsets_only.close()
        baseline_s, baseline_lag = straightforward(bootstrap)
    total_lag = sum(snap.lag(gid, tp) or 0 for gid, g in snap.groups.items() for tp in g.committed)
    result = {
        "command": " ".join(["benchmarks/lag_collection.py", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cores, CPython {platform.python_version()}, {platform.machine()}",
        "kafka": args.kafka, "groups": len(snap.groups), "partitions": sum(snap.partitions.values()),
        "lagging_group_partitions": lagging, "with_lag_seconds": seconds, "errors": snap.errors,
        "collection_seconds": [round(r, 2) for r in runs], "collection_median_s": round(statistics.median(runs), 2),
        "trends_seconds": [round(r, 3) for r in trend_s], "series": worker.rendered.series if worker.rendered else 0,
        "series_over_the_cap": worker.rendered.dropped if worker.rendered else 0,
        "topics_with_retention_read": len(snap.retention),
        "rss_mb_daemon_before": round(rss_before, 1), "rss_mb_daemon_after": round(rss_after, 1),
        "rss_mb_reader_process": round(rss_reader, 1),
        "reader_without_lag_seconds": [round(r, 2) for r in plain_runs],
        "straightforward_seconds": round(baseline_s, 2),
        "speedup_like_for_like": round(baseline_s / statistics.median(plain_runs), 1),
        "same_total_lag": total_lag == baseline_lag,
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
