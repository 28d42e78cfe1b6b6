"""The exporter's Zabbix side against a real Zabbix (7.0 and 6.0; the demo, TLS-PSK and a refused discovery on
6.0): trapper values with the JMX template's keys, topic discovery, the cluster template's aggregate
trigger, refused values named, and a spool that survives an outage."""
import time

import pytest
from conftest import make_cluster, wait

from exporter.catalog.model import load_catalog
from exporter.collector import TargetWorker
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_jmx.embedded import embedded_targets

ABC = 'jmx["kafka.controller:type=KafkaController,name=ActiveBrokerCount","Value"]'


@pytest.fixture
def provisioned(zbx, zbx_api):
    """Hosts for a 3-broker, 1-controller embedded cluster, and the cluster host."""
    api = zbx_api
    name = f"k{time.time_ns() % 10**10}"
    group = api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = {t["host"]: t["templateid"] for t in api.template.get(search={"host": "Apache Kafka 4.x"}, output=["host"])}
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),),
                     config={"offsets.topic.replication.factor": 3})
    for node in c.servers.values():
        template = "Apache Kafka 4.x broker by trapper" if node.role == "broker" else "Apache Kafka 4.x controller by trapper"
        api.host.create(host=f"{name}-{node.name}", groups=[{"groupid": group}], templates=[{"templateid": tpl[template]}])
    api.host.create(host=f"{name}-cluster", groups=[{"groupid": group}],
                    templates=[{"templateid": tpl["Apache Kafka 4.x cluster"]}],
                    macros=[{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": f"Kafka {name}"},
                            {"macro": "{$KAFKA.BROKERS.MIN}", "value": "3"},
                            {"macro": "{$KAFKA.INTERVAL}", "value": "2s"}])
    zbx.reload_config_cache()
    time.sleep(3)
    return c, name


def collect(workers):
    for w in workers:
        w.collect_once()


def lastvalue(api, host, key):
    items = api.item.get(host=host, filter={"key_": key}, output=["lastvalue", "lastclock"])
    return items[0] if items else None


def test_values_topics_and_the_brokers_below_minimum_trigger(zbx, zbx_api, provisioned):
    api = zbx_api
    c, name = provisioned
    sink = TrapperSink("127.0.0.1", zbx.server_port, load_catalog(), name, host_name="{cluster}-{node}",
                       lld_settle_s=3.0)
    sink.start()
    workers = [TargetWorker(t, builtin_rules(), lambda w: None, sink.offer) for t in embedded_targets(c)]
    try:
        p = c.producer("p")
        for i in range(30):
            p.send("orders", i, key=str(i).encode())
        c.run_for(5_000)
        collect(workers)
        assert wait(lambda: (lastvalue(api, f"{name}-controller-1001", ABC) or {}).get("lastvalue") == "3", 90)
        unsupported = api.item.get(search={"host": name}, filter={"state": 1}, output=["key_", "error"],
                                   selectHosts=["host"])
        assert sink.refused == 0, f"Zabbix refused values: {unsupported}"
        # topic discovery made the per-topic items from the LLD JSON sent before their values
        leader = c.active_controller().image.partition("orders", 0).leader
        topic_key = 'jmx["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders","Count"]'
        assert wait(lambda: lastvalue(api, f"{name}-broker-{leader}", topic_key), 60)
        zbx.reload_config_cache()
        time.sleep(4)                    # past lld_settle_s: the per-topic values go out now
        collect(workers)
        time.sleep(1.1)
        collect(workers)                 # a per-second item stores its first value from the second one
        assert wait(lambda: (lastvalue(api, f"{name}-broker-{leader}", topic_key) or {}).get("lastclock", "0") != "0",
                    90)
        assert sink.refused == 0
        # each broker's registration state, discovered on the controller host (Kafka 4.1's per-broker gauge)
        registration = 'jmx["kafka.controller:type=KafkaController,name=BrokerRegistrationState,broker=2","Value"]'
        assert wait(lambda: (collect(workers), (lastvalue(api, f"{name}-controller-1001", registration) or {})
                             .get("lastvalue"))[1] == "30", 90)
        assert sink.refused == 0
        # the seed's alert: a broker dies, ActiveBrokerCount 3 -> 2 < {$KAFKA.BROKERS.MIN}
        cluster_host = api.host.get(filter={"host": f"{name}-cluster"}, output=["hostid"])[0]["hostid"]
        assert not api.problem.get(hostids=[cluster_host], output=["name"])
        c.kill("broker-3")
        c.run_for(12_000)
        collect(workers)
        problems = wait(lambda: [p for p in api.problem.get(hostids=[cluster_host], output=["name"])
                                 if "active brokers" in p["name"]], 90)
        assert problems and problems[0]["name"] == f"Kafka {name}: only 2 active brokers"
    finally:
        sink.stop()


def test_no_controller_reports_data_when_the_controllers_stop_reporting(zbx, zbx_api):
    """The cluster host's count of controllers reporting falls to 0 once none has a value within the window,
    and its trigger fires: on 6.0 a host without values leaves count_foreach, on 7.0 it stays in with a count
    of 0, and the 7.0 template skips those (before, the trigger never fired on 7.0)."""
    from zabbix_utils import ItemValue, Sender
    api = zbx_api
    name = f"nc{time.time_ns() % 10**10}"
    group = api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = {t["host"]: t["templateid"] for t in api.template.get(search={"host": "Apache Kafka 4.x"}, output=["host"])}
    controller = api.host.create(host=f"{name}-controller-1001", groups=[{"groupid": group}],
                                 templates=[{"templateid": tpl["Apache Kafka 4.x controller by trapper"]}])
    cluster = api.host.create(host=f"{name}-cluster", groups=[{"groupid": group}],
                              templates=[{"templateid": tpl["Apache Kafka 4.x cluster"]}],
                              macros=[{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": f"Kafka {name}"},
                                      {"macro": "{$KAFKA.INTERVAL}", "value": "2s"},
                                      {"macro": "{$KAFKA.AGGREGATE.PERIOD}", "value": "10s"}])
    hostids = [controller["hostids"][0], cluster["hostids"][0]]
    zbx.reload_config_cache()
    time.sleep(3)
    key = 'jmx["kafka.controller:type=KafkaController,name=ActiveControllerCount","Value"]'
    sender = Sender(server="127.0.0.1", port=zbx.server_port)

    def reporting() -> str | None:
        [item] = api.item.get(hostids=hostids[1:], filter={"key_": "kafka.cluster.controllers_reporting"},
                              output=["lastvalue", "lastclock", "state", "error"])
        assert item["state"] == "0", item["error"]
        return item["lastvalue"] if item["lastclock"] != "0" else None

    def no_controller() -> list:
        return api.problem.get(hostids=hostids[1:], search={"name": "no controller reports data"}, output=["name"])
    try:
        until = time.monotonic() + 12
        while time.monotonic() < until:
            assert sender.send([ItemValue(f"{name}-controller-1001", key, "1")]).processed == 1
            time.sleep(1)
        assert wait(lambda: reporting() == "1", 30), reporting()
        assert no_controller() == []
        assert wait(lambda: reporting() == "0", 40), reporting()     # the window is 10 s
        assert wait(no_controller, 30)
    finally:
        api.host.delete(*hostids)
        api.hostgroup.delete(group)


def test_combined_nodes_feed_the_combined_trapper_template(zbx, zbx_api):
    """Three combined nodes (process.roles=broker,controller) on "Apache Kafka 4.x by trapper": the exporter pushes
    both roles' items to each host, Zabbix takes every value (none refused, no item unsupported), the controller
    side (ActiveBrokerCount, the cluster host's aggregate) and the broker side (partitions, topics) both fill."""
    from exporter.catalog.zabbix import TEMPLATE_NAMES
    api = zbx_api
    name = f"cb{time.time_ns() % 10**10}"
    group = api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = {t["host"]: t["templateid"] for t in api.template.get(search={"host": "Apache Kafka 4.x"}, output=["host"])}
    c = make_cluster(brokers=0, controllers=0, combined=3, topics=(("orders", 3, 3, 2),),
                     config={"offsets.topic.replication.factor": 3})
    for node in c.servers.values():
        api.host.create(host=f"{name}-{node.name}", groups=[{"groupid": group}],
                        templates=[{"templateid": tpl[TEMPLATE_NAMES[("trapper", node.role)]]}])
    api.host.create(host=f"{name}-cluster", groups=[{"groupid": group}],
                    templates=[{"templateid": tpl["Apache Kafka 4.x cluster"]}],
                    macros=[{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": f"Kafka {name}"},
                            {"macro": "{$KAFKA.BROKERS.MIN}", "value": "3"}, {"macro": "{$KAFKA.INTERVAL}", "value": "2s"}])
    hostids = [h["hostid"] for h in api.host.get(groupids=[group], output=["hostid"])]
    zbx.reload_config_cache()
    time.sleep(3)
    sink = TrapperSink("127.0.0.1", zbx.server_port, load_catalog(), name, host_name="{cluster}-{node}",
                       lld_settle_s=3.0)
    sink.start()
    workers = [TargetWorker(t, builtin_rules(), lambda w: None, sink.offer) for t in embedded_targets(c)]
    partitions = 'jmx["kafka.server:type=ReplicaManager,name=PartitionCount","Value"]'
    try:
        assert {t.role for t in embedded_targets(c)} == {"combined"}
        c.run_for(5_000)
        assert wait(lambda: (collect(workers), [(lastvalue(api, f"{name}-combined-{i}", ABC) or {}).get("lastvalue")
                                                for i in (1, 2, 3)])[1] == ["3"] * 3, 90)
        assert wait(lambda: all(float((lastvalue(api, f"{name}-combined-{i}", partitions) or {}).get("lastvalue") or 0)
                                >= 3 for i in (1, 2, 3)), 60)
        assert wait(lambda: (collect(workers), (lastvalue(api, f"{name}-cluster", "kafka.cluster.active_brokers")
                                                or {}).get("lastvalue"))[1] == "3", 90)
        assert sink.refused == 0
        assert api.item.get(hostids=hostids, filter={"state": 1}, output=["key_", "error"]) == []
        assert api.problem.get(hostids=hostids, output=["name"]) == []
    finally:
        sink.stop()
        api.host.delete(*hostids)
        api.hostgroup.delete(group)


def test_spooled_values_survive_a_zabbix_outage(zbx, zbx_api, provisioned):
    api = zbx_api
    c, name = provisioned
    sink = TrapperSink("127.0.0.1", zbx.server_port, load_catalog(), name, host_name="{cluster}-{node}",
                       spool_limit=10_000)
    sink.start()
    controller = [t for t in embedded_targets(c) if t.role == "controller"]
    worker = TargetWorker(controller[0], builtin_rules(), lambda w: None, sink.offer)
    try:
        worker.collect_once()
        assert wait(lambda: sink.spooled == 0 and sink.sent > 0, 30)
        zbx.stop_server()
        c.kill("broker-2")
        c.run_for(12_000)
        worker.collect_once()
        outage_clock = int(time.time())
        assert wait(lambda: sink.last_error, 10), "the sender did not notice the outage"
        assert sink.spooled > 0
        time.sleep(3)
        zbx.start_server()
        assert wait(lambda: sink.spooled == 0, 90), f"still {sink.spooled} spooled: {sink.last_error}"
        itemid = api.item.get(host=f"{name}-controller-1001", filter={"key_": ABC})[0]["itemid"]
        during = wait(lambda: [h for h in api.history.get(itemids=[itemid], history=3, time_from=outage_clock - 30,
                                                          output="extend") if h["value"] == "2"], 30)
        assert during, "the value collected during the outage never reached Zabbix"
        assert int(during[0]["clock"]) <= outage_clock           # the clock of collection, not of delivery
        assert sink.dropped == 0
    finally:
        sink.stop()
        if "zabbix_server" not in zbx.pids:
            zbx.start_server()


def test_refused_values_are_named_with_their_reason_once_and_the_rest_delivered(zbx, zbx_api, provisioned, caplog):
    """Zabbix answers a batch with counts only: the keys of a batch it refused part of go alone until the
    refused one is known, which is then named (once an hour), and an unknown host is named as such."""
    from zabbix_utils import ItemValue
    _c, name = provisioned
    host = f"{name}-controller-1001"
    sink = TrapperSink("127.0.0.1", zbx.server_port, load_catalog(), name, host_name="{cluster}-{node}")
    with caplog.at_level("WARNING"):
        for round_ in range(3):
            now = int(time.time()) + round_         # each round's value its own clock: the last is the newest
            sink.enqueue([ItemValue(host, ABC, str(3 + round_), now), ItemValue(host, "no.such.item", "1", now),
                           ItemValue(f"{name}-nowhere", ABC, "1", now)])
            while sink.flush_once():
                pass
    assert (sink.sent, sink.refused, sink.spooled) == (3, 6, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings         # each named once, not at every batch
    assert any(f"Zabbix refused {host}:no.such.item = '1': host {host!r} has no enabled trapper item" in w
               for w in warnings), warnings
    assert any(f"Zabbix refused every value for host '{name}-nowhere'" in w and "kafka-jmx zabbix provision" in w
               and "zabbix.host_name" in w for w in warnings), warnings
    assert wait(lambda: (lastvalue(zbx_api, host, ABC) or {}).get("lastvalue") == "5", 30)


def test_demo_creates_its_zabbix_hosts_and_pushes_values(zabbix, zabbix_api, tmp_path):
    """`kafka-jmx demo --zabbix-server --zabbix-url`: hosts provisioned, values arrive, status shown."""
    import os
    import subprocess
    import sys

    from jvm_support import free_port_block
    name = f"demo{time.time_ns() % 10**9}"
    scenario = tmp_path / "demo.yaml"
    scenario.write_text("cluster: {brokers: 3, controllers: 1, seed: 2}\nrun_for: 10m\n")
    base = free_port_block(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafka_jmx", "demo", "--scenario", str(scenario), "--duration", "40s", "--no-jmx",
         "--metrics-listen", f"127.0.0.1:{base}", "--control-listen", f"127.0.0.1:{base + 1}", "--cluster", name,
         "--zabbix-server", f"127.0.0.1:{zabbix.server_port}", "--zabbix-url", zabbix.api_url,
         "--zabbix-password-env", "DEMO_ZABBIX_PASSWORD"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DEMO_ZABBIX_PASSWORD": "zabbix", "COLUMNS": "200"})
    try:
        expected = {f"{name}-{n}" for n in ("broker-1", "broker-2", "broker-3", "controller-1001", "cluster")}

        def hosts() -> set[str]:
            groups = zabbix_api.hostgroup.get(filter={"name": f"Kafka {name}"})
            return {h["host"] for h in zabbix_api.host.get(groupids=[g["groupid"] for g in groups], output=["host"])} \
                if groups else set()
        assert wait(lambda: hosts() == expected, 30), hosts()
        zabbix.reload_config_cache()
        abc = wait(lambda: (lastvalue(zabbix_api, f"{name}-controller-1001", ABC) or {}).get("lastvalue") == "3", 40)
        state = wait(lambda: (lastvalue(zabbix_api, f"{name}-broker-2", 'jmx["kafka.server:type=KafkaServer,'
                                        'name=BrokerState","Value"]') or {}).get("lastvalue") == "3", 10)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert abc and state
    # values sent before the configuration cache knew the new hosts are refused, and counted
    [status] = [line for line in out.splitlines() if line.startswith(f"Zabbix 127.0.0.1:{zabbix.server_port}: sent ")]
    assert int(status.split()[3]) > 100, status


def test_tls_psk_values_reach_a_host_that_accepts_only_psk(zabbix, zabbix_api):
    """A host whose connections must be PSK-encrypted: the sink with the PSK is accepted, without it refused."""
    import secrets

    from zabbix_utils import ItemValue
    name = f"psk{time.time_ns() % 10**9}"
    key_hex = secrets.token_hex(32)
    group = zabbix_api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = zabbix_api.template.get(filter={"host": "Apache Kafka 4.x controller by trapper"})[0]["templateid"]
    zabbix_api.host.create(host=f"{name}-c1", groups=[{"groupid": group}], templates=[{"templateid": tpl}],
                           tls_accept=2, tls_psk_identity=f"{name} identity", tls_psk=key_hex)
    zabbix.reload_config_cache()
    time.sleep(3)
    with_psk = TrapperSink("127.0.0.1", zabbix.server_port, load_catalog(), name, psk=(f"{name} identity", key_hex))
    plain = TrapperSink("127.0.0.1", zabbix.server_port, load_catalog(), name)
    for sink, value in ((plain, 4), (with_psk, 3)):
        sink.enqueue([ItemValue(f"{name}-c1", ABC, value, int(time.time()))])
        sink.flush_once()
    assert with_psk.sent == 1 and with_psk.refused == 0, with_psk.last_error
    assert plain.sent == 0, "Zabbix took an unencrypted value for a PSK-only host"
    assert wait(lambda: (lastvalue(zabbix_api, f"{name}-c1", ABC) or {}).get("lastvalue") == "3", 30)


def test_refused_topic_discovery_is_sent_again_and_topic_values_wait_for_it(zabbix, zabbix_api):
    """A host created after the server's last configuration sync: its discovery is refused at first,
    resent with the next collection once Zabbix knows the host, and the topic's values follow."""
    name = f"lld{time.time_ns() % 10**9}"
    c = make_cluster(brokers=1, controllers=1, topics=(("orders", 1, 1, 1),), config={"offsets.topic.replication.factor": 1})
    sink = TrapperSink("127.0.0.1", zabbix.server_port, load_catalog(), name, host_name="{cluster}-{node}",
                       lld_settle_s=1.0)
    [broker] = [t for t in embedded_targets(c) if t.role == "broker"]
    rules = builtin_rules()
    worker = TargetWorker(broker, rules, lambda w: None, sink.offer)
    p = c.producer("p")
    for i in range(10):
        p.send("orders", i)
    c.run_for(3_000)
    # the rules learn this broker's attributes first, so the push below follows the host's creation
    # closely, before any configuration sync of the server can let it in
    TargetWorker(broker, rules, lambda w: None).collect_once()
    group = zabbix_api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = zabbix_api.template.get(filter={"host": "Apache Kafka 4.x broker by trapper"})[0]["templateid"]
    zabbix_api.host.create(host=f"{name}-broker-1", groups=[{"groupid": group}], templates=[{"templateid": tpl}])
    worker.collect_once()               # before any configuration sync: the server refuses all of it
    while sink.flush_once():
        pass
    assert sink.sent == 0 and sink.refused > 0
    zabbix.reload_config_cache()
    time.sleep(3)
    topic_key = 'jmx["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders","Count"]'
    for _ in range(2):                  # discovery again; then, past the settle time, the topic's values
        worker.collect_once()
        while sink.flush_once():
            pass
        assert wait(lambda: zabbix_api.item.get(host=f"{name}-broker-1", filter={"key_": topic_key}), 60)
        zabbix.reload_config_cache()
        time.sleep(3)
    refused = sink.refused
    worker.collect_once()
    while sink.flush_once():
        pass
    assert sink.refused == refused, "topic values were refused after their discovery"
    assert wait(lambda: (lastvalue(zabbix_api, f"{name}-broker-1", topic_key) or {}).get("lastclock", "0") != "0", 30)
