"""The generated templates in a real Zabbix 7.0 and 6.0: each export format imports into its server with
exactly what it declares (and the 6.0 file into 7.0, as an upgrading user does), and the trapper twin takes
the exporter's keys and raises its problems."""
import time

import pytest
import yaml
from conftest import ROOT, wait
from zabbix_utils import ItemValue, Sender

from exporter.provision import import_rules

TEMPLATES = ROOT / "templates" / "zabbix"


@pytest.fixture(scope="module")
def api(zbx_api):
    return zbx_api


def declared(path) -> dict[str, int]:
    """What a template file declares, counted as the API counts it."""
    doc = yaml.safe_load(path.read_text())["zabbix_export"]
    templates = doc["templates"]
    rules = [r for t in templates for r in t.get("discovery_rules", [])]
    return {"templates": len(templates), "items": sum(len(t.get("items", [])) for t in templates),
            "discovery rules": len(rules),
            "item prototypes": sum(len(r.get("item_prototypes", [])) for r in rules),
            "triggers": sum(len(i.get("triggers", [])) for t in templates for i in t.get("items", []))
            + len(doc.get("triggers", [])),
            "graphs": len(doc.get("graphs", [])),
            "dashboards": sum(len(t.get("dashboards", [])) for t in templates)}


def held(api, names: list[str]) -> dict[str, int]:
    ids = [t["templateid"] for t in api.template.get(filter={"host": names}, output=["templateid"])]
    count = {"countOutput": True, "templateids": ids}
    return {"templates": len(ids), "items": int(api.item.get(**count)),
            "discovery rules": int(api.discoveryrule.get(**count)),
            "item prototypes": int(api.itemprototype.get(**count)),
            "triggers": int(api.trigger.get(**count)), "graphs": int(api.graph.get(**count)),
            "dashboards": int(api.templatedashboard.get(**count))}


def test_each_format_imports_exactly_what_it_declares(api, zbx):
    path = TEMPLATES / f"kafka-4x-{zbx.version}.yaml"
    names = [t["template"] for t in yaml.safe_load(path.read_text())["zabbix_export"]["templates"]]
    assert held(api, names) == declared(path)
    # importing again changes nothing and raises nothing
    assert api.configuration["import"](format="yaml", source=path.read_text(), rules=import_rules(api.api_version())) is True
    assert held(api, names) == declared(path)


def test_the_60_file_imports_into_70_as_an_upgrading_user_does(zabbix70, zabbix70_api):
    """Zabbix 7.0 converts the 6.0 export on import: the same objects, under the same names."""
    old, new = TEMPLATES / "kafka-4x-6.0.yaml", TEMPLATES / "kafka-4x-7.0.yaml"
    names = [t["template"] for t in yaml.safe_load(old.read_text())["zabbix_export"]["templates"]]
    assert zabbix70_api.configuration["import"](format="yaml", source=old.read_text(), rules=import_rules(zabbix70_api.api_version())) is True
    assert held(zabbix70_api, names) == declared(old) == declared(new)
    assert zabbix70_api.configuration["import"](format="yaml", source=new.read_text(), rules=import_rules(zabbix70_api.api_version())) is True


def test_templates_import_with_every_item_and_trigger(api, zbx):
    names = {t["name"]: t["templateid"] for t in api.template.get(search={"name": "Apache Kafka 4.x"}, output=["name"])}
    assert {"Apache Kafka 4.x by JMX", "Apache Kafka 4.x broker by JMX", "Apache Kafka 4.x controller by JMX",
            "Apache Kafka 4.x by trapper", "Apache Kafka 4.x broker by trapper", "Apache Kafka 4.x controller by trapper",
            "Apache Kafka 4.x cluster"} <= set(names)
    items = api.item.get(templateids=[names["Apache Kafka 4.x broker by JMX"]], inherited=False, output=["key_"])
    assert any(i["key_"] == 'jmx["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions","Value"]' for i in items)
    triggers = api.trigger.get(templateids=list(names.values()), output=["description"])
    assert len(triggers) >= 6 * 5 + 7


def test_trapper_twin_receives_values_and_raises_problems(api, zbx):
    group = api.hostgroup.create(name=f"Kafka trapper test {time.time_ns()}")["groupids"][0]
    tpl = api.template.get(filter={"host": "Apache Kafka 4.x broker by trapper"}, output=["templateid"])[0]["templateid"]
    host = f"t-broker-{time.time_ns()}"
    api.host.create(host=host, groups=[{"groupid": group}], templates=[{"templateid": tpl}])
    zbx.reload_config_cache()
    key = 'jmx["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions","Value"]'
    sender = Sender(server="127.0.0.1", port=zbx.server_port)

    def send():
        response = sender.send([ItemValue(host, key, 3, int(time.time()))])
        return response.processed == 1 and response
    assert wait(send, 60), "the trapper never accepted the value (configuration cache not refreshed?)"
    item = wait(lambda: [i for i in api.item.get(host=host, filter={"key_": key}, output=["lastvalue"])
                         if i["lastvalue"] == "3"], 60)
    assert item
    problems = wait(lambda: api.problem.get(hostids=api.host.get(filter={"host": host})[0]["hostid"], output=["name"]),
                    60)
    assert problems and any("under replicated partitions" in p["name"] for p in problems)
