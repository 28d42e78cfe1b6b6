"""kafka-jmx rehearse against the real Zabbix (Java gateway) and a real Prometheus: a broker and
the active controller die, the expected triggers and alerts fire and resolve."""
import json
import shutil
import tempfile
from pathlib import Path

from exporter.cli import main
from jvm_support import free_port_block, require_jdk
from prometheus_server import PrometheusServer, rules_for

SCENARIO = """\
cluster: {brokers: 3, controllers: 3, seed: 5}
config: {broker.heartbeat.interval.ms: 500, broker.session.timeout.ms: 3000, offsets.topic.replication.factor: 3}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
workload:
  - {producer: p1, topic: orders, rate: 50, keys: 10}
timeline:
  - {at: 1s, kill: broker-3, expect: [brokers_below_min, fenced_brokers]}
  - {at: 2s, restart: broker-3}
  - {at: 3s, kill: active-controller, expect: [controller_election]}
run_for: 600s
"""


def test_rehearsal_reports_what_fired_and_how_fast(zabbix, monkeypatch, tmp_path, capsys):
    require_jdk()
    monkeypatch.setenv("ZBX_PW", "zabbix")
    scenario = tmp_path / "rehearse.yaml"
    scenario.write_text(SCENARIO)
    ports = free_port_block(8, low=20000)
    metrics_port = free_port_block(1, low=20000)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    prom = PrometheusServer(state, free_port_block(1, low=20000), [f"127.0.0.1:{metrics_port}"],
                            [rules_for(state, brokers_min=3)])
    prom.start()
    try:
        code = main(["rehearse", str(scenario), "--zabbix-url", zabbix.api_url, "--zabbix-password-env", "ZBX_PW",
                     "--prometheus-url", prom.url, "--jmx-base-port", str(ports),
                     "--metrics-listen", f"127.0.0.1:{metrics_port}", "--fire-timeout", "150s", "--fast", "--json"])
        report = json.loads(capsys.readouterr().out)
    finally:
        prom.stop()
        shutil.rmtree(state, ignore_errors=True)
    fired = {(c["trigger"], c["system"]): c for c in report["checks"]}
    assert set(fired) == {(t, s) for t in ("brokers_below_min", "fenced_brokers", "controller_election")
                          for s in ("zabbix", "prometheus")}
    assert all(c["fired"] and not c["active_before"] for c in report["checks"]), report
    assert code == 0 and report["ok"]
    assert fired[("brokers_below_min", "zabbix")]["fire_s"] < 60
    assert fired[("brokers_below_min", "zabbix")]["resolve_s"] is not None
    assert fired[("brokers_below_min", "prometheus")]["resolve_s"] is not None


FAULTS = """\
cluster: {brokers: 3, controllers: 3, seed: 7}
config: {broker.heartbeat.interval.ms: 500, broker.session.timeout.ms: 3000, offsets.topic.replication.factor: 3,
         replica.lag.time.max.ms: 5000}
topics:
  - {name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}
  - {name: solo, partitions: 3, replication_factor: 1}
  - {name: unclean, partitions: 3, replication_factor: 2, config: {unclean.leader.election.enable: true}}
workload:
  - {producer: p1, topic: orders, rate: 50, keys: 10}
  - {producer: p2, topic: unclean, rate: 20, keys: 10}
timeline:
  # both followers fall out of the ISRs, then the leader of an `unclean` partition dies
  - {at: 180s, slow: broker-1, fetch_delay: 60s}
  - {at: 180s, slow: broker-2, fetch_delay: 60s}
  - {at: 195s, kill: broker-3, expect: [unclean_election]}
  - {at: 196s, heal: all}
  - {at: 197s, restart: broker-3}
  - {at: 198s, kill: broker-3, expect: [offline_partitions, under_replicated, no_data]}
  - {at: 199s, restart: broker-3}
  - {at: 200s, slow: broker-2, fetch_delay: 20s, expect: [isr_shrinking]}
  - {at: 201s, heal: broker-2}
  - {at: 202s, kill: broker-2}
  - {at: 203s, kill: broker-3, expect: [under_min_isr]}
  - {at: 204s, restart: broker-2}
  - {at: 205s, restart: broker-3}
  - {at: 206s, kill: controller-1001}
  - {at: 207s, kill: controller-1002, expect: [controllers_not_one, raft_no_leader]}
  - {at: 208s, kill: broker-1}
  - {at: 209s, restart: broker-1, expect: [broker_not_running]}
  - {at: 210s, restart: controller-1001, expect: [election_latency_high]}
  - {at: 211s, restart: controller-1002}
  - {at: 212s, kill: controller-1001}
  - {at: 213s, kill: controller-1002}
  - {at: 214s, kill: controller-1003, expect: [no_controller_data]}
run_for: 1800s
"""


def run_rehearsal(zabbix, monkeypatch, tmp_path, capsys, scenario_text: str, hold_max: str | None,
                  extra: list[str]) -> tuple[int, dict]:
    """kafka-jmx rehearse over the trapper path, with a private Prometheus scraping its exporter."""
    monkeypatch.setenv("ZBX_PW", "zabbix")
    scenario = tmp_path / "rehearse.yaml"
    scenario.write_text(scenario_text)
    metrics_port = free_port_block(1, low=20000)
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-prom-"))
    prom = PrometheusServer(state, free_port_block(1, low=20000), [f"127.0.0.1:{metrics_port}"],
                            [rules_for(state, brokers_min=3, hold_max=hold_max)])
    prom.start()
    try:
        code = main(["rehearse", str(scenario), "--zabbix-url", zabbix.api_url, "--zabbix-password-env", "ZBX_PW",
                     "--transport", "trapper", "--zabbix-server", f"127.0.0.1:{zabbix.server_port}",
                     "--prometheus-url", prom.url, "--metrics-listen", f"127.0.0.1:{metrics_port}", "--json", *extra])
        return code, json.loads(capsys.readouterr().out)
    finally:
        prom.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_steady_state_then_every_trigger_a_fault_can_cause(zabbix, monkeypatch, tmp_path, capsys):
    """Three minutes of a healthy loaded cluster fire nothing; then broker, replica and quorum faults
    fire each expected trigger (trapper templates) and alert. The waits are shortened (--fast
    macros, alert `for` capped at 10 s: stricter for the quiet part); the faults are real."""
    code, report = run_rehearsal(zabbix, monkeypatch, tmp_path, capsys, FAULTS, "10s",
                                 ["--fast", "--fire-timeout", "120s"])
    print(json.dumps(report, indent=1))         # the measured times, in the log of the run
    assert report["steady_s"] == 180 and report["unexpected"] == [], report["unexpected"]
    expected = {"unclean_election", "offline_partitions", "under_replicated", "isr_shrinking", "no_data", "under_min_isr",
                "controllers_not_one", "raft_no_leader", "broker_not_running", "election_latency_high",
                "no_controller_data"}
    checks = {(c["trigger"], c["system"]): c for c in report["checks"]}
    assert set(checks) == {(t, s) for t in expected for s in ("zabbix", "prometheus")}
    missed = [f"{t} in {s}" + (" (already before)" if c["active_before"] else "")
              for (t, s), c in sorted(checks.items()) if not c["fired"] or c["active_before"]]
    assert not missed, missed
    assert code == 0 and report["ok"]
