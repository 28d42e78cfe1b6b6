"""A real KRaft cluster on 127.0.0.1: controller, broker and combined JVMs from the Maven jars.

    with RealCluster("4.1", brokers=3, controllers=3, jmx_base_port=9990, kafka_base_port=9092) as c:
        c.kill("broker-2"); c.restart("broker-2"); c.pause("controller-1001")

Nodes and ports follow the embedded engine: controllers controller-1001.. (node.id 1001..), combined
nodes combined-1.. (process.roles=broker,controller, node.id 1..), then brokers broker-N.. (node.id
after the combined ones); JMX on jmx_base_port in that order (Jolokia's agent, when asked, on
jolokia_base_port in the same order); the client listeners of the nodes with the broker role on
kafka_base_port + node.id - 1; the quorum listeners (controllers', combined nodes') right after them.
The quorum is static (controller.quorum.voters). State lives in a private temporary folder; every
process is ours and is stopped by its PID.
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka_common.roles import BROKER, COMBINED, CONTROLLER, PROCESS_ROLES, is_broker, is_controller
from realkafka.install import classpath, exact_version, line_of, tool_jar

HERE = Path(__file__).resolve().parent
STARTED = ("Kafka Server started", "Transitioning from RECOVERY to RUNNING")


class RealKafkaError(RuntimeError):
    pass


@dataclass
class Node:
    name: str
    role: str                     # broker | controller | combined
    node_id: int
    jmx_port: int
    port: int                     # the client listener; a controller's quorum listener
    jolokia_port: int | None
    dir: Path
    quorum_port: int | None = None     # a controller's or combined node's CONTROLLER listener
    process: subprocess.Popen | None = None
    paused: bool = False
    log: Any = field(default=None, repr=False)
    log_offset: int = 0           # where server.log stood at the last launch

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def jmx_url(self) -> str:
        return f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{self.jmx_port}/jmxrmi"


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (Uuid.randomUuid).

    Like Kafka, never one that starts with '-': a command line reads it as an option (format failed in CI)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


TLS_PASSWORD = "kafka-jmx-test"        # the test cluster's own key stores, made at its start


class RealCluster:
    def __init__(self, version: str = "4.1", brokers: int = 3, controllers: int = 3, jmx_base_port: int = 9990,
                 kafka_base_port: int = 9092, jolokia_base_port: int | None = None,
                 config: dict[str, Any] | None = None, heap: str = "256m", workdir: str | None = None,
                 sasl_base_port: int | None = None, sasl_users: dict[str, str] | None = None,
                 tls_base_port: int | None = None, jolokia_options: str = "", combined: int = 0) -> None:
        """sasl_base_port: each broker also listens there (+1, ...) for SASL_PLAINTEXT clients, with
        PLAIN and SCRAM-SHA-256/512 for sasl_users (user -> password). tls_base_port: and there for SSL
        clients, with a certificate for 127.0.0.1 from a CA made for this cluster (tls_ca: its PEM file).
        jolokia_options: more options of the Jolokia agent (",user=U,password=P,policyLocation=file:///F")."""
        self.line = line_of(version)
        self.version = exact_version(self.line)
        self.cp = classpath(self.line)
        self.config = dict(config or {})
        self.heap = heap
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"realkafka-{self.line}-"))
        self.cluster_id = random_cluster_id()
        java = shutil.which("java")
        if java is None:
            raise RealKafkaError("java not found: install a JDK 17 (Debian: openjdk-17-jdk-headless)")
        self.java = java
        self.nodes: dict[str, Node] = {}
        names = [(f"controller-{1000 + i}", CONTROLLER, 1000 + i) for i in range(1, controllers + 1)] + \
                [(f"combined-{i}", COMBINED, i) for i in range(1, combined + 1)] + \
                [(f"broker-{i}", BROKER, i) for i in range(combined + 1, combined + brokers + 1)]
        serving = combined + brokers
        for index, (name, role, node_id) in enumerate(names):
            quorum = kafka_base_port + serving + (node_id - 1 if role == COMBINED else combined + node_id - 1001)
            port = kafka_base_port + node_id - 1 if is_broker(role) else quorum
            self.nodes[name] = Node(name, role, node_id, jmx_base_port + index, port,
                                    None if jolokia_base_port is None else jolokia_base_port + index,
                                    self.dir / name, quorum if is_controller(role) else None)
        self.brokers = serving
        self.sasl_base_port, self.sasl_users = sasl_base_port, dict(sasl_users or {})
        self.tls_base_port = tls_base_port
        self.tls_ca = self.dir / "tls" / "ca.pem"
        self.jolokia_options = jolokia_options

    # -- what callers read ------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return list(self.nodes)

    def urls(self) -> dict[str, str]:
        return {n.name: n.jmx_url for n in self.nodes.values()}

    def jolokia_urls(self) -> dict[str, str]:
        return {n.name: f"http://127.0.0.1:{n.jolokia_port}/jolokia/" for n in self.nodes.values()
                if n.jolokia_port is not None}

    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values() if is_broker(n.role))

    def tls_bootstrap_servers(self) -> str:
        if self.tls_base_port is None:
            raise RealKafkaError("this cluster has no TLS listener (tls_base_port)")
        return ",".join(f"127.0.0.1:{self.tls_base_port + n.node_id - 1}" for n in self.nodes.values()
                        if is_broker(n.role))

    def _make_certificates(self) -> None:
        """A CA and one broker key pair signed by it for IP 127.0.0.1, with the JDK's keytool (no openssl
        needed): the brokers read broker.p12, clients trust ca.pem."""
        d = self.tls_ca.parent
        d.mkdir(parents=True, exist_ok=True)
        keytool = str(Path(self.java).resolve().parent / "keytool")
        store = ["-storepass", TLS_PASSWORD, "-storetype", "PKCS12"]
        steps = [
            ["-genkeypair", "-alias", "ca", "-keystore", "ca.p12", *store, "-dname", "CN=kafka-jmx test CA",
             "-keyalg", "RSA", "-validity", "2", "-ext", "bc:c"],
            ["-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", *store, "-file", "ca.pem"],
            ["-genkeypair", "-alias", "broker", "-keystore", "broker.p12", *store, "-dname", "CN=127.0.0.1",
             "-keyalg", "RSA", "-validity", "2"],
            ["-certreq", "-alias", "broker", "-keystore", "broker.p12", *store, "-file", "broker.csr"],
            ["-gencert", "-alias", "ca", "-keystore", "ca.p12", *store, "-infile", "broker.csr", "-outfile",
             "broker.cer", "-rfc", "-validity", "2", "-ext", "SAN=ip:127.0.0.1"],
            ["-importcert", "-alias", "ca", "-keystore", "broker.p12", *store, "-file", "ca.pem", "-noprompt"],
            ["-importcert", "-alias", "broker", "-keystore", "broker.p12", *store, "-file", "broker.cer"],
        ]
        for step in steps:
            done = subprocess.run([keytool, *step], cwd=d, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RealKafkaError(f"keytool {step[0]} failed: {(done.stderr or done.stdout).strip()[-300:]}")

    def sasl_bootstrap_servers(self) -> str:
        if self.sasl_base_port is None:
            raise RealKafkaError("this cluster has no SASL listener (sasl_base_port)")
        return ",".join(f"127.0.0.1:{self.sasl_base_port + n.node_id - 1}" for n in self.nodes.values()
                        if is_broker(n.role))

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _properties(self, node: Node) -> dict[str, Any]:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.quorum_port}" for n in self.nodes.values() if is_controller(n.role))
        rf = min(3, self.brokers)
        props: dict[str, Any] = {
            "process.roles": PROCESS_ROLES[node.role], "node.id": node.node_id, "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER", "log.dirs": str(node.dir / "data"),
        }
        if node.role == CONTROLLER:
            props.update({"listeners": f"CONTROLLER://127.0.0.1:{node.port}",
                          "listener.security.protocol.map": "CONTROLLER:PLAINTEXT"})
        else:
            quorum = f",CONTROLLER://127.0.0.1:{node.quorum_port}" if node.role == COMBINED else ""
            props.update({
                "listeners": f"PLAINTEXT://127.0.0.1:{node.port}{quorum}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
                "offsets.topic.replication.factor": rf, "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": min(2, rf), "share.coordinator.state.topic.replication.factor": rf,
                "group.initial.rebalance.delay.ms": 0,
            })
            if self.tls_base_port is not None:
                tls = f"SSL://127.0.0.1:{self.tls_base_port + node.node_id - 1}"
                props.update({
                    "listeners": f"{props['listeners']},{tls}",
                    "advertised.listeners": f"{props['advertised.listeners']},{tls}",
                    "listener.security.protocol.map": props["listener.security.protocol.map"] + ",SSL:SSL",
                    "ssl.keystore.location": str(self.tls_ca.parent / "broker.p12"), "ssl.keystore.type": "PKCS12",
                    "ssl.keystore.password": TLS_PASSWORD, "ssl.key.password": TLS_PASSWORD,
                })
            if self.sasl_base_port is not None:
                sasl = f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_base_port + node.node_id - 1}"
                users = " ".join(f'user_{u}="{pw}"' for u, pw in self.sasl_users.items())
                props.update({
                    "listeners": f"{props['listeners']},{sasl}",
                    "advertised.listeners": f"{props['advertised.listeners']},{sasl}",
                    "listener.security.protocol.map": props["listener.security.protocol.map"]
                    + ",SASL_PLAINTEXT:SASL_PLAINTEXT",
                    "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                    "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                        f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
                    **{f"listener.name.sasl_plaintext.{m.lower()}.sasl.jaas.config":
                       "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                       for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")},
                })
        props.update(self.config)
        return props

    def _write_config(self, node: Node) -> Path:
        node.dir.mkdir(parents=True, exist_ok=True)
        path = node.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self._properties(node).items()), encoding="utf-8")
        return path

    def _format_all(self) -> None:
        """kafka-storage format on every node, as many at once as there are cores (each is a JVM start:
        one after the other they took 20 to 40 s of a six-node cluster's start on two cores)."""
        nodes = list(self.nodes.values())
        width = max(1, os.cpu_count() or 1)
        for i in range(0, len(nodes), width):
            running = [(node, self._format(node, self._write_config(node))) for node in nodes[i:i + width]]
            for node, proc in running:
                out, _ = proc.communicate(timeout=120)
                if proc.returncode != 0:
                    raise RealKafkaError(f"{node.name}: kafka-storage format failed: {out.strip().splitlines()[-1:]}")

    def _format(self, node: Node, config: Path) -> subprocess.Popen:
        cmd = [self.java, "-Xmx128m", f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}", "-cp", self.cp,
               "kafka.tools.StorageTool", "format", "--cluster-id", self.cluster_id, "--config", str(config)]
        for user, password in self.sasl_users.items():        # SCRAM credentials live in the metadata log
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                cmd += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True)

    def _launch(self, node: Node) -> None:
        opts = [f"-Xmx{self.heap}", "-Xms64m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
                "-Dcom.sun.management.jmxremote", f"-Dcom.sun.management.jmxremote.port={node.jmx_port}",
                f"-Dcom.sun.management.jmxremote.rmi.port={node.jmx_port}",
                "-Dcom.sun.management.jmxremote.host=127.0.0.1", "-Djava.rmi.server.hostname=127.0.0.1",
                "-Dcom.sun.management.jmxremote.authenticate=false", "-Dcom.sun.management.jmxremote.ssl=false",
                "-Dcom.sun.management.jmxremote.local.only=true"]
        if node.jolokia_port is not None:
            opts.append(f"-javaagent:{tool_jar('jolokia-agent-jvm')}=host=127.0.0.1,port={node.jolokia_port}"
                        + self.jolokia_options)
        node.log = open(node.dir / "server.log", "ab")
        node.process = subprocess.Popen([self.java, *opts, "-cp", self.cp, "kafka.Kafka", str(node.dir / "server.properties")],
                                        stdout=node.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        node.paused = False

    def start(self, timeout_s: float = 180.0) -> RealCluster:
        if self.tls_base_port is not None:
            self._make_certificates()
        self._format_all()
        for node in self.nodes.values():
            self._launch(node)
        self.wait_started(list(self.nodes), timeout_s)
        return self

    def wait_started(self, names: list[str], timeout_s: float = 180.0) -> None:
        """Until every named node logged that it started (its log is read from the last launch)."""
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        marks = {n: self.nodes[n].log_offset for n in names}
        while pending:
            for name in list(pending):
                node = self.nodes[name]
                if not node.alive:
                    raise RealKafkaError(f"{name} exited with {node.process.returncode if node.process else '?'}: "
                                         f"{self.log_tail(name)}")
                text = (node.dir / "server.log").read_bytes()[marks[name]:].decode("utf-8", "replace")
                if any(s in text for s in STARTED):
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise RealKafkaError(f"not started within {timeout_s:.0f} s: {', '.join(sorted(pending))}")
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.nodes[name].dir / "server.log"
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    # -- faults ------------------------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL: the process is gone at once, its ports refuse connections."""
        node = self._node(name)
        if node.process is not None and node.alive:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(30)
        node.paused = False

    def restart(self, name: str, wait: bool = True) -> None:
        """Start a killed node again on its own data, as after a crash."""
        node = self._node(name)
        if node.alive:
            raise RealKafkaError(f"{name} is running; kill it first")
        node.log_offset = (node.dir / "server.log").stat().st_size
        self._launch(node)
        if wait:
            self.wait_started([name])

    def pause(self, name: str) -> None:
        """SIGSTOP: a hung JVM. Its sockets stay open and nothing answers, JMX included."""
        node = self._node(name)
        if node.process is not None and node.alive and not node.paused:
            os.killpg(node.process.pid, signal.SIGSTOP)
            node.paused = True

    def resume(self, name: str) -> None:
        node = self._node(name)
        if node.process is not None and node.alive and node.paused:
            os.killpg(node.process.pid, signal.SIGCONT)
        node.paused = False

    def _node(self, name: str) -> Node:
        if name not in self.nodes:
            raise RealKafkaError(f"unknown node {name!r} (nodes: {', '.join(self.nodes)})")
        return self.nodes[name]

    def stop(self) -> None:
        """Every process of ours, by PID. SIGKILL: the state is thrown away with the folder, so a
        graceful shutdown (brokers waiting on controllers that are stopping too) buys nothing."""
        for node in self.nodes.values():
            if node.process is not None and node.alive:
                os.killpg(node.process.pid, signal.SIGKILL)
        for node in self.nodes.values():
            if node.process is not None:
                node.process.wait(30)
            if node.log is not None:
                node.log.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RealCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
