"""The systemd unit shipped for `kafka-jmx serve`: systemd accepts it and rates its sandbox."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from jvm_support import unavailable

UNIT = ROOT / "deploy" / "systemd" / "kafka-jmx.service"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path:
        return path
    unavailable("systemd-analyze is needed (make test installs systemd)")


@pytest.fixture
def unit(tmp_path):
    # verify checks that ExecStart's program exists: the unit pointed at this venv's kafka-jmx
    kafka_jmx = Path(sys.executable).parent / "kafka-jmx"
    text = UNIT.read_text().replace("/opt/kafka-jmx/bin/kafka-jmx", str(kafka_jmx))
    assert str(kafka_jmx) in text
    path = tmp_path / "kafka-jmx.service"
    path.write_text(text)
    return path


def test_systemd_accepts_the_unit(unit):
    out = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, cwd=unit.parent)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_the_unit_is_sandboxed(unit):
    out = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(unit)], capture_output=True, text=True,
                         cwd=unit.parent)
    m = re.search(r"Overall exposure level for kafka-jmx.service: ([\d.]+)", out.stdout)
    assert m, out.stdout + out.stderr
    # systemd's scale: 0 (locked down) to 10 (unsandboxed); below 2 is its "OK"
    assert float(m.group(1)) < 2.0, out.stdout


def test_the_unit_runs_the_installed_command_with_a_config_of_etc():
    text = UNIT.read_text()
    assert "ExecStart=/opt/kafka-jmx/bin/kafka-jmx serve --config /etc/kafka-jmx/exporter.yml" in text
    assert "RestartPreventExitStatus=2" in text
