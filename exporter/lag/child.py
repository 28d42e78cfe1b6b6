"""The lag reader in a process of its own. librdkafka's admin client can abort the process it runs in
(an assertion in rd_kafka_enq_once_del_source_return when a broker goes away while admin requests
wait: librdkafka issue #4605, open): in this child that ends the child only, and the daemon starts
another for its next collection, while its JMX targets and /metrics go on.

Frames on stdin/stdout: a 4-byte length, then a pickle. The first frame in is the reader's arguments
(the client settings hold secrets: never on the command line); then each b"read" is answered with
("ok", Snapshot) or ("error", message)."""
from __future__ import annotations

import pickle
import struct
import sys
from typing import IO, Any


def send(out: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj)
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()


def recv(inp: IO[bytes]) -> Any:
    head = inp.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return pickle.loads(inp.read(size))


def main() -> None:
    from confluent_kafka import KafkaException

    from exporter.lag.reader import KafkaReader
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr          # the frames own stdout
    reader = KafkaReader(*recv(inp))
    try:
        while recv(inp) is not None:
            try:
                send(out, ("ok", reader.read()))
            except KafkaException as e:
                send(out, ("error", e.args[0].str() if e.args else str(e)))
            except Exception as e:  # an unexpected answer: the parent reports it, the child serves on
                send(out, ("error", f"{type(e).__name__}: {e}"))
    finally:
        reader.close()


if __name__ == "__main__":
    main()
