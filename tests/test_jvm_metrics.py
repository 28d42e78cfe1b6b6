"""The JVM and process metrics `serve` makes of a JVM target, held to jmx_exporter's own Java agent in the
same JVM: the agent of 1.0.1 (client_java 1.x names) and of 0.20.0 (0.x names) each serve their JVM's
metrics while `serve` reads the same JVM over JMX and through Jolokia; every name, type and label set
of the agent's must be served (but the two only code inside the JVM can know), with the same values
where they cannot move between the two reads."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from conftest import wait
from jvm_support import free_port_block, require_jdk, unavailable
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import Target, TargetWorker
from exporter.config import load_config
from exporter.jvm import JvmView
from exporter.rules import RuleSet
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource

# known only inside the JVM: a GC notification listener, and /proc of the JVM's own process
INSIDE_ONLY = {"jvm_memory_pool_allocated_bytes_total", "jvm_memory_pool_allocated_bytes_created",
               "process_resident_memory_bytes"}
BLOCKED = frozenset({("state", "BLOCKED")})
IDLE = """public class Idle {
    static java.nio.ByteBuffer direct;

    public static void main(String[] args) throws Exception {
        direct = java.nio.ByteBuffer.allocateDirect(1 << 20);
        Object lock = new Object();
        Thread blocked = new Thread(() -> { synchronized (lock) { } }, "blocked");
        synchronized (lock) { blocked.start(); Thread.sleep(3_600_000); }
    }
}
"""


def agent_jar(version: str) -> Path:
    from realkafka.install import NotInstalled, tool_jar
    try:
        return tool_jar("jmx_prometheus_javaagent", "tools" if version == "1.0.1" else "agent-0.20")
    except NotInstalled as e:
        unavailable(str(e))


@pytest.fixture(scope="module", params=[("1.0.1", "1.x"), ("0.20.0", "0.x")], ids=["jmx_exporter-1.0.1", "0.20.0"])
def jvm(request, tmp_path_factory):
    """A JVM with jmx_exporter's agent of one version, the Jolokia agent and remote JMX; a thread blocked on a
    monitor the main thread holds, and a direct buffer."""
    require_jdk()
    version, names = request.param
    agent = agent_jar(version)
    from realkafka.install import tool_jar
    jolokia = tool_jar("jolokia-agent-jvm")
    d = tmp_path_factory.mktemp("jvm")
    (d / "Idle.java").write_text(IDLE)
    (d / "agent.yaml").write_text("rules: [{pattern: '^nothing$'}]\n")
    port = free_port_block(3, low=20000)
    proc = subprocess.Popen(["java", "-Xmx96m", "-XX:+UseG1GC", f"-javaagent:{agent}=127.0.0.1:{port}:{d / 'agent.yaml'}",
                             f"-javaagent:{jolokia}=host=127.0.0.1,port={port + 1}",
                             f"-Dcom.sun.management.jmxremote.port={port + 2}",
                             f"-Dcom.sun.management.jmxremote.rmi.port={port + 2}",
                             "-Dcom.sun.management.jmxremote.host=127.0.0.1", "-Djava.rmi.server.hostname=127.0.0.1",
                             "-Dcom.sun.management.jmxremote.authenticate=false",
                             "-Dcom.sun.management.jmxremote.ssl=false", str(d / "Idle.java")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=d)
    try:
        agent_url = f"http://127.0.0.1:{port}/metrics"
        # the agent answers while the launcher still compiles Idle.java: until its blocked thread is there
        assert wait(lambda: jvm_series(_get(agent_url) or "")[1].get(("jvm_threads_state", BLOCKED)) == 1.0, 60), \
            f"jmx_exporter {version}'s agent did not answer, or Idle did not run"
        yield {"names": names, "agent": agent_url, "jolokia": f"http://127.0.0.1:{port + 1}/jolokia/",
               "jmx": f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{port + 2}/jmxrmi", "pid": proc.pid}
    finally:
        proc.kill()
        proc.wait(10)
        JmxReader.stop_all()


def _get(url: str) -> str | None:
    try:
        return requests.get(url, timeout=5).text
    except requests.RequestException:
        return None


def jvm_series(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset], float]]:
    """(family -> type, (sample name, labels but the target's) -> value) of the jvm_ and process_ families."""
    types, samples = {}, {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(("jvm", "process")):
            continue
        types[family.name] = family.type
        for s in family.samples:
            if s.name in INSIDE_ONLY or family.name + "_total" in INSIDE_ONLY:
                continue
            labels = frozenset((k, v) for k, v in s.labels.items() if k not in ("cluster", "node", "node_id", "role"))
            samples[(s.name, labels)] = s.value
    for name in INSIDE_ONLY:
        types.pop(name.removesuffix("_total"), None)
        types.pop(name, None)
    return types, samples


def served(jvm: dict, kind: str) -> str:
    source = JmxSource("kafka-1", jvm["jmx"]) if kind == "jmx" else JolokiaSource("kafka-1", jvm["jolokia"])
    worker = TargetWorker(Target("kafka-1", "broker", source, "1"), RuleSet([]), lambda w: None, cluster="prod",
                          jvm=JvmView(jvm["names"]))
    try:
        result = worker.collect_once()
        assert result.up, result.error
        return "".join(f"# TYPE {name} {chunk.type.value}\n" + chunk.lines.decode() for name, chunk in result.chunks.items())
    finally:
        source.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["jmx", "jolokia"])
def test_every_jvm_series_of_jmx_exporters_agent_is_served_with_its_name_type_labels_and_values(jvm, kind):
    ours_text = served(jvm, kind)
    agent_types, agent = jvm_series(_get(jvm["agent"]) or "")      # after ours: with the threads our read made
    types, ours = jvm_series(ours_text)
    assert types == agent_types
    assert set(ours) == set(agent), (set(agent) - set(ours), set(ours) - set(agent))
    assert 'node="kafka-1"' in ours_text and 'cluster="prod"' in ours_text and 'role="broker"' in ours_text
    one = {"1.x": "jvm_memory_max_bytes", "0.x": "jvm_memory_bytes_max"}[jvm["names"]]
    for key in [(one, frozenset({("area", "heap")})), ("process_start_time_seconds", frozenset()),
                ("process_max_fds", frozenset())]:
        assert ours[key] == pytest.approx(agent[key], rel=1e-9), key
    direct = ("jvm_buffer_pool_capacity_bytes", frozenset({("pool", "direct")}))      # the RMI and HTTP I/O add some
    assert ours[direct] >= 1 << 20 and agent[direct] >= 1 << 20
    # the thread blocked on the main thread's monitor, and no deadlock
    assert ours[("jvm_threads_state", BLOCKED)] == 1.0
    assert ours[("jvm_threads_deadlocked", frozenset())] == 0.0
    states = sum(v for (name, _), v in ours.items() if name == "jvm_threads_state")
    assert abs(states - ours[("jvm_threads_current", frozenset())]) <= 2
    assert ours[("jvm_threads_current", frozenset())] == pytest.approx(agent[("jvm_threads_current", frozenset())], abs=4)
    cpu = ("process_cpu_seconds_total", frozenset())
    assert ours[cpu] > 0 and abs(ours[cpu] - agent[cpu]) < 5.0
    info = {"1.x": "jvm_runtime_info", "0.x": "jvm_info"}[jvm["names"]]
    [labels] = [dict(k[1]) for k in ours if k[0] == info]
    assert labels["runtime"] and labels["vendor"] and labels["version"]        # and the agent's, as the sets are equal


def test_serve_reads_the_jvm_beans_it_needs_under_include_patterns_and_switches_them_off():
    config = load_config("include: ['kafka.server:*']\ntargets: [{name: b1, role: broker, jmx: {url: 'service:jmx:rmi:///jndi/rmi://h:1/jmxrmi'}}]\n")
    assert config.jvm.enabled and "java.lang:type=Memory" in config.includes and "java.nio:type=BufferPool,*" in config.includes
    off = load_config("include: ['kafka.server:*']\njvm: {enabled: false}\n"
                      "targets: [{name: b1, role: broker, jmx: {url: 'service:jmx:rmi:///jndi/rmi://h:1/jmxrmi'}}]\n")
    assert off.includes == ("kafka.server:*",) and not off.jvm.enabled
    old = load_config("jvm: {names: 0.x, disable: [jvm_info]}\n"
                      "targets: [{name: b1, role: broker, jmx: {url: 'service:jmx:rmi:///jndi/rmi://h:1/jmxrmi'}}]\n")
    assert (old.jvm.names, old.jvm.disabled) == ("0.x", {"jvm_info"})
    from kafka_common.yamlconf import ConfigError
    with pytest.raises(ConfigError) as e:
        load_config("jvm: {names: '2.x', disable: [jvm_runtime_info]}\n"
                    "targets: [{name: b1, role: broker, jmx: {url: 'service:jmx:rmi:///jndi/rmi://h:1/jmxrmi'}}]\n")
    assert "jvm.names: expected one of 1.x, 0.x (jmx_exporter's names), got '2.x'" in str(e.value)
