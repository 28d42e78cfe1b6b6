"""The jmx source: any JVM's MBeans over JMX/RMI (a real Kafka, or the embedded cluster's endpoints).

One py4j call per collection: the helper JVM queries names and reads every bean's attributes;
CompositeData and TabularData come back as JSON and are flattened here as jmx_exporter does. The connection stays open between collections; when it breaks,
reconnection waits with exponential backoff (1 s doubling to 60 s); every call has a timeout.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from py4j.protocol import Py4JError, Py4JJavaError

from exporter.clock import SYSTEM, Clock
from exporter.sample import NO_VALUE, Collection, Sample, SourceError, Threads, flatten
from exporter.sources.names import split_object_name
from kafka_common.jvm import Jvm, start_jvm

BACKOFF_MS = (1_000.0, 60_000.0)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            out.append("\t" if n == "t" else "\n" if n == "n" else n)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def decode(tagged: str) -> Any:
    kind, rest = tagged[0], tagged[1:]
    if kind in "liy":
        return int(rest)
    if kind == "d":
        return float(rest)
    if kind in "st":
        return _unescape(rest)
    if kind == "b":
        return rest == "true"
    return NO_VALUE


class JmxReader:
    """The helper JVM that reads remote endpoints; one per process and trust store."""

    _lock = threading.Lock()
    _readers: ClassVar[dict[tuple[str | None, str | None], JmxReader]] = {}

    def __init__(self, truststore: str | None = None, truststore_password: str | None = None) -> None:
        opts = ["-Dsun.rmi.transport.connectionTimeout=5000"]
        if truststore:
            opts += [f"-Djavax.net.ssl.trustStore={truststore}",
                     f"-Djavax.net.ssl.trustStorePassword={truststore_password or ''}"]
        self.jvm: Jvm = start_jvm(opts)
        self.bulk = self.jvm.jvm.kafkajmx.BulkReader()

    @classmethod
    def shared(cls, truststore: str | None = None, truststore_password: str | None = None) -> JmxReader:
        with cls._lock:
            key = (truststore, truststore_password)
            reader = cls._readers.get(key)
            if reader is None or reader.jvm.process.poll() is not None:
                reader = cls._readers[key] = cls(truststore, truststore_password)
            return reader

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            for reader in cls._readers.values():
                reader.jvm.stop()
            cls._readers.clear()


def classify(error: Exception) -> str:
    text = str(error)
    if "Authentication failed" in text or "SecurityException" in text or "Invalid username or password" in text:
        return "auth"
    if "no answer within" in text or "TimeoutException" in text or "timed out" in text.lower():
        return "timeout"
    if "SSL" in text or "handshake" in text.lower() or "certificate" in text.lower():
        return "tls"
    if "Connection refused" in text or "ConnectException" in text or "No route" in text \
            or "Failed to retrieve RMIServer stub" in text or "NoSuchObjectException" in text:
        return "connect"
    return "protocol"


def _cause(error: Exception) -> str:
    """The Java exception's first line, without py4j's framing."""
    text = str(error.java_exception.toString()) if isinstance(error, Py4JJavaError) else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


class JmxSource:
    def __init__(self, name: str, url: str, username: str | None = None, password: str | None = None,
                 ssl: bool = False, truststore: str | None = None, truststore_password: str | None = None,
                 includes: Sequence[str] = (), excludes: Sequence[str] = (), timeout_ms: float = 10_000.0,
                 reader: JmxReader | None = None, clock: Clock = SYSTEM) -> None:
        if not url.startswith("service:jmx:"):
            raise SourceError("config", f"{name}: not a JMX service URL: {url!r} "
                                        "(expected service:jmx:rmi:///jndi/rmi://HOST:PORT/jmxrmi)")
        self.name = name
        self.url = url
        self.username = username
        self._password = password
        self.ssl = ssl
        self._truststore = (truststore, truststore_password)
        self.includes = "\n".join(includes)
        self.excludes = "\n".join(excludes)
        self.timeout_ms = timeout_ms
        self._reader = reader
        self.clock = clock
        self._conn: int | None = None
        self._next_attempt = 0.0
        self._backoff = 0.0
        self._last_error: SourceError | None = None
        self._names: dict[str, tuple[Any, ...]] = {}
        self.threads = False                # also read the threads' states (the JVM metrics want them)

    def _bulk(self) -> Any:
        if self._reader is None:
            self._reader = JmxReader.shared(*self._truststore)
        return self._reader.bulk

    def _fail(self, error: Exception, during: str) -> SourceError:
        kind = classify(error)
        self._backoff = min(BACKOFF_MS[1], self._backoff * 2 if self._backoff else BACKOFF_MS[0])
        self._next_attempt = self.clock.monotonic() * 1000.0 + self._backoff
        if self._conn is not None:
            try:
                self._bulk().close(self._conn)
            except Py4JError:
                pass
            self._conn = None
        cause = _cause(error)
        if self._password:
            cause = cause.replace(self._password, "***")
        hint = {"auth": " (check the JMX user and password)", "connect": " (is the JVM running with JMX on that port?)",
                "timeout": f" (no answer within {self.timeout_ms:.0f} ms)", "tls": " (check ssl and the trust store)"}
        self._last_error = SourceError(kind, f"{self.name}: {during} {self.url} failed: {cause}{hint.get(kind, '')}")
        return self._last_error

    def _connect(self) -> int:
        now = self.clock.monotonic() * 1000.0
        if self._conn is None:
            if now < self._next_attempt and self._last_error is not None:
                raise SourceError(self._last_error.kind,
                                  f"{self._last_error} - next attempt in {(self._next_attempt - now) / 1000:.1f} s")
            try:
                self._conn = self._bulk().connect(self.url, self.username, self._password, self.ssl,
                                                  int(self.timeout_ms))
            except (Py4JError, OSError) as e:
                raise self._fail(e, "connecting to") from None
        return self._conn

    def read(self) -> Collection:
        conn = self._connect()
        try:
            text = self._bulk().read(conn, self.includes, self.excludes, self.threads, int(self.timeout_ms))
        except (Py4JError, OSError) as e:
            raise self._fail(e, "reading") from None
        self._backoff = 0.0
        self._last_error = None
        return self._parse(text)

    def describe(self) -> list[tuple[str, str, str]]:
        """(ObjectName, attribute, declared Java type) of every readable attribute of the included
        beans, from MBeanInfo: what a JVM offers, whatever the values."""
        conn = self._connect()
        try:
            text = self._bulk().describe(conn, self.includes, int(self.timeout_ms))
        except (Py4JError, OSError) as e:
            raise self._fail(e, "describing") from None
        rows = [tuple(_unescape(f) for f in line.split("\t")) for line in text.splitlines()]
        return [(name, attr, kind) for name, attr, kind in rows]

    def _parse(self, text: str) -> Collection:
        ts = self.clock.time() * 1000.0
        samples: list[Sample] = []
        skipped: dict[str, int] = {}
        states: dict[str, int] = {}
        deadlocks: dict[str, int] = {}
        names = self._names
        for line in text.splitlines():
            f = line.split("\t")
            if f[0] == "S":
                on = f[1]
                split = names.get(on)
                if split is None:
                    split = names[on] = split_object_name(_unescape(on))
                if f[3][:1] == "j":        # CompositeData or TabularData, as JSON
                    flatten(samples, skipped, split[0], split[1], _unescape(f[2]), json.loads(_unescape(f[3][1:])), ts)
                    continue
                samples.append(Sample(split[0], split[1], (), _unescape(f[2]), decode(f[3]), ts))
            elif f[0] == "E":
                skipped[_unescape(f[1])] = int(f[2])
            elif f[0] == "T":
                states[f[1]] = int(f[2])
            elif f[0] == "D":
                deadlocks[f[1]] = int(f[2])
        if len(names) > 4 * max(1, len(samples)):
            names.clear()
        threads = Threads(states, deadlocks.get("findDeadlockedThreads", 0),
                          deadlocks.get("findMonitorDeadlockedThreads", 0)) if states else None
        return Collection(samples, skipped, threads)

    def close(self) -> None:
        if self._conn is not None and self._reader is not None:
            try:
                self._reader.bulk.close(self._conn)
            except Py4JError:
                pass
            self._conn = None
