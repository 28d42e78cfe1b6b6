"""kafka-jmx zabbix provision against a real Zabbix 7.0 and 6.0: hosts, interfaces, templates, macros; idempotent
(a re-run updates in place: 7.0's host.get returns only the fields asked for)."""
import time

from kafka_jmx.cli import main


def test_provision_creates_and_updates_hosts(zbx, zbx_api, monkeypatch, capsys):
    monkeypatch.setenv("ZBX_PW", "zabbix")
    cluster = f"p{time.time_ns() % 10**8}"
    url = zbx.api_url.replace("/api_jsonrpc.php", "/")
    args = ["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", cluster,
            "--node", "controller-1001=controller@127.0.0.1:9990", "--node", "broker-1=broker@127.0.0.1:9991",
            "--node", "combined-2=combined@127.0.0.1:9992", "--brokers-min", "1", "--interval", "10s"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{cluster}-broker-1" in out and f"{cluster}-cluster" in out
    api = zbx_api
    host = api.host.get(filter={"host": f"{cluster}-broker-1"}, selectParentTemplates=["host"],
                        selectInterfaces=["type", "port"], selectMacros=["macro", "value"])[0]
    assert [t["host"] for t in host["parentTemplates"]] == ["Apache Kafka 4.x broker by JMX"]
    assert [(i["type"], i["port"]) for i in host["interfaces"]] == [("4", "9991")]
    # a node with process.roles=broker,controller: the template with both roles' items
    combined = api.host.get(filter={"host": f"{cluster}-combined-2"}, selectParentTemplates=["host"])[0]
    assert [t["host"] for t in combined["parentTemplates"]] == ["Apache Kafka 4.x by JMX"]
    cl = api.host.get(filter={"host": f"{cluster}-cluster"}, selectMacros=["macro", "value"])[0]
    assert {m["macro"]: m["value"] for m in cl["macros"]}["{$KAFKA.CLUSTER.GROUP}"] == f"Kafka {cluster}"
    # again, with a new port: updated in place, no duplicate host
    args[args.index("broker-1=broker@127.0.0.1:9991")] = "broker-1=broker@127.0.0.1:9999"
    assert main(args) == 0
    hosts = api.host.get(filter={"host": f"{cluster}-broker-1"}, selectInterfaces=["port"])
    assert len(hosts) == 1 and hosts[0]["interfaces"][0]["port"] == "9999"
    # the same nodes pushed by the exporter instead: the trapper templates replace the JMX ones, and the
    # items (the same keys) are kept with their history, now the trapper template's
    urp = 'jmx["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions","Value"]'
    [before] = api.item.get(host=f"{cluster}-broker-1", filter={"key_": urp}, output=["itemid", "type"])
    assert main(args + ["--transport", "trapper"]) == 0
    host = api.host.get(filter={"host": f"{cluster}-broker-1"}, selectParentTemplates=["host"])[0]
    assert [t["host"] for t in host["parentTemplates"]] == ["Apache Kafka 4.x broker by trapper"]
    combined = api.host.get(filter={"host": f"{cluster}-combined-2"}, selectParentTemplates=["host"])[0]
    assert [t["host"] for t in combined["parentTemplates"]] == ["Apache Kafka 4.x by trapper"]
    [after] = api.item.get(host=f"{cluster}-broker-1", filter={"key_": urp}, output=["itemid", "type", "templateid"])
    assert after["itemid"] == before["itemid"] and (before["type"], after["type"]) == ("16", "2")
    assert main(args + ["--transport", "trapper"]) == 0        # and again: nothing left to replace


def test_provision_reports_api_errors(zabbix, monkeypatch, capsys):
    monkeypatch.setenv("ZBX_PW", "wrong")
    url = zabbix.api_url.replace("/api_jsonrpc.php", "/")
    assert main(["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", "x",
                 "--node", "b=broker@127.0.0.1:1"]) == 1
    assert "Zabbix API login as 'Admin'" in capsys.readouterr().err


def test_export_format_per_server_version():
    from exporter.provision import export_format
    assert [export_format(v) for v in ("6.0.14", "6.2.9", "6.4.21", "7.0.0", "7.4.2", "8.0.0", "8.2.1")] == \
        ["6.0", "6.0", "6.0", "7.0", "7.0", "8.0", "8.0"]


def test_provision_migrates_a_host_from_zabbixs_bundled_kafka_template(zbx, zbx_api, monkeypatch, capsys):
    """A host monitored by the 'Apache Kafka by JMX' template Zabbix ships: refused without --migrate-from
    (the keys clash), taken over with it: the old template unlinked and cleared, ours linked, with its
    graphs and dashboard."""
    api = zbx_api
    monkeypatch.setenv("ZBX_PW", "zabbix")
    n = time.time_ns() % 10**8
    [old] = api.template.get(filter={"host": "Apache Kafka by JMX"}, output=["templateid"])
    group = api.hostgroup.create(name=f"legacy {n}")["groupids"][0]
    legacy = f"legacy-kafka-{n}"
    hostid = api.host.create(host=legacy, groups=[{"groupid": group}], templates=[{"templateid": old["templateid"]}],
                             interfaces=[{"type": 4, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": "9991"}]
                             )["hostids"][0]
    old_keys = {i["key_"] for i in api.item.get(hostids=[hostid], output=["key_"])}
    assert len(old_keys) > 30
    url = zbx.api_url.replace("/api_jsonrpc.php", "/")
    args = ["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", f"m{n}",
            "--node", f"broker-1=broker@127.0.0.1:9992/{legacy}"]
    assert main(args) == 1
    assert "pass --migrate-from 'Apache Kafka by JMX'" in capsys.readouterr().err
    assert main(args + ["--migrate-from", "Apache Kafka by JMX"]) == 0
    host = api.host.get(hostids=[hostid], selectParentTemplates=["host"], selectInterfaces=["type", "port"])[0]
    assert [t["host"] for t in host["parentTemplates"]] == ["Apache Kafka 4.x broker by JMX"]
    assert [(i["type"], i["port"]) for i in host["interfaces"]] == [("4", "9992")]
    # cleared, not merely unlinked: every item on the host is now one of our template's
    items = api.item.get(hostids=[hostid], output=["key_", "templateid"])
    assert items and all(i["templateid"] != "0" for i in items)
    assert old_keys - {i["key_"] for i in items}          # the bundled template's own items are gone
    [ours] = api.template.get(filter={"host": "Apache Kafka 4.x broker by JMX"}, output=["templateid"])
    assert len(api.graph.get(templateids=[ours["templateid"]], output=["name"])) >= 10
    [board] = api.templatedashboard.get(templateids=[ours["templateid"]], selectPages="extend")
    assert [p["name"] for p in board["pages"]] == ["Quorum", "Broker", "Requests", "Topics"]
    assert main(["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", "x",
                 "--node", "b=broker@127.0.0.1:1", "--migrate-from", "No such template"]) == 1
    assert "--migrate-from: no template named 'No such template'" in capsys.readouterr().err
