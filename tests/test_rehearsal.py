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
                     "--metrics-listen", f"127.0.0.1:{metrics_port}", "--fire-timeout", "150s", "--json"])
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
