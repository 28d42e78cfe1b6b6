"""The demo and `cluster run` on the wall clock (a few real seconds)."""
import io
import os
import subprocess
import sys
import time

from rich.console import Console

from broker.clock import WallClock
from broker.scenario import load_scenario
from broker.simulation import Simulation
from exporter.demo import bundled_demo_scenario, render


def test_bundled_demo_scenario_is_valid():
    s = load_scenario(bundled_demo_scenario(), "demo.yaml")
    assert s.brokers == 5 and s.controllers == 3 and s.timeline


def test_wall_clock_cluster_elects_and_registers_in_real_time():
    sim = Simulation(load_scenario(bundled_demo_scenario(), "demo.yaml"), WallClock())
    sim.start()
    started = time.monotonic()
    sim.run(until_ms=6_000)
    assert 5.5 <= time.monotonic() - started <= 9.0           # it really took wall-clock time
    assert sim.cluster.ready()
    console = Console(file=io.StringIO(), width=200)
    console.print(render(sim))
    text = console.file.getvalue()
    assert "active controller: controller-100" in text and "ActiveBrokerCount: 5" in text
    assert all(name in text for name in sim.cluster.node_names()) and "down" not in text


def test_demo_command_runs_and_stops(tmp_path):
    out = subprocess.run([sys.executable, "-m", "exporter", "demo", "--duration", "4s"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "Kafka 4.x embedded cluster" in out.stdout
    assert "broker-5" in out.stdout
