"""Which Kafka protocol codec the embedded brokers use: kio against kafka-python, on the broker's
hot paths, in one process on the same bytes.

    .venv/bin/pip install kafka-python==3.0.12      # the candidate measured against (not a dependency)
    .venv/bin/python benchmarks/kafka_codecs.py      # -> results-kafka-codecs.json

Both are generated from Kafka's message schemas. Measured: decoding a Produce v9 request (5 topics x
6 partitions, 300 KB of record batches: what a broker reads most), encoding it back (byte-identical
in both), and the API versions each has for the APIs a broker serves.
"""
from __future__ import annotations

import datetime
import io
import json
import platform
import timeit
from pathlib import Path

from kio.index import api_key_map, schema_name_map
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32, i32Timedelta

N = 2000


def main() -> None:
    from kafka import __version__ as kafka_python_version
    from kafka.protocol.producer import ProduceRequest as KafkaPythonProduce
    from kio._version import __version__ as kio_version
    records = bytes(range(256)) * 40
    request = ProduceRequest(
        transactional_id=None, acks=i16(-1), timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
        topic_data=tuple(TopicProduceData(name=TopicName(f"t{t}"), partition_data=tuple(
            PartitionProduceData(index=i32(p), records=records) for p in range(6))) for t in range(5)))
    out = io.BytesIO()
    entity_writer(ProduceRequest)(out, request)
    data = out.getvalue()
    read, write = entity_reader(ProduceRequest), entity_writer(ProduceRequest)
    other = KafkaPythonProduce[9].decode(data)
    assert other.encode() == data and read(memoryview(data), 0)[0] == request

    def kio_encode() -> bytes:
        buf = io.BytesIO()
        write(buf, request)
        return buf.getvalue()
    timings = {
        "decode_produce_v9": {"kio": timeit.timeit(lambda: read(memoryview(data), 0), number=N) / N,
                              "kafka_python": timeit.timeit(lambda: KafkaPythonProduce[9].decode(data), number=N) / N},
        "encode_produce_v9": {"kio": timeit.timeit(kio_encode, number=N) / N,
                              "kafka_python": timeit.timeit(other.encode, number=N) / N},
    }
    result = {
        "machine": f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}",
        "command": ".venv/bin/python benchmarks/kafka_codecs.py",
        "versions": {"kio": kio_version, "kafka_python": kafka_python_version},
        "request_bytes": len(data),
        "per_call_us": {k: {lib: round(v * 1e6, 1) for lib, v in t.items()} for k, t in timings.items()},
        "kio_speedup": {k: round(t["kafka_python"] / t["kio"], 2) for k, t in timings.items()},
        "kio_api_versions": {api_key_map[k]: [min(schema_name_map[api_key_map[k]]), max(schema_name_map[api_key_map[k]])]
                             for k in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 32, 60, 68, 69)},
    }
    Path(__file__).with_name("results-kafka-codecs.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
