"""The embedded cluster against real Apache Kafka (both tested lines): the same scenario on both
engines, every node's MBeanInfo read over JMX and diffed per role (realkafka/conformance.py)."""
import pytest
from jvm_support import assert_conforms

from realkafka import conformance
from realkafka.install import LINES

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

SCENARIO = """
cluster: {brokers: 3, controllers: 3}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 100, acks: all, keys: 20}
  - {consumer_group: billing, topic: orders, members: 2}
# played after the names are compared; the signals are compared before and after each fault
timeline:
  - {at: 1s, kill: broker-3}
  # the quorum lost: nobody forgets the last leader (current-leader), brokers stay observers
  - {at: 2s, kill: active-controller}
  - {at: 3s, kill: active-controller}
run_for: 60s
"""


@pytest.mark.parametrize("version", LINES)
@pytest.mark.services
def test_the_embedded_cluster_invents_nothing_and_covers_real_kafka(version, tmp_path):
    diffs = assert_conforms(SCENARIO, version, tmp_path, {"broker", "controller"})
    # the process's /proc/self/io gauges, the fetch session cache and the logs' retention gauges (4.4's
    # RetentionSizeInPercent among them): every one a real node has (and none it lacks: nothing is invented)
    assert [(d.role, m) for d in diffs for m in d.missing
            if "linux-disk" in m[0] or "FetchSessionCache" in m[0] or m[0].endswith(",type=Log")] == []


def test_accepted_differences_need_a_reason():
    with pytest.raises(ValueError, match="entry 0: needs role, mbean, attribute, side"):
        conformance.load_accepted("- {role: broker, mbean: 'kafka.x:*', attribute: '*', side: invented, reason: ''}\n")
    [rule] = conformance.load_accepted("- {role: '*', mbean: 'kafka.server:type=X,*', attribute: 'a*', "
                                       "side: missing, reason: created lazily in Kafka}\n")
    assert rule.covers("broker", "missing", "kafka.server:type=X,id=1", "abc")
    assert not rule.covers("broker", "invented", "kafka.server:type=X,id=1", "abc")
    # a combined node is both: what is accepted on either role is accepted on it
    assert rule.covers("combined", "missing", "kafka.server:type=X,id=1", "abc")
    [broker_rule] = conformance.load_accepted("- {role: broker, mbean: 'kafka.y:*', attribute: '*', side: missing, "
                                              "reason: r}\n")
    assert broker_rule.covers("combined", "missing", "kafka.y:type=Y", "a")
    assert not broker_rule.covers("controller", "missing", "kafka.y:type=Y", "a")


def test_workload_names_are_normalised_and_kafkas_own_are_kept():
    assert conformance.normalise("kafka.log:type=Log,name=Size,topic=orders,partition=3") == \
        "kafka.log:name=Size,partition=*,topic=*,type=Log"
    assert conformance.normalise("kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,version=11") \
        == "kafka.network:name=RequestsPerSec,request=Produce,type=RequestMetrics,version=*"


def test_the_simulators_kafka_lines_are_the_pinned_ones():
    """broker/versions.py says which releases the embedded cluster imitates; realkafka/pom.xml pins them."""
    import re
    from pathlib import Path

    from broker.versions import LINES as SIMULATED
    pom = (Path(__file__).parent.parent / "realkafka" / "pom.xml").read_text()
    pinned = dict(re.findall(r"<id>kafka-([\d.]+)</id>\s*<properties><kafka.version>([\d.]+)<", pom))
    assert set(SIMULATED) == set(LINES) == set(pinned)
    assert {line: k.version for line, k in SIMULATED.items()} == pinned
