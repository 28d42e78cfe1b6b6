"""kafka-jmx rehearse against the real Zabbix (Java gateway) and a real Prometheus: on three combined nodes
(process.roles=broker,controller, the "Apache Kafka 4.x by JMX" template), a node and the active controller
die, groups of the three types (classic, KIP-848, share) stop, hang and slow down; the expected triggers and
alerts fire and resolve. The
bundled rehearsal (separate brokers and controllers) fires every trigger a fault can cause over the
trapper path. On Zabbix 7.0 LTS, the main line (6.0 keeps the import, steady state and an end-to-end test)."""
import json
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from jvm_support import free_port_block, kafka_port_block, require_jdk, require_real_kafka
from prometheus_server import alerting, rules_for

from broker.scenario import load_scenario
from broker.simulation import Simulation
from kafka_jmx.cli import main
from kafka_jmx.embedded import ClusterThread

SCENARIO = """\
cluster: {combined: 3, seed: 5}
# a share state topic of 6 partitions, not 50, on three nodes: with 50, a restarted node catching up on 50
# more replicas had its request handlers under 30 % idle for 10 s (one run's unexpected alert)
config: {broker.heartbeat.interval.ms: 500, broker.session.timeout.ms: 3000, offsets.topic.replication.factor: 3,
         group.share.enable: true, share.coordinator.state.topic.num.partitions: 6}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 50, keys: 10}
  # the three group types side by side: classic, KIP-848's (the coordinator assigns) and a share group (KIP-932:
  # the members share the partitions and acknowledge each record; a preview in 4.1, behind its switch)
  # committing every 200 ms: the 6 s rate window of a rehearsal sees a group committing every 5 s off by half
  - {consumer_group: billing, topic: orders, members: 2, config: {auto.commit.interval.ms: 200}}
  - {consumer_group: shipping, topic: orders, members: 2, config: {group.protocol: consumer, auto.commit.interval.ms: 200}}
  - {share_group: jobs, topic: orders, members: 2}
timeline:
{broker_steps}
  # consumer groups, read through the Kafka protocol: the application stops (its members leave)
  - {at: 3s, stop_consumer: billing, {stop_checks}}
  - {at: 4s, resume_consumer: billing}
{more_group_steps}
  # the active controller's node stays down, its broker with it: its host goes silent
  - {at: 9s, kill: active-controller, expect: [controller_election],
     allow: [no_data, brokers_below_min, fenced_brokers, under_replicated, broker_not_running, group_lag_seconds_high,
             group_falling_behind]}
run_for: 600s
"""
SYSTEMS = ("zabbix", "prometheus", "alertmanager")      # Alertmanager: the notifications received
# the embedded cluster's only: real Kafka's share groups run in the engine (librdkafka's share consumer) but
# are not rehearsed yet
SHARE_GROUP = "  - {share_group: jobs, topic: orders, members: 2}\n"
# the group's coordinator may be on the node: its commits wait for the next one (for longer than the 10 s
# status window of --fast, when the coordinator moves back on the restart: a classic group rejoins); the node
# may be the active controller: a new one is elected; the restarted node catches up on every replica and
# group with three groups' clients back at once (its handlers were under 30 % idle for 10 s in two of three
# runs on a loaded machine, never on the virtual clock)
BROKER_STEPS = """\
  - {at: 1s, kill: combined-3, expect: [brokers_below_min, fenced_brokers],
     allow: [under_replicated, no_data, broker_not_running, group_lag_seconds_high, group_stalled,
             controller_election, group_falling_behind]}
  - {at: 2s, restart: combined-3, allow: [restarted, group_stalled, request_handler_idle_low]}
"""
# on the embedded cluster also: a broker dies and comes back, and the group's members hang on a record
# (offsets stop, they stay), then run slower than the producer, with every alert's `for` and window
# capped at 10 s. Real Kafka's run has the group stop and the controller kill, with the shipped `for`s
# but the groups' (its six JVMs starting on two cores leave JMX reads timing out for longer than 10 s):
# real Kafka's broker loss is proven by tests/test_end_to_end_real_kafka.py, its lag collection on both
# group protocols by tests/test_real_kafka.py, and the verdicts do not depend on the engine
MORE_GROUP_STEPS = """\
  # one member hangs on a record, the other reads on: the group also falls behind
  - {at: 5s, slow_consumer: billing, processing_ms: 600000, expect: [group_stalled],
     allow: [group_lag_growing, group_lag_seconds_high, group_falling_behind]}
  - {at: 6s, resume_consumer: billing}
  # the KIP-848 group stops too, then runs slower than the producer
  - {at: 6.5s, stop_consumer: shipping, expect: [group_stopped, group_lag_seconds_high]}
  - {at: 6.6s, resume_consumer: shipping}
  - {at: 7s, slow_consumer: shipping, processing_ms: 200, expect: [group_lag_growing],
     allow: [group_lag_seconds_high, group_falling_behind]}
  - {at: 8s, resume_consumer: shipping}
  # the share group stops, then hangs on a record (its start offsets stop moving, its members stay)
  - {at: 8.2s, stop_consumer: jobs, expect: [group_stopped, group_lag_seconds_high]}
  - {at: 8.3s, resume_consumer: jobs}
  - {at: 8.5s, slow_consumer: jobs, processing_ms: 600000, expect: [group_stalled],
     allow: [group_lag_growing, group_lag_seconds_high, group_falling_behind]}
  - {at: 8.8s, resume_consumer: jobs}
"""


# the embedded cluster runs on the wall clock: beside no real Kafka cluster; real Kafka's six JVMs beside no other
# real cluster either (measured: with the other worker's real cluster beside it, both tests failed)
@pytest.mark.parametrize("engine", [pytest.param("embedded", marks=pytest.mark.cpu_slots(2)),
                                    pytest.param("kafka", marks=pytest.mark.cpu_slots(2))])
def test_rehearsal_reports_what_fired_and_how_fast(engine, zabbix70, monkeypatch, tmp_path, capsys):
    """The same scenario on the embedded cluster and on real Apache Kafka (`--engine kafka`), on Zabbix 7.0."""
    zabbix = zabbix70
    require_jdk()
    if engine == "kafka":
        require_real_kafka("4.1")
    monkeypatch.setenv("ZBX_PW", "zabbix")
    scenario = tmp_path / "rehearse.yaml"
    embedded = engine == "embedded"
    text = SCENARIO if embedded else SCENARIO.replace(SHARE_GROUP, "")
    scenario.write_text(text.replace("{broker_steps}\n", BROKER_STEPS if embedded else "").replace(
        "{more_group_steps}\n", MORE_GROUP_STEPS if embedded else "").replace(
        "{stop_checks}", "expect: [group_stopped, group_lag_seconds_high]" if embedded
        else "expect: [group_stopped], allow: [group_lag_seconds_high]"))
    ports = free_port_block(8, low=20000) if engine == "embedded" else kafka_port_block()
    metrics_port = free_port_block(1, low=20000)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    rules = rules_for(state, brokers_min=3, hold_max="10s" if embedded else None, groups_hold_max="10s")
    try:
        with alerting(state, [f"127.0.0.1:{metrics_port}"], [rules]) as (prom, am, inbox_port):
            code = main(["rehearse", str(scenario), "--zabbix-url", zabbix.api_url, "--zabbix-password-env", "ZBX_PW",
                         "--zabbix-server", f"127.0.0.1:{zabbix.server_port}",
                         "--prometheus-url", prom.url, "--alertmanager-url", am.url,
                         "--notifications-listen", f"127.0.0.1:{inbox_port}", "--jmx-base-port", str(ports),
                         "--metrics-listen", f"127.0.0.1:{metrics_port}", "--fire-timeout", "150s", "--fast", "--json",
                         "--engine", engine, "--kafka-base-port", str(ports + 8)])
            report = json.loads(capsys.readouterr().out)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(report, indent=1))         # the measured times, in the log of the run
    fired = {(c["trigger"], c["system"]): c for c in report["checks"]}
    groups = ("group_stopped", "group_lag_seconds_high", "group_stalled", "group_lag_growing") if embedded \
        else ("group_stopped",)
    brokers = ("brokers_below_min", "fenced_brokers") if embedded else ()
    assert set(fired) == {(t, s) for t in ("controller_election",) + brokers + groups for s in SYSTEMS}
    assert all(c["fired"] and not c["active_before"] for c in report["checks"]), report
    assert code == 0 and report["ok"], f"unexpected: {report['unexpected']}"
    if embedded:
        assert fired[("brokers_below_min", "zabbix")]["fire_s"] < 60
        assert fired[("brokers_below_min", "zabbix")]["resolve_s"] is not None
        assert fired[("brokers_below_min", "prometheus")]["resolve_s"] is not None
    for trigger in groups:
        assert all(fired[(trigger, s)]["resolve_s"] is not None for s in SYSTEMS), trigger
    paged = [c for c in report["checks"] if c["system"] == "alertmanager"]
    assert report["scores"]["alertmanager"] == {"precision": 1.0, "recall": 1.0, "expected": len(paged),
                                                "fired": len(paged), "unexpected": 0}


@pytest.mark.cpu_slots(1)           # its embedded cluster runs on the wall clock: beside one real Kafka at most
def test_steady_state_then_every_trigger_a_fault_can_cause(zabbix70, monkeypatch, tmp_path, capsys):
    """The bundled rehearsal (broker/scenarios/rehearsal.yaml) over the trapper path, on Zabbix 7.0: three
    minutes of a healthy loaded cluster fire nothing; then broker, replica, disk, load and quorum faults fire each expected
    trigger (trapper templates) and alert. The waits are shortened (--fast macros, alert `for` and
    windows capped at 10 s: stricter for the quiet part); the faults are real."""
    zabbix = zabbix70
    monkeypatch.setenv("ZBX_PW", "zabbix")
    metrics_port = free_port_block(1, low=20000)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    try:
        with alerting(state, [f"127.0.0.1:{metrics_port}"], [rules_for(state, brokers_min=3, hold_max="10s")]) \
                as (prom, am, inbox_port):
            code = main(["rehearse", "builtin", "--fast", "--fire-timeout", "150s", "--transport", "trapper",
                         "--zabbix-url", zabbix.api_url, "--zabbix-password-env", "ZBX_PW",
                         "--zabbix-server", f"127.0.0.1:{zabbix.server_port}", "--prometheus-url", prom.url,
                         "--alertmanager-url", am.url, "--notifications-listen", f"127.0.0.1:{inbox_port}",
                         "--metrics-listen", f"127.0.0.1:{metrics_port}", "--json"])
            report = json.loads(capsys.readouterr().out)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(report, indent=1))         # the measured times, in the log of the run
    assert report["steady_s"] == 180 and report["unexpected"] == [], report["unexpected"]
    expected = {"metadata_load_errors", "unclean_election", "offline_partitions", "under_replicated", "isr_shrinking",
                "no_data", "under_min_isr", "controllers_not_one", "raft_no_leader", "broker_not_running",
                "offline_log_dirs", "network_idle_low", "request_handler_idle_low",
                "no_controller_data", "controller_election", "restarted"}
    checks = {(c["trigger"], c["system"]): c for c in report["checks"]}
    assert set(checks) == {(t, s) for t in expected for s in SYSTEMS}
    missed = [f"{t} in {s}" + (" (already before)" if c["active_before"] else "")
              for (t, s), c in sorted(checks.items()) if not c["fired"] or c["active_before"]]
    assert not missed, missed
    # what reaches a person: every expected alert paged (or its cause paged for it), nothing else did
    paged = [c for c in report["checks"] if c["system"] == "alertmanager"]
    assert report["scores"]["alertmanager"] == {"precision": 1.0, "recall": 1.0, "expected": len(paged),
                                                "fired": len(paged), "unexpected": 0}
    notified = {n["alert"] for n in report["notifications"] if n["status"] == "firing"}
    assert {c["expected"] for c in paged if not c["how"]} <= notified
    assert {c["how"].removeprefix("inhibited by ") for c in paged if c["how"]} <= notified
    assert code == 0 and report["ok"], f"unexpected: {report['unexpected']}"


# a topic that keeps 2 MiB a partition (20 to 30 s of its records) in 1 MiB segments, checked every 2 s; groups that
# read 500 records/s a member (2 ms each) of 100 written, committing every 200 ms (a 6 s rate window then sees
# the consumption within 3 %)
LAG_SCENARIO = """\
cluster: {brokers: 3, controllers: 1, seed: 11}
config: {broker.heartbeat.interval.ms: 500, broker.session.timeout.ms: 3000, offsets.topic.replication.factor: 3,
         offsets.topic.num.partitions: 3, group.initial.rebalance.delay.ms: 0,
         log.retention.check.interval.ms: 2000, log.initial.task.delay.ms: 2000}
topics:
  - {name: events, partitions: 3, replication_factor: 3, min_insync_replicas: 2,
     config: {retention.bytes: 2097152, segment.bytes: 1048576}}
workload:
  - {producer: p1, topic: events, rate: 100, keys: 30, record_size: 3000}
  - {consumer_group: archive, topic: events, members: 1, processing_ms: 2,
     config: {auto.commit.interval.ms: 200, auto.offset.reset: earliest}}
  - {consumer_group: reports, topic: events, members: 1, processing_ms: 2, config: {auto.commit.interval.ms: 200}}
timeline:
  # a burst the groups absorb within seconds: nothing may page
  - {at: 30s, flood: events, bytes_per_sec: 600KB}
  - {at: 33s, heal: all}
  # a group slower than the producers (66 records/s of 100) falls behind, then recovers
  - {at: 45s, slow_consumer: reports, processing_ms: 15, expect: [group_falling_behind],
     allow: [group_lag_growing, group_lag_seconds_high]}
  - {at: 46s, resume_consumer: reports}
  # a group stopped on it: retention reaches what it has not read, then deletes it; back, it resets to the
  # earliest record kept (auto.offset.reset)
  - {at: 60s, stop_consumer: archive, expect: [group_retention_margin_low, group_records_lost],
     allow: [group_stopped, group_lag_seconds_high, group_lag_growing]}
  - {at: 61s, resume_consumer: archive}
run_for: 600s
"""


@pytest.mark.cpu_slots(1)           # its embedded cluster runs on the wall clock: beside one real Kafka at most
def test_lag_trend_and_retention_alerts_fire_for_what_they_say_and_not_for_a_burst(zabbix70, monkeypatch, tmp_path,
                                                                                   capsys):
    """On Zabbix 7.0 and Prometheus 3 with the Alertmanager: a burst pages nobody, a slow group falls behind, a
    stopped group on a topic held at retention.bytes is warned of, then loses records; each resolves."""
    zabbix = zabbix70
    monkeypatch.setenv("ZBX_PW", "zabbix")
    scenario = tmp_path / "lag.yaml"
    scenario.write_text(LAG_SCENARIO)
    metrics_port = free_port_block(1, low=20000)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    # every wait capped, the node alerts' too: a window of minutes would hold the new cluster's first election
    rules = rules_for(state, brokers_min=3, hold_max="10s")
    try:
        with alerting(state, [f"127.0.0.1:{metrics_port}"], [rules]) as (prom, am, inbox_port):
            code = main(["rehearse", str(scenario), "--fast", "--fire-timeout", "150s", "--transport", "trapper",
                         "--zabbix-url", zabbix.api_url, "--zabbix-password-env", "ZBX_PW",
                         "--zabbix-server", f"127.0.0.1:{zabbix.server_port}", "--prometheus-url", prom.url,
                         "--alertmanager-url", am.url, "--notifications-listen", f"127.0.0.1:{inbox_port}",
                         "--metrics-listen", f"127.0.0.1:{metrics_port}", "--json",
                         "--kafka-base-port", str(free_port_block(3, low=20000))])
            report = json.loads(capsys.readouterr().out)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(report, indent=1))         # the measured times, in the log of the run
    assert report["unexpected"] == [], report["unexpected"]
    expected = ("group_falling_behind", "group_retention_margin_low", "group_records_lost")
    checks = {(c["trigger"], c["system"]): c for c in report["checks"]}
    assert set(checks) == {(t, s) for t in expected for s in SYSTEMS}
    assert all(c["fired"] and not c["active_before"] and c["resolve_s"] is not None for c in checks.values()), checks
    # warned before the loss: the margin alert fired before the records were gone
    for system in SYSTEMS:
        assert checks[("group_retention_margin_low", system)]["fire_s"] < checks[("group_records_lost", system)]["fire_s"]
    assert report["scores"]["alertmanager"]["precision"] == 1.0 and report["scores"]["alertmanager"]["recall"] == 1.0
    assert code == 0 and report["ok"], f"unexpected: {report['unexpected']}"


@pytest.mark.slow
def test_a_cluster_that_stops_on_an_error_stops_the_rehearsal():
    sim = Simulation(load_scenario("cluster: {brokers: 1, controllers: 1}\n", "s.yaml"))
    sim.start()

    def broken() -> None:
        raise KeyError("a bug in the model")
    sim.cluster.sched.call_later(50.0, broken)
    logged = []
    runner = ClusterThread(sim, threading.Event(), logged.append)
    runner.start()
    runner.join(10)
    with pytest.raises(RuntimeError, match="the embedded cluster stopped on an error: KeyError"):
        runner.check()
    assert "a bug in the model" in logged[0]
