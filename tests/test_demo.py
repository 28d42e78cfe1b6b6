"""The demo and `cluster run` on the wall clock (a few real seconds)."""
import io
import os
import subprocess
import sys
import time

import pytest
from jvm_support import free_port_block, require_jdk
from rich.console import Console

from broker.clock import WallClock
from broker.scenario import bundled_scenario, load_scenario
from broker.simulation import Simulation
from exporter.sample import SourceError
from exporter.sources.jmx import JmxReader, JmxSource
from kafka_jmx.demo import render


def test_bundled_demo_scenario_is_valid():
    s = load_scenario(bundled_scenario("demo.yaml"), "demo.yaml")
    assert s.brokers == 5 and s.controllers == 3 and s.timeline


@pytest.mark.slow
def test_wall_clock_cluster_elects_and_registers_in_real_time():
    started = time.monotonic()
    sim = Simulation(load_scenario(bundled_scenario("demo.yaml"), "demo.yaml"), WallClock())
    sim.start()
    sim.run(until_ms=6_000)
    # it really took wall-clock time (the clock starts at its creation, so starting the cluster counts; a
    # busy machine only adds to it: a virtual clock would take milliseconds)
    assert 6.0 <= time.monotonic() - started <= 20.0
    assert sim.cluster.ready()
    console = Console(file=io.StringIO(), width=200)
    console.print(render(sim))
    text = console.file.getvalue()
    assert "active controller: controller-100" in text and "ActiveBrokerCount: 5" in text
    assert all(name in text for name in sim.cluster.node_names()) and "down" not in text


@pytest.mark.slow
def test_demo_command_runs_prints_jmx_urls_and_stops():
    require_jdk()
    base = free_port_block(15)
    out = subprocess.run([sys.executable, "-m", "kafka_jmx", "demo", "--duration", "4s", "--jmx-base-port", str(base),
                          "--metrics-listen", f"127.0.0.1:{base + 8}", "--control-listen", f"127.0.0.1:{base + 9}",
                          "--kafka-base-port", str(base + 10)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "Kafka 4.x embedded cluster" in out.stdout
    assert f"controller-1001  service:jmx:rmi:///jndi/rmi://127.0.0.1:{base}/jmxrmi" in out.stdout
    assert f"broker-5         service:jmx:rmi:///jndi/rmi://127.0.0.1:{base + 7}/jmxrmi" in out.stdout
    assert "│ broker-5" in out.stdout
    assert f"Prometheus metrics: http://127.0.0.1:{base + 8}/metrics" in out.stdout
    assert "Kafka protocol: bootstrap.servers=" + ",".join(f"127.0.0.1:{base + 10 + i}" for i in range(5)) \
        in out.stdout.replace("\n", "")


@pytest.mark.slow
def test_cluster_run_publishes_over_jmx_while_running(tmp_path):
    require_jdk()
    base = free_port_block(8)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {brokers: 2, controllers: 1, seed: 1}\n"
                        "timeline:\n  - {at: 3s, kill: broker-2}\nrun_for: 60s\n")
    proc = subprocess.Popen([sys.executable, "-m", "kafka_jmx", "cluster", "run", str(scenario),
                             "--jmx-base-port", str(base), "--duration", "9s"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("controller-1001") and lines[2].startswith("broker-2")
        time.sleep(5)
        src = JmxSource("c", f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{base}/jmxrmi",
                        includes=["kafka.controller:type=KafkaController,name=ActiveControllerCount"])
        assert [s.value for s in src.read().samples] == [1]
        with pytest.raises(SourceError):
            JmxSource("b2", f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{base + 2}/jmxrmi").read()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        JmxReader.stop_all()


def test_fault_command_reaches_the_running_cluster(capsys):
    from kafka_jmx.cli import main
    from kafka_jmx.control import ControlServer
    sim = Simulation(load_scenario(bundled_scenario("demo.yaml"), "demo.yaml"))
    sim.start(apply_timeline=False)
    sim.run(until_ms=5_000)
    control = ControlServer(sim, port=free_port_block(1))
    control.start()
    where = control.url.removeprefix("http://")
    try:
        assert main(["fault", "kill", "broker-2", "--control", where]) == 0
        assert "kill broker-2" in capsys.readouterr().out
        assert not sim.cluster.brokers["broker-2"].alive
        assert main(["fault", "kill", "broker-9", "--control", where]) == 1
        assert "unknown node 'broker-9'" in capsys.readouterr().err
        assert main(["fault", "slow", "broker-1", "--fetch-delay", "20s", "--control", where]) == 0
        assert sim.cluster.brokers["broker-1"].fetch_delay_ms == 20_000
        assert main(["fault", "slow", "broker-3", "--disk-delay", "50ms", "--control", where]) == 0
        assert sim.cluster.brokers["broker-3"].disk_delay_ms == 50
        assert main(["fault", "flood", "orders", "--bytes-per-sec", "20MB", "--control", where]) == 0
        assert "flood orders at 20 MB/s" in capsys.readouterr().out
        assert main(["fault", "flood", "nope", "--bytes-per-sec", "20MB", "--control", where]) == 1
        assert "flood needs an existing topic, got 'nope'" in capsys.readouterr().err
        assert main(["fault", "fail_log_dir", "broker-4", "--log-dir", "/var/lib/kafka/data-2", "--control", where]) == 0
        assert sim.cluster.brokers["broker-4"].offline_dirs == {"/var/lib/kafka/data-2"}
        assert main(["fault", "heal", "--control", where]) == 0
        assert sim.cluster.brokers["broker-1"].fetch_delay_ms == 0
        assert sim.cluster.brokers["broker-3"].disk_delay_ms == 0 and not sim.floods
    finally:
        control.stop()
