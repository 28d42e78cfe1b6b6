"""The cost of one OTLP push (exporter/otlp.py) against reading the same exposition with prometheus_client's
parser (the baseline, same process): an exposition of N series from `nodes` nodes, read into points, built
into an ExportMetricsServiceRequest, serialized and gzipped. Prints JSON."""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time

from prometheus_client.parser import text_string_to_metric_families

from exporter.otlp import points, request


def exposition(series: int, nodes: int) -> str:
    """A broker-shaped exposition: per-partition gauges and counters under a node's four labels."""
    lines = []
    per_node = series // nodes // 2
    for kind in ("gauge", "counter"):
        name = "kafka_log_log_size" if kind == "gauge" else "kafka_server_brokertopicmetrics_bytesin_total"
        lines += [f"# HELP {name} Attribute exposed for management", f"# TYPE {name} {kind}"]
        for n in range(nodes):
            for i in range(per_node):
                lines.append(f'{name}{{cluster="prod",node="broker-{n}",node_id="{n}",partition="{i % 50}",'
                             f'role="broker",topic="topic-{i // 50}"}} {i * 1.5}')
    return "\n".join(lines) + "\n"


def timed(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, nargs="+", default=[18_000, 106_000])
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = []
    for n in args.series:
        text = exposition(n, args.nodes)
        baseline = timed(lambda: [s for f in text_string_to_metric_families(text) for s in f.samples], args.repeats)
        parse = timed(lambda: points(text), args.repeats)
        current = points(text)
        build = timed(lambda: request(current, [], time.time_ns(), 0, "bench"), args.repeats)
        req = request(current, [], time.time_ns(), 0, "bench")
        encode = timed(lambda: gzip.compress(req.SerializeToString(), compresslevel=1), args.repeats)
        out.append({"series": len(current), "prometheus_client_parse_s": round(baseline, 3), "parse_s": round(parse, 3),
                    "parse_vs_baseline": round(baseline / parse, 1), "build_s": round(build, 3),
                    "encode_gzip_s": round(encode, 3), "push_total_s": round(parse + build + encode, 3),
                    "body_bytes": len(gzip.compress(req.SerializeToString(), compresslevel=1))})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
