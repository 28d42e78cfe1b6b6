"""The house's one-way layers: kafka_common depends on nothing of ours; broker/ (the simulator) and
exporter/ depend only on kafka_common; kafka_jmx/ and realkafka/ sit above them."""
import pkgutil
import subprocess
import sys

import pytest
from conftest import ROOT
from jvm_support import free_port_block

BELOW = {
    "kafka_common": set(),
    "broker": {"kafka_common"},
    "exporter": {"kafka_common"},
}
OURS = {"kafka_common", "broker", "exporter", "kafka_jmx", "realkafka"}


def loaded_by(package: str) -> set[str]:
    """Our top-level packages that importing every module of package loads, in a fresh interpreter."""
    modules = [m.name for m in pkgutil.walk_packages([str(ROOT / package)], package + ".")
               if not m.name.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for m in {[package] + modules!r}: importlib.import_module(m)\n"
            "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(out.stdout.split()) & OURS - {package}


@pytest.mark.parametrize("package", sorted(BELOW))
def test_a_layer_loads_only_what_is_below_it(package):
    assert loaded_by(package) == BELOW[package]


def test_the_exporter_daemon_loads_no_simulator():
    code = ("import sys, exporter.daemon, exporter.config, exporter.sources.jmx, exporter.sources.jolokia\n"
            "print(' '.join(sorted(n for n in sys.modules if n.split('.')[0] in "
            "('broker', 'kafka_jmx', 'realkafka'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == []


def _imported(stderr: str) -> set[str]:
    """Module names from -X importtime's report."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


LAB = ("broker", "realkafka")
GENERATORS = {"exporter.catalog.zabbix", "exporter.catalog.alerts", "exporter.catalog.grafana", "exporter.catalog.docs",
              "exporter.catalog.generate"}


def test_the_serve_command_loads_no_simulator(tmp_path):
    """What the systemd unit runs: the command line builds every command's parser, but a command imports
    what it runs only when it runs it; serving real targets loads none of the lab's packages."""
    helped = subprocess.run([sys.executable, "-X", "importtime", "-m", "kafka_jmx", "serve", "--help"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = _imported(helped.stderr)
    assert "kafka_jmx.cli" in loaded and "kafka_jmx.commands.rehearse" in loaded      # the report is read
    assert sorted(n for n in loaded if n.split(".")[0] in LAB) == []
    config = tmp_path / "exporter.yml"
    config.write_text(f"cluster: lab\nprometheus: {{listen: '127.0.0.1:{free_port_block(1)}'}}\n"
                      "zabbix: {server: '127.0.0.1:9'}\n"
                      "targets:\n  - {name: broker-1, role: broker, jolokia: {url: 'http://127.0.0.1:9/jolokia/'}}\n")
    serving = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "kafka_jmx", "serve", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert serving.stdout is not None
        assert "serving" in serving.stdout.readline()
    finally:
        serving.terminate()
        _, stderr = serving.communicate(timeout=30)
    loaded = _imported(stderr)
    assert "exporter.daemon" in loaded and "exporter.sources.jolokia" in loaded
    assert sorted(n for n in loaded if n.split(".")[0] in LAB) == []
    # the runtime reads the catalog and its keys, never a generator
    assert "exporter.catalog.keys" in loaded
    assert sorted(n for n in loaded if n in GENERATORS) == []
