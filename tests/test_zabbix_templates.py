"""The generated templates in a real Zabbix 6.0: they import, and the trapper twin takes the
exporter's keys and raises its problems."""
import time

import pytest
from conftest import ROOT, wait
from zabbix_stack import IMPORT_RULES
from zabbix_utils import ItemValue, Sender

TEMPLATES_60 = ROOT / "templates" / "zabbix" / "kafka-4x-6.0.yaml"
@pytest.fixture(scope="module")
def api(zabbix_api):
    return zabbix_api


def test_templates_import_with_every_item_and_trigger(api, zabbix):
    names = {t["name"]: t["templateid"] for t in api.template.get(search={"name": "Apache Kafka 4.x"}, output=["name"])}
    assert {"Apache Kafka 4.x by JMX", "Apache Kafka 4.x broker by JMX", "Apache Kafka 4.x controller by JMX",
            "Apache Kafka 4.x by trapper", "Apache Kafka 4.x broker by trapper", "Apache Kafka 4.x controller by trapper",
            "Apache Kafka 4.x cluster"} <= set(names)
    items = api.item.get(templateids=[names["Apache Kafka 4.x broker by JMX"]], inherited=False, output=["key_"])
    assert any(i["key_"] == 'jmx["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions","Value"]' for i in items)
    triggers = api.trigger.get(templateids=list(names.values()), output=["description"])
    assert len(triggers) >= 6 * 5 + 7
    # importing again changes nothing and raises nothing
    assert api.configuration["import"](format="yaml", source=TEMPLATES_60.read_text(), rules=IMPORT_RULES) is True


def test_trapper_twin_receives_values_and_raises_problems(api, zabbix):
    group = api.hostgroup.create(name=f"Kafka trapper test {time.time_ns()}")["groupids"][0]
    tpl = api.template.get(filter={"host": "Apache Kafka 4.x broker by trapper"}, output=["templateid"])[0]["templateid"]
    host = f"t-broker-{time.time_ns()}"
    api.host.create(host=host, groups=[{"groupid": group}], templates=[{"templateid": tpl}])
    zabbix.reload_config_cache()
    key = 'jmx["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions","Value"]'
    sender = Sender(server="127.0.0.1", port=zabbix.server_port)

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
