"""Publish the embedded cluster over real JMX: one JMX endpoint per node, as each Kafka process has.

    publisher = JmxPublisher(cluster, base_port=9990)
    publisher.start()            # node i listens on base_port + i (controllers first, then brokers)
    publisher.urls()             # {"controller-1001": "service:jmx:rmi:///jndi/rmi://127.0.0.1:9990/jmxrmi", ...}

Every refresh_ms the registries of all nodes are sent to the JVM in one py4j call per node (only
beans whose values changed); a dead node's endpoint is closed and reopened when it restarts.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from broker.cluster import Cluster
from broker.mbeans.yammer import DOUBLE, INT, LONG, STRING, TIME_UNIT
from kafka_common.jvm import Jvm, JvmError, start_jvm

BYTE = "java.lang.Byte"
CLASS_NAMES = {
    "gauge": "com.yammer.metrics.reporting.JmxReporter$Gauge",
    "meter": "com.yammer.metrics.reporting.JmxReporter$Meter",
    "histogram": "com.yammer.metrics.reporting.JmxReporter$Histogram",
    "timer": "com.yammer.metrics.reporting.JmxReporter$Timer",
    "kafka-metrics": "org.apache.kafka.common.metrics.JmxReporter$KafkaMbean",
    "standard": "org.apache.kafka.common.utils.AppInfoParser$AppInfo",
}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


# What MBeanInfo declares, which is not always the class of the value: Yammer's JmxReporter
# interfaces declare `Object getValue()`, `long getCount()`, `double getMeanRate()`...; Kafka's
# KafkaMbean declares every attribute `double`
_PRIMITIVE = {LONG: "long", DOUBLE: "double"}


def declared(kind: str, java_type: str) -> str:
    if kind == "gauge":
        return "java.lang.Object"
    if kind in ("meter", "histogram", "timer", "kafka-metrics"):
        return _PRIMITIVE.get(java_type, java_type)
    return java_type


def tag(value: Any, java_type: str) -> str:
    """A value in the helper's tagged form, as the Java type Kafka would return."""
    if value is None:
        return "n"
    if isinstance(value, bool):
        return "btrue" if value else "bfalse"
    if isinstance(value, str):
        return ("t" if java_type == TIME_UNIT else "s") + escape(value)
    if isinstance(value, int) and java_type != DOUBLE:
        return {LONG: "l", INT: "i", BYTE: "y"}.get(java_type, "l") + str(value)
    v = float(value)
    if math.isnan(v):
        return "dNaN"
    if math.isinf(v):
        return "dInfinity" if v > 0 else "d-Infinity"
    return "d" + repr(v)


@dataclass(frozen=True)
class JmxAuth:
    """JMX authentication as KAFKA_JMX_OPTS sets it: the JDK's password and access file formats."""
    password_file: str
    access_file: str


@dataclass(frozen=True)
class JmxTls:
    keystore: str
    keystore_password: str


class _NodeState:
    def __init__(self) -> None:
        self.defined: dict[str, tuple[str, ...]] = {}       # ObjectName -> attribute names
        self.types: dict[str, tuple[str, ...]] = {}         # ObjectName -> their Java types
        self.values: dict[str, tuple] = {}
        self.registry_id = 0
        self.running = False


class JmxPublisher:
    def __init__(self, cluster: Cluster, base_port: int = 9990, host: str = "127.0.0.1",
                 refresh_ms: float = 1000.0, auth: JmxAuth | None = None, tls: JmxTls | None = None,
                 jolokia_base_port: int | None = None, jolokia_auth: tuple[str, str] | None = None) -> None:
        self.cluster = cluster
        self.base_port = base_port
        self.host = host
        self.refresh_ms = refresh_ms
        self.auth = auth
        self.tls = tls
        self.jolokia_base_port = jolokia_base_port
        self.jolokia_auth = jolokia_auth
        self.jvm: Jvm | None = None
        self._nodes: dict[str, Any] = {}
        self._state: dict[str, _NodeState] = {}
        self._jolokia: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_refresh_wall_ms = 0.0
        self.errors: list[str] = []

    def ports(self) -> dict[str, int]:
        return {name: self.base_port + i for i, name in enumerate(self.cluster.node_names())}

    def urls(self) -> dict[str, str]:
        return {name: f"service:jmx:rmi:///jndi/rmi://{self.host}:{port}/jmxrmi" for name, port in self.ports().items()}

    def jolokia_urls(self) -> dict[str, str]:
        return dict(self._jolokia)

    def start(self, background: bool = False) -> None:
        """Start the JVM and one endpoint per node; background=True refreshes every refresh_ms."""
        self.jvm = start_jvm()
        publisher = self.jvm.jvm.kafkajmx.Publisher()
        self._publisher = publisher
        for name, port in self.ports().items():
            try:
                self._nodes[name] = publisher.addNode(
                    name, self.host, port, self.auth.password_file if self.auth else None,
                    self.auth.access_file if self.auth else None, self.tls.keystore if self.tls else None,
                    self.tls.keystore_password if self.tls else None)
            except Exception as e:  # py4j wraps the Java exception; its message names the cause
                self.stop()
                raise JvmError(f"cannot publish {name} on {self.host}:{port}: {e}") from None
            self._state[name] = _NodeState()
            if self.jolokia_base_port is not None:
                user, password = self.jolokia_auth or (None, None)
                self._jolokia[name] = publisher.startJolokia(name, self.host, self.jolokia_base_port + len(self._jolokia),
                                                             user, password)
        self.refresh()
        if background:
            self._thread = threading.Thread(target=self._loop, name="jmx-publisher", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_ms / 1000.0):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.jvm is not None:
            self.jvm.stop()
            self.jvm = None

    def refresh(self) -> None:
        """Send every node's current MBeans to its endpoint (one py4j call per node)."""
        started = time.perf_counter()
        for name, node in self.cluster.servers.items():
            state = self._state[name]
            endpoint = self._nodes[name]
            with self.cluster.sched.lock:
                alive = node.alive
                payload = self._payload(node, state) if alive else ""
            if not alive:
                if state.running:
                    endpoint.stop()
                    endpoint.apply("".join(f"X\t{escape(on)}\n" for on in state.defined))
                    self._state[name] = _NodeState()
                continue
            result = endpoint.apply(payload) if payload else "0 0 0 0\n"
            counts, _, first_error = result.partition("\n")
            if counts.split()[-1] != "0":
                self.errors.append(f"{name}: {first_error}")
            if not state.running:
                endpoint.start()
                state.running = True
        self.last_refresh_wall_ms = (time.perf_counter() - started) * 1000.0

    def _payload(self, node: Any, state: _NodeState) -> str:
        registry = node.mbeans
        lines: list[str] = []
        if id(registry) != state.registry_id:
            # a restarted process: its MBeans start afresh
            lines.extend(f"X\t{escape(on)}\n" for on in state.defined)
            state.defined, state.types, state.values, state.registry_id = {}, {}, {}, id(registry)
        now = node.now()
        seen = set()
        for name, bean in registry.items():
            on = name.text
            seen.add(on)
            values = bean.read(now)
            attrs = tuple(values)
            if state.defined.get(on) != attrs:
                types = bean.types()
                state.types[on] = tuple(types.get(a, STRING) for a in attrs)
                lines.append(f"D\t{escape(on)}\t{CLASS_NAMES[bean.kind]}\t"
                             + "\t".join(f"{escape(a)}={declared(bean.kind, t)}" for a, t in zip(attrs, state.types[on]))
                             + "\n")
                state.defined[on] = attrs
                state.values.pop(on, None)
            snapshot = tuple(values.values())
            if state.values.get(on) != snapshot:      # NaN never equals itself: such beans are resent
                lines.append(f"V\t{escape(on)}\t" + "\t".join(map(tag, snapshot, state.types[on])) + "\n")
                state.values[on] = snapshot
        for on in [on for on in state.defined if on not in seen]:
            lines.append(f"X\t{escape(on)}\n")
            del state.defined[on]
            state.values.pop(on, None)
        return "".join(lines)
