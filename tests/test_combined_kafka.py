"""Combined nodes (process.roles=broker,controller) of real Apache Kafka against the embedded cluster's, on both
tested lines: the same scenario on both engines, every node's MBeanInfo diffed (realkafka/conformance.py),
the cluster signals compared healthy and with a node lost."""
import pytest
from jvm_support import assert_conforms

from realkafka.install import LINES

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

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


@pytest.mark.parametrize("version", LINES)
@pytest.mark.services
def test_combined_nodes_conform_to_real_kafkas(version, tmp_path):
    assert_conforms(SCENARIO, version, tmp_path, {"combined"})
