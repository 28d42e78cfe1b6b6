"""`kafka-jmx cluster run --engine kafka`: a scenario file played on real Apache Kafka (its own
module: the real clusters of test_real_kafka.py are stopped before these start)."""
import re
import subprocess
import sys

import pytest
from jvm_support import kafka_port_block, require_real_kafka

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1


@pytest.mark.services
def test_cluster_run_plays_a_scenario_on_real_kafka(tmp_path):
    """`kafka-jmx cluster run --engine kafka`: the embedded engine's lines, topics, a real client
    workload, and the timeline's kill, pause and resume on real processes."""
    require_real_kafka("4.1")
    base = kafka_port_block()
    scenario = tmp_path / "s.yaml"
    scenario.write_text("""
cluster: {brokers: 3, controllers: 3}
# a small offsets topic and no initial rebalance delay: the group reads within seconds on 2 busy cores
config: {offsets.topic.num.partitions: 6, group.initial.rebalance.delay.ms: 0}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 200, acks: all, keys: 20}
  - {consumer_group: billing, topic: orders, members: 2}
timeline:
  - {at: 8s, kill: broker-3}
  - {at: 12s, pause: active-controller}
  - {at: 16s, heal: all}
run_for: 36s
""")
    done = subprocess.run([sys.executable, "-m", "kafka_jmx", "cluster", "run", str(scenario), "--engine", "kafka:4.1",
                           "--jmx-base-port", str(base), "--kafka-base-port", str(base + 8)],
                          capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"controller-1001  service:jmx:rmi:///jndi/rmi://127.0.0.1:{base}/jmxrmi" in out
    assert f"broker-3         service:jmx:rmi:///jndi/rmi://127.0.0.1:{base + 5}/jmxrmi" in out
    assert f"bootstrap.servers=127.0.0.1:{base + 8},127.0.0.1:{base + 9},127.0.0.1:{base + 10}" in out
    assert "topic orders created" in out and "kill broker-3" in out
    assert re.search(r"pause controller-100\d", out) and "heal all" in out
    acked, consumed = map(int, re.search(r"records acknowledged (\d+), consumed (\d+)", out).groups())
    # records flow through real clients both ways (the group's first join and the faults cost seconds
    # of consumption: 875 of 4,680 were read in one CI run, none in another with run_for 24s, the
    # default 50-partition offsets topic and a 3 s initial rebalance delay)
    assert acked > 1000 and consumed > 300


def test_faults_a_real_cluster_cannot_take_are_refused_with_file_and_line(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {brokers: 3, controllers: 3}\ntimeline:\n  - {at: 1s, kill: broker-1}\n"
                        "  - {at: 2s, isolate: broker-2}\nrun_for: 5s\n")
    done = subprocess.run([sys.executable, "-m", "kafka_jmx", "cluster", "run", str(scenario), "--engine", "kafka"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{scenario}:4: timeline[1].isolate: the kafka engine cannot isolate" in done.stderr
