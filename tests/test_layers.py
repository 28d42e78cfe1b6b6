"""The house's one-way layers: kafka_common depends on nothing of ours; broker/ (the simulator) and
exporter/ depend only on kafka_common; kafka_jmx/ and realkafka/ sit above them."""
import pkgutil
import subprocess
import sys

import pytest
from conftest import ROOT

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
