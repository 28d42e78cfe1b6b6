"""Combined nodes (process.roles=broker,controller) of real Apache Kafka against the embedded cluster's, on both
tested lines: the same scenario on both engines, every node's MBeanInfo diffed (realkafka/conformance.py),
the cluster signals compared healthy and with a node lost."""
import pytest
from jvm_support import kafka_port_block, require_real_kafka

from realkafka import conformance
from realkafka.install import LINES

SCENARIO = """
cluster: {combined: 3}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 100, acks: all, keys: 20}
  - {consumer_group: billing, topic: orders, members: 2}
# a broker and a voter at once: every partition under-replicated, wherever its leader is (a second loss would
# leave the count of one survivor's leaderships, which each engine places its own way)
timeline:
  - {at: 1s, kill: combined-3}
run_for: 60s
"""
FLOOR = 0.95


@pytest.mark.parametrize("version", LINES)
@pytest.mark.services
def test_combined_nodes_conform_to_real_kafkas(version, tmp_path):
    require_real_kafka(version)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    diffs = conformance.run(str(scenario), version, warmup_s=30.0, base_port=kafka_port_block())
    [d] = diffs
    assert d.role == "combined"
    assert d.invented == [] and d.types == [], (d.invented[:10], d.types[:10])
    assert d.coverage >= FLOOR, (d.coverage, d.missing[:20])
    # both roles' signals, from the one process per node: healthy and with combined-3 gone
    assert d.signals == [], d.signals
    # and after each fault, nothing the real nodes have dropped (a dead leader's fetcher metrics, ...)
    assert d.invented_after == [], d.invented_after[:10]
