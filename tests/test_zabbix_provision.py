"""kafka-jmx zabbix provision against a real Zabbix 6.0: hosts, interfaces, templates, macros; idempotent."""
import time

from kafka_jmx.cli import main


def test_provision_creates_and_updates_hosts(zabbix, zabbix_api, monkeypatch, capsys):
    monkeypatch.setenv("ZBX_PW", "zabbix")
    cluster = f"p{time.time_ns() % 10**8}"
    url = zabbix.api_url.replace("/api_jsonrpc.php", "/")
    args = ["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", cluster,
            "--node", "controller-1001=controller@127.0.0.1:9990", "--node", "broker-1=broker@127.0.0.1:9991",
            "--brokers-min", "1", "--interval", "10s"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{cluster}-broker-1" in out and f"{cluster}-cluster" in out
    api = zabbix_api
    host = api.host.get(filter={"host": f"{cluster}-broker-1"}, selectParentTemplates=["host"],
                        selectInterfaces=["type", "port"], selectMacros=["macro", "value"])[0]
    assert [t["host"] for t in host["parentTemplates"]] == ["Apache Kafka 4.x broker by JMX"]
    assert [(i["type"], i["port"]) for i in host["interfaces"]] == [("4", "9991")]
    cl = api.host.get(filter={"host": f"{cluster}-cluster"}, selectMacros=["macro", "value"])[0]
    assert {m["macro"]: m["value"] for m in cl["macros"]}["{$KAFKA.CLUSTER.GROUP}"] == f"Kafka {cluster}"
    # again, with a new port: updated in place, no duplicate host
    args[args.index("broker-1=broker@127.0.0.1:9991")] = "broker-1=broker@127.0.0.1:9999"
    assert main(args) == 0
    hosts = api.host.get(filter={"host": f"{cluster}-broker-1"}, selectInterfaces=["port"])
    assert len(hosts) == 1 and hosts[0]["interfaces"][0]["port"] == "9999"


def test_provision_reports_api_errors(zabbix, monkeypatch, capsys):
    monkeypatch.setenv("ZBX_PW", "wrong")
    url = zabbix.api_url.replace("/api_jsonrpc.php", "/")
    assert main(["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", "x",
                 "--node", "b=broker@127.0.0.1:1"]) == 1
    assert "Zabbix API login as 'Admin'" in capsys.readouterr().err
