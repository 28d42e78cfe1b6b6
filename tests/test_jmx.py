"""Real JMX both ways: the embedded cluster published over JMX/RMI and Jolokia, read back through the
jmx and jolokia sources, against what the in-process registries hold."""
import math
import subprocess
import time

import pytest
from conftest import ManualClock, make_cluster
from jvm_support import free_port_block, hung_jmx_url, require_jdk, require_jolokia

from broker.jmx.publisher import JmxAuth, JmxPublisher, JmxTls
from exporter.rules import RuleSet
from exporter.sample import SourceError
from exporter.sources.jmx import JmxReader, JmxSource
from exporter.sources.jolokia import JolokiaSource
from kafka_jmx.embedded import EmbeddedSource

KAFKA = ["kafka.*:*"]


@pytest.fixture(scope="module")
def published():
    require_jolokia()
    c = make_cluster()
    p = c.producer("p")
    for i in range(30):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "g", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(20_000)
    base = free_port_block(16)
    pub = JmxPublisher(c, base_port=base, jolokia_base_port=base + 8)
    pub.start()
    yield c, pub
    pub.stop()
    JmxReader.stop_all()


def as_map(collection):
    return {s.key(): s.value for s in collection.samples}


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and (isinstance(a, str) == isinstance(b, str))


def assert_same(expected: dict, got: dict, label: str):
    assert set(got) == set(expected), f"{label}: {sorted(set(expected) ^ set(got))[:5]}"
    diff = [k for k in expected if not same(expected[k], got[k])]
    assert not diff, f"{label}: {[(k, expected[k], got[k]) for k in diff[:5]]}"


@pytest.mark.slow
def test_every_node_has_its_own_endpoint(published):
    c, pub = published
    urls = pub.urls()
    assert list(urls) == c.node_names()
    assert len(set(urls.values())) == 8
    assert all(u.startswith("service:jmx:rmi:///jndi/rmi://127.0.0.1:") for u in urls.values())


@pytest.mark.slow
def test_jmx_and_jolokia_read_what_the_registries_hold(published):
    c, pub = published
    pub.refresh()
    for name, node in c.servers.items():
        expected = as_map(EmbeddedSource(name, node, KAFKA).read())
        via_jmx = JmxSource(name, pub.urls()[name], includes=KAFKA).read()
        via_jolokia = JolokiaSource(name, pub.jolokia_urls()[name], includes=KAFKA).read()
        assert via_jmx.skipped == {} and via_jolokia.skipped == {}
        assert_same(expected, as_map(via_jmx), f"{name} via JMX")
        assert_same(expected, as_map(via_jolokia), f"{name} via Jolokia")
    # key properties keep Kafka's registration order on every path
    sample = next(s for s in JmxSource("b1", pub.urls()["broker-1"], includes=["kafka.log:type=Log,*"]).read().samples)
    assert [k for k, _ in sample.props] == ["type", "name", "topic", "partition"]


@pytest.mark.slow
def test_values_follow_the_cluster_within_a_refresh(published):
    c, pub = published
    src = JmxSource("c", pub.urls()["controller-1001"],
                    includes=["kafka.controller:type=KafkaController,name=ActiveBrokerCount"])
    assert [s.value for s in src.read().samples] == [5]
    c.kill("broker-5")
    c.run_for(12_000)
    pub.refresh()
    assert [s.value for s in src.read().samples] == [4]
    started = time.monotonic()
    with pytest.raises(SourceError) as e:
        JmxSource("b5", pub.urls()["broker-5"], timeout_ms=5_000).read()
    assert time.monotonic() - started < 2.0                       # refused at once, not a timeout
    assert e.value.kind == "connect" and str(e.value).startswith("b5: connecting to service:jmx:")
    assert JmxSource("b4", pub.urls()["broker-4"], includes=KAFKA).read().samples       # the others answer
    c.restart("broker-5")
    c.run_for(10_000)
    pub.refresh()
    state = JmxSource("b5", pub.urls()["broker-5"], includes=["kafka.server:type=KafkaServer,name=BrokerState"])
    assert [s.value for s in state.read().samples] == [3]


@pytest.mark.slow
def test_composite_data_is_flattened_and_types_are_kafkas(published):
    _c, pub = published
    src = JmxSource("b1", pub.urls()["broker-1"], includes=[
        "java.lang:type=Memory", "kafka.server:type=raft-metrics",
        "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec"])
    samples = src.read().samples
    heap = {s.path: s.value for s in samples if s.attr == "HeapMemoryUsage"}
    assert set(heap) == {("committed",), ("init",), ("max",), ("used",)} and heap[("used",)] > 0
    raft = {s.attr: s.value for s in samples if s.props == (("type", "raft-metrics"),)}
    assert raft["current-state"] == "observer" and isinstance(raft["current-leader"], float)
    meter = {s.attr: s.value for s in samples if s.attr in ("RateUnit", "Count")}
    assert meter == {"RateUnit": "SECONDS", "Count": 0}


def test_jolokia_reports_per_request_errors(published):
    _c, pub = published
    src = JolokiaSource("b1", pub.jolokia_urls()["broker-1"],
                        includes=["kafka.server:type=ReplicaManager,*", "kafka.nope:type=Missing"])
    collection = src.read()
    assert any(s.attr == "Value" for s in collection.samples)
    [(reason, count)] = collection.skipped.items()
    assert "kafka.nope:type=Missing" in reason and "InstanceNotFoundException" in reason and count == 1


@pytest.mark.slow
def test_jolokia_basic_auth():
    require_jolokia()
    c = make_cluster(topics=())
    base = free_port_block(16)
    pub = JmxPublisher(c, base_port=base, jolokia_base_port=base + 8, jolokia_auth=("monitor", "jolo-pw"))
    try:
        pub.start()
        url = pub.jolokia_urls()["controller-1001"]
        ok = JolokiaSource("c", url, "monitor", "jolo-pw", includes=["kafka.controller:*"]).read()
        assert any(s.attr == "Value" for s in ok.samples)
        with pytest.raises(SourceError) as e:
            JolokiaSource("c", url, "monitor", "nope", includes=["kafka.controller:*"]).read()
        assert e.value.kind == "auth" and "nope" not in str(e.value)
    finally:
        pub.stop()


def test_unreadable_attributes_are_counted_not_fatal(published):
    _c, pub = published
    collection = JmxSource("b1", pub.urls()["broker-1"], includes=["java.lang:type=MemoryPool,*"]).read()
    assert collection.samples
    assert collection.skipped.get("unreadable attribute", 0) > 0      # e.g. usage thresholds some pools lack


@pytest.mark.slow
def test_publishing_10k_mbeans_refreshes_fast():
    require_jdk()
    c = make_cluster(topics=(("wide", 1000, 3, 2),))
    base = free_port_block(8)
    pub = JmxPublisher(c, base_port=base)
    try:
        pub.start()
        busiest = max(len(b.mbeans) for b in c.brokers.values())
        assert busiest >= 6_000
        c.run_for(5_000)
        pub.refresh()
        # a refresh of the whole cluster (all nodes) on this 2-core machine
        assert pub.last_refresh_wall_ms < 2_000
    finally:
        pub.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    require_jdk()
    d = tmp_path_factory.mktemp("jmx-security")
    (d / "jmx.password").write_text("monitor s3cret-pw\n")
    (d / "jmx.access").write_text("monitor readonly\n")
    keystore, truststore = d / "server.jks", d / "trust.jks"
    subprocess.run(["keytool", "-genkeypair", "-alias", "jmx", "-keyalg", "RSA", "-keysize", "2048", "-dname",
                    "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-keystore", str(keystore),
                    "-storepass", "changeit", "-keypass", "changeit", "-storetype", "JKS"], check=True,
                   capture_output=True)
    subprocess.run(["keytool", "-exportcert", "-alias", "jmx", "-keystore", str(keystore), "-storepass", "changeit",
                    "-file", str(d / "jmx.cer")], check=True, capture_output=True)
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "jmx", "-file", str(d / "jmx.cer"),
                    "-keystore", str(truststore), "-storepass", "changeit", "-storetype", "JKS"], check=True,
                   capture_output=True)
    c = make_cluster(topics=())
    base = free_port_block(8)
    pub = JmxPublisher(c, base_port=base, auth=JmxAuth(str(d / "jmx.password"), str(d / "jmx.access")),
                       tls=JmxTls(str(keystore), "changeit"))
    pub.start()
    yield pub, str(truststore)
    pub.stop()


@pytest.mark.slow
def test_jmx_authentication_and_tls(secured):
    pub, truststore = secured
    url = pub.urls()["controller-1001"]
    good = JmxSource("c", url, "monitor", "s3cret-pw", ssl=True, truststore=truststore, truststore_password="changeit",
                     includes=["kafka.controller:type=KafkaController,name=ActiveControllerCount"])
    assert len(good.read().samples) == 1
    bad = JmxSource("c", url, "monitor", "wrong-pw", ssl=True, truststore=truststore, truststore_password="changeit")
    with pytest.raises(SourceError) as e:
        bad.read()
    assert e.value.kind == "auth" and "check the JMX user and password" in str(e.value)
    assert "wrong-pw" not in str(e.value)
    untrusted = JmxSource("c", url, "monitor", "s3cret-pw", ssl=True)
    with pytest.raises(SourceError) as e:
        untrusted.read()
    assert e.value.kind in ("tls", "connect")


@pytest.mark.slow
def test_a_broken_connection_reconnects_with_backoff(published):
    c, pub = published
    clock = ManualClock()
    src = JmxSource("c2", pub.urls()["controller-1002"], includes=["kafka.server:type=raft-metrics"], clock=clock)
    assert src.read().samples
    c.kill("controller-1002")
    pub.refresh()
    with pytest.raises(SourceError) as first:
        src.read()
    with pytest.raises(SourceError) as second:
        src.read()                                   # within the backoff: no new connection attempt
    assert "next attempt in" in str(second.value) and first.value.kind == "connect"
    c.restart("controller-1002")
    c.run_for(5_000)
    pub.refresh()
    clock.advance(1.1)                               # past the first backoff (1 s)
    assert src.read().samples


@pytest.mark.slow
def test_a_hung_target_times_out():
    require_jdk()
    with hung_jmx_url() as url:
        src = JmxSource("hung", url, timeout_ms=1_500)
        started = time.monotonic()
        with pytest.raises(SourceError) as e:
            src.read()
        assert e.value.kind == "timeout" and "no answer within 1500 ms" in str(e.value)
        assert time.monotonic() - started < 5


def test_open_data_from_the_jvms_own_mbeans_is_flattened_as_jmx_exporter_does(published):
    """CompositeData (HeapMemoryUsage), TabularData (Runtime SystemProperties, an MXBean map) and
    TabularData inside CompositeData (a collector's LastGcInfo.memoryUsageAfterGc), read over JMX
    and Jolokia from the helper JVM's platform MBeans."""
    _c, pub = published
    pub.jvm.jvm.java.lang.System.gc()          # LastGcInfo is null until a collection happened
    beans = ["java.lang:type=Memory", "java.lang:type=Runtime", "java.lang:type=GarbageCollector,*"]
    over_jmx = JmxSource("b1", pub.urls()["broker-1"], includes=beans).read().samples
    over_jolokia = JolokiaSource("b1", pub.jolokia_urls()["broker-1"], includes=beans).read().samples

    for samples in (over_jmx, over_jolokia):
        heap = {s.path: s.value for s in samples if s.attr == "HeapMemoryUsage"}
        assert set(heap) == {("committed",), ("init",), ("max",), ("used",)} and heap[("used",)] > 0
        props = {dict(s.props)["key"]: s for s in samples if s.attr == "SystemProperties"}
        version = props["java.specification.version"]
        # the index column is a label after the ObjectName's own properties; 'value' names no key
        assert version.props == (("type", "Runtime"), ("key", "java.specification.version"))
        assert version.path == () and version.key_props == 1 and version.value.split(".")[0].isdigit()
    after_gc = [s for s in over_jmx if s.attr == "LastGcInfo" and s.path[:1] == ("memoryUsageAfterGc",)]
    assert after_gc and {s.path for s in after_gc} == {("memoryUsageAfterGc", k) for k in
                                                        ("committed", "init", "max", "used")}
    assert all(s.props[-1][0] == "key" and s.props[-1][1] and s.key_props == 2 for s in after_gc)

    exported = RuleSet.from_yaml("---\n").apply(over_jmx)
    names = {m.name: m for m in exported}
    assert names["java_lang_Memory_HeapMemoryUsage_used"].value > 0
    pools = {dict(m.labels)["key"] for m in exported if m.name.endswith("_LastGcInfo_memoryUsageAfterGc_used")}
    assert pools and all(pools)
    assert not any("SystemProperties" in m.name for m in exported)     # jmx_exporter never reads them


@pytest.mark.slow
def test_mbean_info_declares_the_types_kafkas_reporters_declare(published):
    """Yammer's JmxReporter interfaces: Object getValue(), long getCount(), double rates and
    percentiles, TimeUnit units; Kafka's KafkaMbean: double for every attribute (real Kafka 4.1 and
    4.4 declare the same, tests/test_real_kafka.py)."""
    _c, pub = published
    declared = {(on, attr): t for on, attr, t in JmxSource("b1", pub.urls()["broker-1"], includes=[
        "kafka.server:type=ReplicaManager,*", "kafka.server:type=raft-metrics",
        "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce"]).describe()}
    assert declared[("kafka.server:type=ReplicaManager,name=LeaderCount", "Value")] == "java.lang.Object"
    isr = "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec"
    assert (declared[(isr, "Count")], declared[(isr, "OneMinuteRate")], declared[(isr, "RateUnit")]) == \
        ("long", "double", "java.util.concurrent.TimeUnit")
    total = "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce"
    assert (declared[(total, "Count")], declared[(total, "99thPercentile")], declared[(total, "Max")]) == \
        ("long", "double", "double")
    assert {t for (on, _), t in declared.items() if on == "kafka.server:type=raft-metrics"} == {"double"}


def test_a_nodes_endpoint_serves_the_jvm_metrics_of_the_jvm_behind_it_threads_included(published):
    """The embedded nodes' endpoints show the helper JVM's java.lang beans, as every Kafka JVM has its own: the
    JVM metrics come from them, the thread states through ThreadMXBean's forwarded read operations (over JMX;
    the embedded Jolokia endpoint answers no operations, and the rest is still served)."""
    from exporter.jvm import JvmView
    _c, pub = published
    for source in (JmxSource("b1", pub.urls()["broker-1"]), JolokiaSource("b1", pub.jolokia_urls()["broker-1"])):
        source.threads = True
        collection = source.read()
        chunks = JvmView().render(collection, {"node": "broker-1"})
        assert {"jvm_memory_used_bytes", "jvm_gc_collection_seconds", "process_open_fds"} <= set(chunks)
        if isinstance(source, JmxSource):
            assert collection.threads is not None and sum(collection.threads.states.values()) > 0
            assert b'jvm_threads_state{node="broker-1",state="RUNNABLE"}' in chunks["jvm_threads_state"].lines
        source.close()


def test_the_catalogs_jvm_items_resolve_on_every_nodes_endpoint(published):
    """What the Java gateway polls for the catalog's JVM items (HeapMemoryUsage.used: a CompositeData key; a
    collector's CollectionTime by name) on an embedded node's endpoint, as on a Kafka JVM's."""
    from exporter.catalog.model import load_catalog
    from kafka_common.names import ObjectName
    _c, pub = published
    jvm = [m for m in load_catalog().metrics if m.jvm]
    assert {m.id for m in jvm} >= {"jvm_heap_used", "jvm_gc_time", "open_fds", "max_fds"}
    source = JmxSource("b1", pub.urls()["broker-1"], includes=["java.lang:*"])
    offered = {(on, attr) for on, attr, _ in source.describe()}
    values = {(s.object_name, ".".join((s.attr, *s.path))): s.value for s in source.read().samples}
    source.close()
    for m in jvm:
        if m.discovers:       # a JVM puts name= first (java.lang:name=G1 Young Generation,type=GarbageCollector)
            base = dict(ObjectName.parse(m.base).props)
            assert any(attr == m.attribute and {k: v for k, v in ObjectName.parse(on).props if k != m.discovers} == base
                       and m.discovers in dict(ObjectName.parse(on).props) for on, attr in offered), m.id
        else:
            assert (m.mbean, m.attribute.split(".")[0]) in offered and isinstance(values[(m.mbean, m.attribute)], int), m.id
