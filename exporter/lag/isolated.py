"""The daemon's side of the lag reader's child process (exporter/lag/child.py): one collection per
request, a deadline on each, and a new child after one died."""
from __future__ import annotations

import logging
import select
import subprocess
import sys
from typing import Any

from exporter.lag.child import recv, send
from exporter.lag.model import Snapshot

log = logging.getLogger("kafka_jmx.lag")


class LagReadError(Exception):
    """A collection that gave nothing: the cluster did not answer, or the reader's process died."""


class IsolatedReader:
    def __init__(self, *reader_args: Any, deadline_s: float) -> None:
        self.args = reader_args          # KafkaReader's arguments
        self.deadline_s = deadline_s
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "exporter.lag.child"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        assert proc.stdin is not None
        send(proc.stdin, self.args)
        self._proc = proc
        return proc

    @property
    def pid(self) -> int | None:
        """The reader's process, while it runs (its memory is the collection's)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def read(self) -> Snapshot:
        if self._proc is not None and self._proc.poll() is not None:
            log.warning("%s", self._ended(self._proc))     # it died between collections
            self._proc = None
        proc = self._proc or self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            send(proc.stdin, b"read")
        except (BrokenPipeError, OSError) as error:
            self._proc = None
            raise LagReadError(self._ended(proc)) from error
        ready, _, _ = select.select([proc.stdout], [], [], self.deadline_s)
        if not ready:
            self.close()
            raise LagReadError(f"no answer within {self.deadline_s:.0f} s: the reader was stopped, a new one "
                               "starts with the next collection")
        answer = recv(proc.stdout)
        if answer is None:
            self._proc = None
            raise LagReadError(self._ended(proc))
        kind, payload = answer
        if kind == "error":
            raise LagReadError(str(payload))
        if not isinstance(payload, Snapshot):
            raise LagReadError(f"the lag reader's process answered {type(payload).__name__}, not a snapshot")
        return payload

    @staticmethod
    def _ended(proc: subprocess.Popen[bytes]) -> str:
        code = proc.wait(timeout=5)
        return (f"the Kafka client's process ended (exit {code}; librdkafka aborts on some broker failures, "
                "issue #4605): a new one starts with the next collection")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()       # the child's loop ends on end of input
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
