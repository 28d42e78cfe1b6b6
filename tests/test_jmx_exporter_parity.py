"""The real jmx_exporter (1.x, the standalone HTTP server from Maven) and our rules engine, given the
same rules file and the same JMX endpoint, export the same samples: names, labels, types, values.

Known differences, by design: our health metrics (kafkajmx_*) and jmx_exporter's own (jmx_*,
jvm_*), and the target labels `serve` adds (left out here, as `rules test` does by default)."""
from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import make_cluster
from jvm_support import free_port_block, kafka_port_block, require_real_kafka
from prometheus_client.parser import text_string_to_metric_families
from test_rules import STRIMZI

from broker.jmx.publisher import JmxPublisher
from exporter.collector import Target, TargetWorker, exposition
from exporter.rules import RuleSet
from exporter.sources.jmx import JmxReader, JmxSource
from realkafka.cluster import RealCluster
from realkafka.install import DEFAULT_LINE, tool_jar

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

pytestmark = pytest.mark.services

BUILTIN = (Path(__file__).resolve().parents[1] / "exporter" / "rulesets" / "kafka-4x.yml").read_text()
RULE_SETS = {"builtin": BUILTIN, "strimzi": STRIMZI}
OWN = ("kafkajmx_", "jmx_", "jvm_")


class JmxExporter:
    """jmx_prometheus_httpserver reading one JMX URL with a rules file."""

    def __init__(self, rules: str, jmx_url: str, workdir: Path) -> None:
        require_real_kafka("4.1")
        self.port = free_port_block(1)
        config = workdir / f"jmx-exporter-{self.port}.yml"
        config.write_text(f"jmxUrl: {jmx_url}\n" + rules)
        self.proc = subprocess.Popen(["java", "-Xmx128m", "-jar", str(tool_jar("jmx_prometheus_httpserver")),
                                      f"127.0.0.1:{self.port}", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=open(workdir / f"jmx-exporter-{self.port}.log", "w"))
        self.log = workdir / f"jmx-exporter-{self.port}.log"

    def scrape(self) -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=30)
                if r.status_code == 200 and "jmx_scrape_error 0.0" in r.text:
                    return r.text
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"jmx_exporter did not scrape: {self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def ours(rules: str, name: str, role: str, jmx_url: str) -> str:
    ruleset = RuleSet.from_yaml(rules, "rules.yml")
    worker = TargetWorker(Target(name, role, JmxSource(name, jmx_url, timeout_ms=60_000), "1"), ruleset,
                          lambda w: None, cluster="parity", target_labels=False)
    worker.collect_once()
    assert worker.current().up, worker.current()
    from prometheus_client.registry import CollectorRegistry
    return b"".join(exposition([worker], CollectorRegistry(auto_describe=False))).decode()


def parse(text: str) -> tuple[dict[tuple, float], dict[str, str]]:
    samples: dict[tuple, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith(OWN):
            continue
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def compare(theirs: str, mine: str, values: bool) -> list[str]:
    t_samples, t_types = parse(theirs)
    m_samples, m_types = parse(mine)
    problems = [f"only jmx_exporter: {k}" for k in sorted(t_samples.keys() - m_samples.keys())]
    problems += [f"only ours: {k}" for k in sorted(m_samples.keys() - t_samples.keys())]
    problems += [f"type of {n}: jmx_exporter {t_types[n]}, ours {m_types[n]}"
                 for n in sorted(t_types.keys() & m_types.keys()) if t_types[n] != m_types[n]]
    if values:
        for k in sorted(t_samples.keys() & m_samples.keys()):
            a, b = t_samples[k], m_samples[k]
            if not (a == b or (math.isnan(a) and math.isnan(b))):
                problems.append(f"value of {k}: jmx_exporter {a}, ours {b}")
    return problems


@pytest.fixture(scope="module")
def embedded():
    """A virtual-clock cluster published over JMX and not refreshed: both read the same values."""
    c = make_cluster()
    p = c.producer("p")
    for i in range(50):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "g", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(30_000)
    base = free_port_block(8)
    pub = JmxPublisher(c, base_port=base)
    pub.start()
    yield c, pub
    pub.stop()
    JmxReader.stop_all()


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
@pytest.mark.parametrize("node", ["broker-1", "controller-1001"])
def test_same_samples_as_jmx_exporter_on_the_embedded_cluster(embedded, rules, node, tmp_path):
    c, pub = embedded
    url = pub.urls()[node]
    exporter = JmxExporter(RULE_SETS[rules], url, tmp_path)
    try:
        theirs = exporter.scrape()
    finally:
        exporter.stop()
    mine = ours(RULE_SETS[rules], node, c.servers[node].role, url)
    assert len(parse(theirs)[0]) > 50
    assert compare(theirs, mine, values=True) == []


# on a live cluster values move between the two reads: these cluster signals must not
STEADY = re.compile(r"kafka_controller_kafkacontroller_(activecontrollercount|activebrokercount|fencedbrokercount|"
                    r"offlinepartitionscount|globaltopiccount|globalpartitioncount)|"
                    r"kafka_server_replicamanager_(leadercount|partitioncount|underreplicatedpartitions|"
                    r"underminisrpartitioncount|offlinereplicacount)|kafka_server_kafkaserver_brokerstate")


@pytest.fixture(scope="module")
def real_kafka(tmp_path_factory):
    require_real_kafka(DEFAULT_LINE)
    base = kafka_port_block()
    cluster = RealCluster(DEFAULT_LINE, brokers=1, controllers=1, jmx_base_port=base, kafka_base_port=base + 8,
                          config={"offsets.topic.replication.factor": 1})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        JmxReader.stop_all()


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
@pytest.mark.parametrize("node", ["broker-1", "controller-1001"])
def test_same_samples_as_jmx_exporter_on_real_kafka(real_kafka, rules, node, tmp_path):
    url = real_kafka.urls()[node]
    role = real_kafka.nodes[node].role
    deadline = time.monotonic() + 60
    while True:
        exporter = JmxExporter(RULE_SETS[rules], url, tmp_path)
        try:
            theirs = exporter.scrape()
        finally:
            exporter.stop()
        mine = ours(RULE_SETS[rules], node, role, url)
        problems = compare(theirs, mine, values=False)
        t_samples, m_samples = parse(theirs)[0], parse(mine)[0]
        problems += [f"value of {k}: jmx_exporter {t_samples[k]}, ours {m_samples[k]}"
                     for k in sorted(t_samples.keys() & m_samples.keys())
                     if STEADY.fullmatch(k[0]) and t_samples[k] != m_samples[k]]
        # a bean that appeared between the two reads (a new connection's metrics) is read again
        if not problems or time.monotonic() > deadline:
            break
    assert len(t_samples) > 50
    assert problems == []
