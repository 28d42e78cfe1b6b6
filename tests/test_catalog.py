"""The catalog against the embedded cluster, the built-in rules and the committed artifacts."""
import re

import pytest
import yaml
from conftest import ROOT

from exporter.catalog import generate, zabbix
from exporter.catalog.model import load_catalog
from exporter.exposition import sample_name
from exporter.rulesets import builtin_rules
from kafka_jmx.embedded import EmbeddedSource

UUID = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_every_catalog_mbean_exists_on_its_role(catalog, faulted_cluster):
    c = faulted_cluster
    for m in catalog.metrics:
        if m.jvm:
            continue        # the JVM's own beans: tests/test_jmx.py (the nodes' endpoints) and tests/test_real_kafka.py
        roles = ("broker", "controller") if m.role == "both" else (m.role,)
        for node in c.servers.values():
            if not node.alive:
                continue
            present = (m.mbean in node.mbeans if not m.discovers else
                       any(str(on).startswith(m.base + f",{m.discovers}=") for on, _ in node.mbeans.items()))
            leader_only = m.id == "broker_heartbeat_age" or m.lld == "attribute"
            if leader_only and node.role == "controller" and node is not c.active_controller():
                assert not present or m.attribute not in node.mbeans.read(m.mbean), f"{m.id}: only on the active controller"
                continue
            if node.role in roles:
                if m.id == "produce_not_enough_replicas":
                    continue            # created on a broker's first such error, checked below
                assert present, f"{m.mbean} missing on {node.name}"
                one = m.mbean if not m.discovers else m.base + f",{m.discovers}=1"
                assert m.attribute in node.mbeans.read(one), f"{one} has no {m.attribute}"
            elif m.role == "controller":
                # KRaft: controller metrics live only on controllers (request metrics exist on both roles;
                # raft-metrics too, where only the controllers' has the voter count)
                assert not present or m.attribute not in node.mbeans.read(m.mbean), \
                    f"{m.mbean} {m.attribute} should not exist on {node.role} {node.name}"
    errors = c.values("kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=Produce,error=NOT_ENOUGH_REPLICAS",
                      "Count")
    assert sum(errors.values()) >= 1


@pytest.mark.slow
def test_prometheus_names_are_what_the_builtin_rules_make(catalog, faulted_cluster):
    rules = builtin_rules()
    produced: set[str] = set()
    for name, node in faulted_cluster.servers.items():
        if node.alive:
            for m in rules.apply(EmbeddedSource(name, node).read().samples):
                labels = ",".join(f'{k}="{v}"' for k, v in m.labels)
                exposed = sample_name(m.name, m.type)       # what Prometheus stores: a counter's _total
                produced.add(exposed)
                produced.add(f"{exposed}{{{labels}}}")
    produced |= jvm_series()
    for m in catalog.metrics:
        if not m.prometheus:
            continue
        name, _, labels = m.prometheus.partition("{")
        assert name in produced, f"{m.id}: the built-in rules make no {name}"
        if labels:
            wanted = dict(kv.split("=", 1) for kv in labels.rstrip("}").split(","))
            assert any(p.startswith(name + "{") and all(f"{k}={v}" in p for k, v in wanted.items())
                       for p in produced), f"{m.id}: no {m.prometheus}"


def jvm_series() -> set[str]:
    """What the exporter's JVM view makes of a JVM's beans: names, and names with their labels."""
    from exporter.jvm import JvmView
    from exporter.sample import Collection, Sample, Threads
    lang = [("Memory", None, "HeapMemoryUsage", {"used": 1, "committed": 2, "max": 3, "init": 1}),
            ("GarbageCollector", "G1 Young Generation", "CollectionTime", 5), ("Threading", None, "ThreadCount", 9),
            ("OperatingSystem", None, "ProcessCpuTime", 7), ("OperatingSystem", None, "OpenFileDescriptorCount", 4),
            ("OperatingSystem", None, "MaxFileDescriptorCount", 8), ("Runtime", None, "StartTime", 1)]
    samples = []
    for kind, name, attr, value in lang:
        props = (("type", kind),) + ((("name", name),) if name else ())
        for path, v in (value.items() if isinstance(value, dict) else [((), value)]):
            samples.append(Sample("java.lang", props, (path,) if path else (), attr, v, 0.0))
    samples.append(Sample("java.lang", (("type", "GarbageCollector"), ("name", "G1 Young Generation")), (),
                          "CollectionCount", 2, 0.0))
    chunks = JvmView().render(Collection(samples, {}, Threads({}, 0, 0)), {})
    out = set()
    for chunk in chunks.values():
        for line in chunk.lines.decode().splitlines():
            series = line.rsplit(" ", 1)[0]
            out |= {series.split("{")[0], series}
    return out


def test_generated_files_are_current():
    assert generate.stale(ROOT) == [], \
        "run `kafka-jmx generate` in the checkout's root and commit the result"


def test_zabbix_templates_are_well_formed(catalog):
    doc = zabbix.render(catalog, "6.0")["zabbix_export"]
    uuids = re.findall(r"uuid': '([0-9a-f]+)'", str(doc))
    assert uuids and all(UUID.match(u) for u in uuids) and len(uuids) == len(set(uuids))
    names = {t["name"] for t in doc["templates"]}
    assert {"Apache Kafka 4.x by JMX", "Apache Kafka 4.x broker by JMX", "Apache Kafka 4.x controller by JMX",
            "Apache Kafka 4.x broker by trapper", "Apache Kafka 4.x controller by trapper",
            "Apache Kafka 4.x cluster"} <= names
    by_name = {t["name"]: t for t in doc["templates"]}
    # over JMX a bean Kafka creates on its first event is discovered, not a fixed item
    for role in ("broker", "controller", None):
        name = f"Apache Kafka 4.x {role} by" if role else "Apache Kafka 4.x by"
        keys = {m.key for m in catalog.metrics if (role is None or m.on(role)) and not m.discovers}
        assert {i["key"] for i in by_name[f"{name} trapper"]["items"]} == keys
        assert {i["key"] for i in by_name[f"{name} JMX"]["items"]} == {
            m.key for m in catalog.metrics if (role is None or m.on(role)) and m.lld not in ("bean", "attribute")}
    assert all("templates" not in t for t in doc["templates"])        # self-contained: no linkage
    # triggers reference items of their own template; cluster checks live once, in the cluster template
    for t in doc["templates"]:
        for item in t.get("items", []):
            for trig in item.get("triggers", []):
                assert f"/{t['name']}/{item['key']}" in trig["expression"]
    assert all("/Apache Kafka 4.x cluster/" in trig["expression"] for trig in doc["triggers"])
    seed = [trig for trig in doc["triggers"] if "KAFKA.BROKERS.MIN" in trig["expression"]]
    c = "/Apache Kafka 4.x cluster/kafka.cluster.active_brokers"
    # a fixed minimum, or (0, the template's default) fewer than the cluster had: a default never pages a healthy cluster
    assert seed and seed[0]["expression"] == f"last({c})<{{$KAFKA.BROKERS.MIN}} or ({{$KAFKA.BROKERS.MIN}}=0 and " \
                                             f"last({c})<max({c},{{$KAFKA.BROKERS.MEMORY}}))"
    # regenerating gives identical uuids
    assert zabbix.render(catalog, "6.0") == zabbix.render(load_catalog(), "6.0")


@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_graphs_and_dashboards_draw_items_their_template_has(catalog, version):
    doc = zabbix.render(catalog, version)["zabbix_export"]
    keys = {}
    for t in doc["templates"]:
        keys[t["name"]] = {i["key"] for i in t.get("items", [])}
        prototypes = {p["key"] for r in t.get("discovery_rules", []) for p in r["item_prototypes"]}
        for rule in t.get("discovery_rules", []):
            for g in rule.get("graph_prototypes", []):
                assert "{#JMXTOPIC}" in g["name"] or "{#GROUP}" in g["name"]
                assert all(gi["item"]["host"] == t["name"] and gi["item"]["key"] in prototypes for gi in g["graph_items"])
    graphs = {(gi["item"]["host"], g["name"]) for g in doc["graphs"] for gi in g["graph_items"]}
    for g in doc["graphs"]:
        assert all(gi["item"]["key"] in keys[gi["item"]["host"]] for gi in g["graph_items"]), g["name"]
    width = {"6.0": 24, "7.0": 72}[version]
    for t in doc["templates"]:
        [board] = t["dashboards"]
        protos = {g["name"] for r in t.get("discovery_rules", []) for g in r.get("graph_prototypes", [])}
        for page in board["pages"]:
            for w in page["widgets"]:
                [field] = [f for f in w["fields"] if f["name"] != "reference"]      # 7.0's: tested below
                assert field["value"]["host"] == t["name"]
                assert (t["name"], field["value"]["name"]) in graphs or field["value"]["name"] in protos
                assert int(w["x"]) + int(w["width"]) <= width
                # a prototype's discovered graphs share its width: it takes the row, so each gets a graph's
                assert int(w["width"]) == (width if field["value"]["name"] in protos else width // 2)
    pages = {t["name"]: [p["name"] for p in t["dashboards"][0]["pages"]] for t in doc["templates"]}
    assert pages["Apache Kafka 4.x cluster"] == ["Cluster"]
    assert pages["Apache Kafka 4.x controller by JMX"] == ["Quorum", "Broker"]     # the thread pools' idle
    assert pages["Apache Kafka 4.x broker by trapper"] == ["Quorum", "Broker", "Requests", "Topics"]
    assert pages["Apache Kafka 4.x consumer groups by trapper"] == ["Consumer groups"]


def test_item_names_are_unique_in_every_template(catalog):
    """Zabbix's guidelines: the combined template holds both roles' items, each name once."""
    doc = zabbix.render(catalog, "6.0")["zabbix_export"]
    for t in doc["templates"]:
        names = [i["name"] for i in t.get("items", [])] + [
            p["name"] for r in t.get("discovery_rules", []) for p in r["item_prototypes"]]
        assert len(names) == len(set(names)), (t["name"], sorted(n for n in names if names.count(n) > 1))


def test_value_maps_go_with_the_items_that_use_them(catalog):
    doc = zabbix.render(catalog, "6.0")["zabbix_export"]
    by_name = {t["name"]: t for t in doc["templates"]}
    maps = {name: {v["name"] for v in t.get("valuemaps", [])} for name, t in by_name.items()}
    assert maps["Apache Kafka 4.x broker by JMX"] == {"Kafka broker state", "Kafka raft state"}
    assert maps["Apache Kafka 4.x controller by JMX"] == {"Kafka raft state", "Kafka broker registration state"}
    raft = next(v for v in by_name["Apache Kafka 4.x by JMX"]["valuemaps"] if v["name"] == "Kafka raft state")
    assert {m["value"] for m in raft["mappings"]} >= {"leader", "follower", "observer", "prospective", "unattached-voted"}


def test_trigger_names_are_static_and_problems_carry_the_values(catalog):
    """Zabbix's guidelines: no {HOST.NAME} or item values in a trigger's name; event_name and opdata have them,
    and a node's problem names its node."""
    doc = zabbix.render(catalog, "6.0")["zabbix_export"]
    triggers = doc["triggers"] + [trig for t in doc["templates"] for i in t.get("items", []) for trig in i.get("triggers", [])]
    triggers += [trig for t in doc["templates"] for r in t.get("discovery_rules", []) for p in r["item_prototypes"]
                 for trig in p.get("trigger_prototypes", [])]
    assert len(triggers) > 20
    for trig in triggers:
        assert "{HOST." not in trig["name"] and "{ITEM." not in trig["name"], trig["name"]
        per_node = trig["name"].startswith("Kafka:")
        assert trig.get("event_name", "").startswith("Kafka {HOST.NAME}: ") == per_node, trig
        assert not trig["name"].startswith("Kafka Kafka") and "Kafka {$KAFKA.CLUSTER.GROUP}" not in trig["name"]
    urp = next(trig for trig in triggers if trig["name"] == "Kafka: under replicated partitions")
    assert urp["event_name"] == "Kafka {HOST.NAME}: {ITEM.LASTVALUE1} under replicated partitions for {$KAFKA.URP.PERIOD}"
    assert urp["opdata"] == "Under replicated: {ITEM.LASTVALUE1}"


def test_catalog_refuses_host_macros_in_trigger_names_and_unknown_graph_parts(tmp_path):
    metric = ("metrics:\n  - {id: x, mbean: 'a:type=b', attribute: Value, role: both, description: d,\n"
              "     zabbix: {name: n, value_type: FLOAT, component: c, valuemap: nowhere}}\n")
    text = catalog_errors(tmp_path, metric + (
        "triggers:\n  - {id: t, scope: host, metric: x, name: 'Kafka {HOST.NAME}: bad', expression: 'last({item})>0',\n"
        "     priority: INFO, description: d, alert: {name: A, expr: up, severity: info}}\n"
        "graphs:\n  - {id: g, name: G, metrics: [x, y]}\n"
        "dashboard:\n  - {page: P, graphs: [g, h]}\n"))
    assert "triggers[0].name: a trigger name holds no {HOST.*} or {ITEM.*} macro" in text
    assert "metrics[0].zabbix.valuemap: value map 'nowhere' is not defined under valuemaps" in text
    assert "graphs[0].metrics: 'y' is not a metric" in text
    assert "dashboard[0].graphs: unknown graph 'h'" in text


def test_seven_zero_format_uses_template_groups(catalog):
    doc = yaml.safe_load(zabbix.serialize(zabbix.render(catalog, "7.0")))["zabbix_export"]
    assert doc["version"] == "7.0" and "template_groups" in doc and "groups" not in doc


def catalog_errors(tmp_path, text: str) -> str:
    """What loading a catalog file with this text refuses, as the user reads it."""
    from kafka_common.yamlconf import ConfigError
    bad = tmp_path / "c.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_catalog(bad)
    return str(e.value)


def test_catalog_errors_name_line_and_field(tmp_path):
    text = catalog_errors(tmp_path, "metrics:\n  - {id: x, mbean: 'not a name', attribute: Value, role: both, "
                                    "description: d,\n     zabbix: {name: n, value_type: NUMBER, component: c}}\n")
    assert "c.yaml:2: metrics[0].mbean: not an ObjectName" in text
    assert "metrics[0].zabbix.value_type: value_type must be one of" in text


def test_nan_and_first_event_beans_leave_no_jmx_item_unsupported(catalog):
    """The Java gateway hands Zabbix "NaN" for a kafka-metrics Avg/Max without samples (a numeric item
    refuses it), and a JMX item on a bean that does not exist yet is unsupported: both are built for."""
    doc = zabbix.render(catalog, "6.0")["zabbix_export"]
    by_name = {t["name"]: t for t in doc["templates"]}
    jmx, trapper = by_name["Apache Kafka 4.x by JMX"], by_name["Apache Kafka 4.x by trapper"]
    nan = [m for m in catalog.metrics if m.zabbix.nan is not None]
    assert {m.id for m in nan} >= {"raft_election_latency_max", "raft_commit_latency_max"}
    items = {i["key"]: i for i in jmx["items"]}
    for m in nan:
        [first, *_] = items[m.key]["preprocessing"]
        assert first == {"type": "JAVASCRIPT", "parameters": ["return value === 'NaN' ? '0' : value;"]}
    assert all(s["type"] != "JAVASCRIPT" for i in trapper["items"] for s in i.get("preprocessing", []))
    rules = {r["key"]: r for r in jmx["discovery_rules"]}
    for m in catalog.metrics:
        if m.lld == "topic":
            [proto] = rules[f'jmx.discovery[beans,"{m.mbean},topic=*"]']["item_prototypes"]
            assert proto["key"] == f'jmx["{m.mbean},topic={{#JMXTOPIC}}","{m.attribute}"]'
        elif m.lld == "bean":
            [proto] = rules[f'jmx.discovery[beans,"{m.mbean}"]']["item_prototypes"]
            prop, _, value = m.mbean.rpartition(",")[2].partition("=")
            assert proto["key"].replace("{#JMX" + prop.upper() + "}", value) == m.key
    assert [r["key"] for r in trapper["discovery_rules"]] == [
        "kafka.discovery.topics", "kafka.discovery.beans[broker_registration_state]",
        "kafka.discovery.beans[broker_heartbeat_age]", "kafka.discovery.beans[jvm_gc_time]"]
    # one item per broker, named after it
    [proto] = rules['jmx.discovery[beans,"kafka.controller:type=KafkaController,name=BrokerRegistrationState,broker=*"]'][
        "item_prototypes"]
    assert proto["key"] == 'jmx["kafka.controller:type=KafkaController,name=BrokerRegistrationState,broker={#JMXBROKER}","Value"]'
    assert proto["name"] == "Broker {#JMXBROKER}: registration state"


def test_the_trapper_sends_what_the_jmx_template_stores_for_nan(catalog):
    from exporter.collector import Target
    from exporter.sample import Collection, Sample
    from exporter.trapper import TrapperSink
    sink = TrapperSink("127.0.0.1", 1, catalog, "c")
    raft = (("type", "raft-metrics"),)
    now = 1_764_000_000_000.0
    sink.offer(Target("controller-1001", "controller", None), Collection([
        Sample("kafka.server", raft, (), "election-latency-max", float("nan"), now),
        Sample("kafka.server", raft, (), "high-watermark", float("nan"), now),
        Sample("kafka.server", raft, (), "commit-latency-avg", 2.5, now)], {}))
    sent = {v.key: v.value for v in sink.pending()}
    assert sent['jmx["kafka.server:type=raft-metrics","election-latency-max"]'] == "0"
    assert sent['jmx["kafka.server:type=raft-metrics","commit-latency-avg"]'] == "2.5"
    assert 'jmx["kafka.server:type=raft-metrics","high-watermark"]' not in sent and sink.skipped_nan == 1


def test_the_trapper_discovers_each_brokers_registration_before_sending_its_values(catalog):
    import json

    from exporter.collector import Target
    from exporter.sample import Collection, Sample
    from exporter.trapper import TrapperSink
    sink = TrapperSink("127.0.0.1", 1, catalog, "c", lld_settle_s=0.0)
    now = 1_764_000_000_000.0
    kc = lambda name, b: (("type", "KafkaController"), ("name", name), ("broker", str(b)))
    sink.offer(Target("controller-1001", "controller", None), Collection(
        [Sample("kafka.controller", kc("BrokerRegistrationState", b), (), "Value", 30, now) for b in (1, 2)] +
        [Sample("kafka.controller", kc("TimeSinceLastHeartbeatReceivedMs", 2), (), "Value", 800, now)], {}))
    sent = [(v.key, v.value) for v in sink.pending()]
    lld = dict(sent)
    assert json.loads(lld["kafka.discovery.beans[broker_registration_state]"]) == {
        "data": [{"{#JMXBROKER}": "1"}, {"{#JMXBROKER}": "2"}]}
    assert json.loads(lld["kafka.discovery.beans[broker_heartbeat_age]"]) == {"data": [{"{#JMXBROKER}": "2"}]}
    assert lld['jmx["kafka.controller:type=KafkaController,name=BrokerRegistrationState,broker=2","Value"]'] == "30"
    assert lld['jmx["kafka.controller:type=KafkaController,name=TimeSinceLastHeartbeatReceivedMs,broker=2","Value"]'] \
        == "800.0"
    # brokers get no controller discovery, controllers no topic discovery
    assert "kafka.discovery.topics" not in lld
    sink.offer(Target("broker-1", "broker", None), Collection([], {}))
    assert [v.key for v in sink.pending()][len(sent):] == ["kafka.discovery.topics", "kafka.discovery.beans[jvm_gc_time]"]
    # a JVM's CompositeData keys are the Java gateway's attribute.key, its collectors discovered by name
    gc = (("name", "G1 Young Generation"), ("type", "GarbageCollector"))     # as a JVM names it
    sink.offer(Target("broker-2", "broker", None), Collection(
        [Sample("java.lang", (("type", "Memory"),), ("used",), "HeapMemoryUsage", 123, now),
         Sample("java.lang", gc, (), "CollectionTime", 42, now)], {}))
    got = dict((v.key, v.value) for v in sink.pending())
    assert got['jmx["java.lang:type=Memory","HeapMemoryUsage.used"]'] == "123"
    assert json.loads(got["kafka.discovery.beans[jvm_gc_time]"]) == {"data": [{"{#JMXNAME}": "G1 Young Generation"}]}
    assert got['jmx["java.lang:type=GarbageCollector,name=G1 Young Generation","CollectionTime"]'] == "42.0"


def test_catalog_refuses_a_bad_nan_or_lld(tmp_path):
    text = catalog_errors(tmp_path, "metrics:\n  - {id: x, mbean: 'a:type=b', attribute: Value, role: both, "
                                    "description: d, lld: page,\n     zabbix: {name: n, value_type: FLOAT, "
                                    "component: c, nan: none}}\n")
    assert "metrics[0].lld: lld must be topic, bean or attribute" in text
    assert "metrics[0].zabbix.nan: the value stored for NaN must be a number" in text


def test_every_70_graph_widget_has_a_reference_unique_in_its_dashboard(catalog):
    """Zabbix 7.0 takes a graph prototype's time period from its widget's reference: without one the Topics
    and Consumer groups pages showed 'the parameter "from" is missing' (seen on a real 7.0.22)."""
    for version in ("6.0", "7.0"):
        doc = zabbix.render(catalog, version)["zabbix_export"]
        dashboards = [d for t in doc["templates"] for d in t.get("dashboards", [])]
        assert len(dashboards) == 8
        for d in dashboards:
            widgets = [w for p in d["pages"] for w in p["widgets"]]
            refs = [f["value"] for w in widgets for f in w["fields"] if f["name"] == "reference"]
            if version == "6.0":
                assert refs == []
            else:
                assert len(refs) == len(widgets) == len(set(refs)) and all(re.fullmatch(r"[A-Z]{5}", r) for r in refs)


def test_every_reference_uses_the_one_syntax_and_names_something(tmp_path):
    """{kind:id} everywhere (exporter/catalog/refs.py): a reference to nothing, or of a kind the place cannot use,
    is refused with its line; a consumer-group item must name a series the lag collection makes."""
    metric = ("metrics:\n  - {id: x, mbean: 'a:type=b', attribute: Value, role: broker, prometheus: a_b, description: d,\n"
              "     zabbix: {name: n, value_type: FLOAT, component: c}}\n")
    text = catalog_errors(tmp_path, metric + (
        "triggers:\n  - {id: t, scope: host, metric: x, name: T, expression: 'last({item})>0 or last({cluster:y})>0',\n"
        "     priority: WARNING, description: d,\n"
        "     alert: {name: A, expr: 'max({metric:nope}) > 0 and {metric:x} > 0 or {item:x}', severity: warning}}\n"
        "consumer_groups:\n  items:\n    - {id: g, per: group, key: k.g, prometheus: kafka_consumergroup_lagg, name: G,\n"
        "       value_type: UNSIGNED, description: d}\n"))
    assert "c.yaml:5: triggers[0].expression: {cluster:y}: a host trigger refers to items ({item:ID})" in text
    assert "triggers[0].alert.expr: {metric:nope}: no metric 'nope' with a Prometheus name" in text
    assert "triggers[0].alert.expr: {item:x} cannot be used here (allowed: {metric:ID})" in text
    assert "consumer_groups.items[0].prometheus: 'kafka_consumergroup_lagg' is not a series the exporter's lag" in text
