"""Scenario files: what they build, and errors that name the line and the field."""
import json
import re

import pytest

from broker.errors import (
    InvalidConfigurationError,
    InvalidReplicationFactorError,
    UnknownNodeError,
)
from broker.scenario import load_scenario
from broker.simulation import Simulation
from kafka_common.durations import parse_bytes, parse_duration_ms
from kafka_common.yamlconf import ConfigError
from kafka_jmx.cli import main

GOOD = """\
cluster: {brokers: 5, controllers: 3, seed: 7}
config: {replica.lag.time.max.ms: 30000}
topics:
  - {name: orders, partitions: 12, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 200, acks: all, keys: 100}
  - {consumer_group: billing, topic: orders, members: 3}
timeline:
  - {at: 10s, kill: broker-3}
  - {at: 40s, restart: broker-3}
  - {at: 50s, kill: active-controller}
  - {at: 60s, slow: broker-2, fetch_delay: 45s}
  - {at: 70s, isolate: broker-4}
  - {at: 80s, heal: broker-4}
run_for: 120s
"""


def test_durations():
    assert parse_duration_ms("10s") == 10_000
    assert parse_duration_ms("500ms") == 500
    assert parse_duration_ms("2m") == 120_000
    assert parse_duration_ms(3) == 3_000
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms("soon")


def test_the_issue_example_loads():
    s = load_scenario(GOOD, "s.yaml")
    assert (s.brokers, s.controllers, s.seed) == (5, 3, 7)
    assert s.topics[0].min_insync_replicas == 2
    assert [f.action for f in s.timeline] == ["kill", "restart", "kill", "slow", "isolate", "heal"]
    assert s.timeline[3].fetch_delay_ms == 45_000
    assert s.run_for_ms == 120_000


@pytest.mark.parametrize("text,expected", [
    ("topics:\n  - {name: t, partitions: 3, replication_factor: 7}\n",
     "s.yaml:2: topics[0].replication_factor: replication factor 7 is above the broker count 5"),
    ("topics:\n  - {name: t, partitions: 3, replication_factor: 2, min_insync_replicas: 3}\n",
     "s.yaml:2: topics[0].min_insync_replicas: min.insync.replicas 3 is above the replication factor 2"),
    ("topics:\n  - {name: t}\n  - {name: t}\n", "s.yaml:3: topics[1].name: topic 't' is defined twice"),
    ("timeline:\n  - {at: 1s, kill: broker-9}\n", "s.yaml:2: timeline[0].kill: unknown node 'broker-9'"),
    ("timeline:\n  - {at: 1s, explode: broker-1}\n", "s.yaml:2: timeline[0].explode: unknown key 'explode'"),
    ("config:\n  replica.lag.time.max: 10\n", "s.yaml:2: config.replica.lag.time.max: unknown Kafka setting"),
    ("config:\n  min.insync.replicas: two\n", "min.insync.replicas must be an integer, got 'two'"),
    ("workload:\n  - {producer: p, topic: nope}\n", "s.yaml:2: workload[0].topic: unknown topic 'nope'"),
    ("run_for: forever\n", "s.yaml:1: run_for: expected a duration"),
    ("timeline:\n  - {at: 1s, flood: nope, bytes_per_sec: 1MB}\n",
     "s.yaml:2: timeline[0].flood: flood needs a topic of the scenario, got 'nope'"),
    ("topics:\n  - {name: t}\ntimeline:\n  - {at: 1s, flood: t}\n", "s.yaml:4: timeline[0]: flood needs bytes_per_sec"),
    ("topics:\n  - {name: t}\ntimeline:\n  - {at: 1s, flood: t, bytes_per_sec: lots}\n",
     "timeline[0].bytes_per_sec: expected a size like 100MB"),
    ("timeline:\n  - {at: 1s, fail_log_dir: controller-1001}\n",
     "s.yaml:2: timeline[0].fail_log_dir: fail_log_dir needs a broker (broker-N, combined-N or leader:TOPIC-N)"),
    ("timeline:\n  - {at: 1s, fail_log_dir: broker-1, log_dir: /elsewhere}\n",
     "timeline[0].log_dir: '/elsewhere' is not one of log.dirs (/tmp/kafka-logs)"),
    ("config:\n  log.dirs: /a,,/b\n", "log.dirs must list distinct directories"),
    ("topics:\n  - {name: t}\ntimeline:\n  - {at: 1s, kill: leader:t-1}\n",
     "s.yaml:4: timeline[0].kill: 'leader:t-1': leader: needs a partition of the scenario, like leader:t-0"),
    ("topics:\n  - {name: t}\ntimeline:\n  - {at: 1s, restart: leader:t-0}\n",
     "timeline[0].restart: restart cannot target a partition leader"),
    ("cluster: {brokers: 0}\n", "s.yaml:1: cluster.brokers: expected a positive integer, got 0"),
    ("topics: [\n", "s.yaml:2: not valid YAML"),
    ("cluster: {brokers: !!python/name:os.system ''}\n", "s.yaml:1: not valid here"),
])
def test_errors_name_line_and_field(text, expected):
    with pytest.raises(ConfigError) as e:
        load_scenario(text, "s.yaml")
    assert expected in str(e.value)


def test_sizes():
    assert parse_bytes("100MB") == 100e6
    assert parse_bytes("64KiB") == 65536
    assert parse_bytes(512) == 512
    with pytest.raises(ValueError, match="size"):
        parse_bytes("huge")


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as e:
        load_scenario("cluster: {brokers: 0}\nrun_for: never\n", "s.yaml")
    assert len(e.value.problems) == 2


def test_kafka_errors_from_the_cluster_api(cluster):
    with pytest.raises(InvalidReplicationFactorError, match="only 5 broker"):
        cluster.create_topic("wide", 3, 6)
    with pytest.raises(InvalidConfigurationError, match=re.escape("min.insync.replicas=3 is greater than replication factor 2")):
        cluster.create_topic("strict", 3, 2, min_insync_replicas=3)
    with pytest.raises(UnknownNodeError, match="unknown node 'broker-17'"):
        cluster.kill("broker-17")
    done = []
    cluster.create_topic("orders", 3, 3, on_done=done.append)
    cluster.run_for(2_000)
    assert done == ["TOPIC_ALREADY_EXISTS: Topic 'orders' already exists."]


@pytest.mark.slow
def test_simulation_replays_exactly():
    def run():
        sim = Simulation(load_scenario(GOOD.replace("120s", "40s"), "s.yaml"))
        sim.start()
        sim.run()
        return json.dumps(sim.cluster.snapshot(), sort_keys=True)
    assert run() == run()


@pytest.mark.slow
def test_simulate_dump_shape(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("run_for: 120s", "run_for: 30s"))
    out = tmp_path / "dump.json"
    assert main(["simulate", str(path), "--dump", str(out)]) == 0
    dump = json.loads(out.read_text())
    assert dump["time_ms"] == 30_000
    b3 = dump["nodes"]["broker-3"]
    assert b3 == {"role": "broker", "node_id": 3, "alive": False, "mbeans": {}}     # killed at 10 s
    b1 = dump["nodes"]["broker-1"]
    assert b1["role"] == "broker" and b1["node_id"] == 1 and b1["alive"]
    assert b1["mbeans"]["kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions"]["Value"] > 0
    ctl = dump["nodes"]["controller-1001"]
    assert ctl["mbeans"]["kafka.controller:type=KafkaController,name=ActiveBrokerCount"] == {"Value": 4}


@pytest.mark.slow
def test_simulate_every_and_mbean_filter(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("run_for: 120s", "run_for: 20s"))
    out = tmp_path / "dump.jsonl"
    assert main(["simulate", str(path), "--dump", str(out), "--every", "5s",
                 "--mbean", "kafka.controller:type=KafkaController,name=ActiveBrokerCount"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["time_ms"] for d in lines] == [5_000, 10_000, 15_000, 20_000]
    last = lines[-1]["nodes"]
    assert last["broker-1"]["mbeans"] == {}
    assert {n: v["mbeans"] for n, v in last.items() if v["role"] == "controller"} == {
        f"controller-{i}": {"kafka.controller:type=KafkaController,name=ActiveBrokerCount": {"Value": 4}}
        for i in (1001, 1002, 1003)}


def test_cli_reports_scenario_errors(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("timeline:\n  - {at: 1s, kill: broker-9}\n")
    assert main(["simulate", str(path), "--dump", "-"]) == 2
    assert "bad.yaml:2: timeline[0].kill: unknown node 'broker-9'" in capsys.readouterr().err


def test_a_paused_broker_is_a_hung_process_until_resumed():
    """pause/resume: what the kafka engine does with SIGSTOP/SIGCONT; embedded, nobody gets an
    answer from the node, so the controller fences it after broker.session.timeout.ms."""
    text = ("cluster: {brokers: 3, controllers: 3, seed: 3}\n"
            "timeline:\n  - {at: 20s, pause: broker-2}\n  - {at: 40s, resume: broker-2}\nrun_for: 60s\n")
    sim = Simulation(load_scenario(text, "p.yaml"))
    sim.start()
    fenced = "kafka.controller:type=KafkaController,name=FencedBrokerCount"
    sim.run(until_ms=38_000)
    assert max(sim.cluster.values(fenced, role="controller").values()) == 1
    sim.run(until_ms=60_000)
    assert max(sim.cluster.values(fenced, role="controller").values()) == 0
    assert [e for _, e in sim.events if e.startswith(("pause", "resume"))] == ["pause broker-2", "resume broker-2"]


def test_elect_leaders_takes_all():
    s = load_scenario("cluster: {brokers: 3}\ntimeline:\n  - {at: 5s, elect_leaders: all, expect: []}\n")
    assert s.timeline[0].action == "elect_leaders" and s.timeline[0].node is None
    with pytest.raises(ConfigError, match=r"s.yaml:3: timeline\[0\].elect_leaders: elect_leaders takes all"):
        load_scenario("cluster: {brokers: 3}\ntimeline:\n  - {at: 5s, elect_leaders: broker-1}\n", "s.yaml")


def test_bounce_restarts_the_node_after_its_down_time():
    sim = Simulation(load_scenario("cluster: {brokers: 3, controllers: 3}\n"
                                   "timeline:\n  - {at: 10s, bounce: active-controller, down: 4s}\n"
                                   "  - {at: 20s, bounce: broker-2}\nrun_for: 40s\n"))
    sim.start()
    sim.run(until_ms=12_000)
    [down] = [n for n in sim.cluster.controllers.values() if not n.alive]
    sim.run(until_ms=15_000)
    assert down.alive and sim.cluster.active_controller() is not None
    sim.run(until_ms=22_000)
    assert not sim.cluster.brokers["broker-2"].alive          # down: 5 s by default
    sim.run()
    assert sim.cluster.brokers["broker-2"].alive
    assert [e for _, e in sim.events if "bounce" in e or "(down" in e] == [
        f"bounce {down.name} (down 4s)", f"restart {down.name} (bounce)", "bounce broker-2 (down 5s)",
        "restart broker-2 (bounce)"]


def test_controllers_kills_every_running_controller_and_restarts_every_stopped_one():
    sim = Simulation(load_scenario("cluster: {brokers: 3, controllers: 3}\n"
                                   "timeline:\n  - {at: 5s, kill: controller-1002}\n"
                                   "  - {at: 10s, kill: controllers}\n  - {at: 15s, kill: controllers}\n"
                                   "  - {at: 20s, restart: controllers}\nrun_for: 40s\n"))
    sim.start()
    sim.run(until_ms=12_000)
    assert not any(n.alive for n in sim.cluster.controllers.values())
    sim.run()
    assert all(n.alive for n in sim.cluster.controllers.values()) and sim.cluster.active_controller() is not None
    events = [e for _, e in sim.events if "controller" in e and ("kill" in e or "restart" in e)]
    assert events == ["kill controller-1002", "kill controller-1001 controller-1003",
                      "kill controllers skipped: no controller is running",
                      "restart controller-1001 controller-1002 controller-1003"]
    with pytest.raises(ConfigError, match=r"timeline\[0\].isolate: isolate cannot target every controller"):
        load_scenario("cluster: {brokers: 3}\ntimeline:\n  - {at: 5s, isolate: controllers}\n", "s.yaml")
