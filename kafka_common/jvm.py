"""Starting the helper JVM: py4j's gateway plus our Java helper, compiled with javac on first use.

The helper's sources live next to this file (java/kafkajmx/*.java); the compiled classes are cached
under $KAFKA_JMX_CACHE (default ~/.cache/kafka-jmx), keyed by a hash of the sources.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

JAVA_DIR = Path(__file__).parent / "java"
JOLOKIA_JARS = (Path("/usr/share/java/jolokia-core.jar"), Path("/usr/share/java/json-simple.jar"))
JOLOKIA_SOURCES = {"JolokiaEndpoint.java", "NodeDetector.java"}
# the JMX access file support is the JDK's own MBeanServerFileAccessController
EXPORTS = ["--add-exports", "java.management/com.sun.jmx.remote.security=ALL-UNNAMED"]


class JvmError(RuntimeError):
    """The JVM or its helper could not be started; the message says what to install or fix."""


def jolokia_available() -> bool:
    return all(p.exists() for p in JOLOKIA_JARS)


def _cache_root() -> Path:
    return Path(os.environ.get("KAFKA_JMX_CACHE", Path.home() / ".cache" / "kafka-jmx"))


def helper_classpath() -> list[str]:
    """Compile the helper if needed; the classpath entries to run it."""
    javac = shutil.which("javac")
    if javac is None:
        raise JvmError("javac not found: install a JDK (Debian: apt-get install openjdk-17-jdk-headless)")
    with_jolokia = jolokia_available()
    sources = sorted(p for p in (JAVA_DIR / "kafkajmx").glob("*.java")
                     if with_jolokia or p.name not in JOLOKIA_SOURCES)
    digest = hashlib.sha256()
    for p in sources:
        digest.update(p.name.encode() + p.read_bytes())
    digest.update(b"jolokia" if with_jolokia else b"")
    target = _cache_root() / f"classes-{digest.hexdigest()[:16]}"
    extra = [str(p) for p in JOLOKIA_JARS] if with_jolokia else []
    if not (target / "kafkajmx" / "Publisher.class").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(dir=target.parent, prefix="build-"))
        cmd = [javac, "-nowarn", "-XDignore.symbol.file", *EXPORTS, "-d", str(build)]
        if extra:
            cmd += ["-cp", os.pathsep.join(extra)]
        result = subprocess.run(cmd + [str(p) for p in sources], capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            raise JvmError(f"compiling the JMX helper failed:\n{result.stderr}")
        if with_jolokia:
            (build / "META-INF").mkdir(exist_ok=True)
            shutil.copy(JAVA_DIR / "META-INF" / "detectors", build / "META-INF" / "detectors")
        try:
            build.rename(target)
        except OSError:
            shutil.rmtree(build, ignore_errors=True)     # another process compiled it first
    return [str(target), *extra]


@dataclass
class Jvm:
    gateway: JavaGateway
    process: Any

    @property
    def jvm(self) -> Any:
        return self.gateway.jvm

    def stop(self) -> None:
        # a JVM with RMI exports does not exit on gateway shutdown (non-daemon RMI threads)
        try:
            self.gateway.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()


def start_jvm(javaopts: list[str] | None = None) -> Jvm:
    if shutil.which("java") is None:
        raise JvmError("java not found: install a JDK (Debian: apt-get install openjdk-17-jdk-headless)")
    classpath = os.pathsep.join(helper_classpath())
    opts = ["-XX:-UsePerfData", "-Xss512k", "-Djava.rmi.server.hostname=127.0.0.1", *EXPORTS, *(javaopts or [])]
    port, proc = launch_gateway(classpath=classpath, javaopts=opts, die_on_exit=True, return_proc=True)
    gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port, auto_convert=True))
    return Jvm(gateway, proc)
