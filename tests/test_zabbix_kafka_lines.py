"""Every tested Kafka line in the real Zabbix 7.0 through its Java gateway: a healthy cluster leaves no JMX item or
discovery rule unsupported and no trigger unknown. The newest line with separate controllers and brokers (4.1,
the default line, is proven the same way in test_end_to_end_real_kafka.py, with its faults), and both lines with
three combined nodes (process.roles=broker,controller) on the "Apache Kafka 4.x by JMX" template."""
import time

import pytest
from conftest import wait
from jvm_support import healthy_topic, kafka_port_block, require_real_kafka
from zabbix_stack import jmx_hosts, settled, unknown_triggers, unsupported

from realkafka.cluster import RealCluster
from realkafka.install import DEFAULT_LINE, LINES

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

TOPOLOGIES = {"separate": {"brokers": 3, "controllers": 3}, "combined": {"brokers": 0, "controllers": 0, "combined": 3}}


@pytest.mark.parametrize("line,topology", [(line, "separate") for line in LINES if line != DEFAULT_LINE]
                         + [(line, "combined") for line in LINES])
def test_a_healthy_cluster_of_each_line_has_no_unsupported_item_nor_unknown_trigger(line, topology, zabbix70,
                                                                                     zabbix70_api):
    require_real_kafka(line)
    api = zabbix70_api
    base = kafka_port_block()
    cluster = RealCluster(line, jmx_base_port=base, kafka_base_port=base + 8, **TOPOLOGIES[topology])
    hostids: list[str] = []
    try:
        cluster.start()
        healthy_topic(cluster.bootstrap_servers())
        name = f"line{line.replace('.', '')}{topology[0]}{time.time_ns() % 10**8}"
        hostids = jmx_hosts(api, zabbix70, name, {n: (node.role, node.jmx_port) for n, node in cluster.nodes.items()},
                            {"{$KAFKA.BROKERS.MIN}": "3", "{$KAFKA.INTERVAL}": "2s", "{$KAFKA.AGGREGATE.PERIOD}": "15s"})
        assert settled(api, hostids, "healthy")
        assert unsupported(api, hostids) == []
        key = 'jmx["kafka.controller:type=KafkaController,name=ActiveBrokerCount","Value"]'
        assert [i["lastvalue"] for i in api.item.get(hostids=hostids, filter={"key_": key}, output=["lastvalue"])] \
            == ["3"] * 3
        assert wait(lambda: api.item.get(hostids=hostids, filter={"key_": "kafka.cluster.active_brokers"},
                                         output=["lastvalue"])[0]["lastvalue"] == "3", 60)
        assert unknown_triggers(api, hostids) == []
        assert api.problem.get(hostids=hostids, output=["name"]) == []
    finally:
        if hostids:
            api.host.delete(*hostids)
        cluster.stop()
