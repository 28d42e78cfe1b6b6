"""What a user gets from `pip install`: the wheel built from this checkout, installed in a fresh venv and
run from a folder outside the checkout (catalog, rule sets, scenarios and the Java helper are package data)."""
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT
from jvm_support import free_port_block, require_jdk

pytestmark = pytest.mark.slow

SCENARIO = """cluster: {brokers: 3, controllers: 3}
topics: [{name: orders, partitions: 3, replication_factor: 3, min_insync_replicas: 2}]
workload: [{producer: p1, topic: orders, rate: 50}]
run_for: 20s
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(kafka-jmx of the fresh venv, a work folder outside the checkout, the build's output)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = (tmp / "dist").glob("kafka_jmx_toolkit-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # the dependencies come from the test venv (after the fresh venv's own packages): no second download
    purelib = Path(subprocess.check_output([str(venv / "bin" / "python"), "-c",
                                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (purelib / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=120)
    work = tmp / "work"
    work.mkdir()
    return venv / "bin" / "kafka-jmx", work, build.stdout + build.stderr


def run(installed, *args, timeout=120, env=None):
    exe, work, _ = installed
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=work, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_the_build_has_no_warnings(installed):
    assert "warning" not in installed[2].lower(), installed[2]


def test_the_installed_packages_are_the_wheels_not_the_checkout(installed):
    exe, work, _ = installed
    out = subprocess.run([str(exe.parent / "python"), "-c",
                          "import broker, exporter, kafka_common, kafka_jmx, realkafka\n"
                          "print('\\n'.join(m.__file__ for m in (broker, exporter, kafka_common, kafka_jmx, realkafka)))"],
                         capture_output=True, text=True, cwd=work, check=True)
    assert all(str(exe.parent.parent) in line for line in out.stdout.split()), out.stdout
    version = run(installed, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "kafka-jmx 0.1.0"


def test_generate_writes_every_artifact_of_the_checkout(installed):
    out = run(installed, "generate", "--out", "artifacts")
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(installed[1] / "artifacts")
                     for p in (installed[1] / "artifacts").rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT) for d in ("templates", "dashboards") for p in (ROOT / d).rglob("*")
                       if p.is_file())
    assert written == committed and len(written) == 11
    for rel in written:
        assert (installed[1] / "artifacts" / rel).read_text() == (ROOT / rel).read_text(), rel
    assert run(installed, "generate", "--out", "artifacts", "--check").returncode == 0


def test_simulate_and_rules_test_from_the_wheel(installed):
    (installed[1] / "s.yaml").write_text(SCENARIO)
    sim = run(installed, "simulate", "s.yaml", "--dump", "dump.json")
    assert sim.returncode == 0, sim.stderr
    rules = run(installed, "rules", "test", "builtin", "--mbeans", "dump.json", "--node", "controller-1001")
    assert rules.returncode == 0, rules.stderr
    assert "kafka_controller_kafkacontroller_activebrokercount 3.0" in rules.stdout
    bad = run(installed, "simulate", "missing.yaml", "--dump", "-")
    assert bad.returncode == 2 and "missing.yaml: cannot read" in bad.stderr


def test_serve_an_embedded_cluster_with_its_zabbix_push(installed):
    exe, work, _ = installed
    port, zabbix_port = free_port_block(2), free_port_block(1)
    (work / "cluster.yaml").write_text(SCENARIO.replace("run_for: 20s", "run_for: 1h"))
    # nothing listens on the Zabbix port: values wait in the spool, which proves the catalog was found
    (work / "exporter.yml").write_text(f"cluster: wheel\nembedded: cluster.yaml\ncollection: {{interval: 1s}}\n"
                                       f"prometheus: {{listen: 127.0.0.1:{port}}}\n"
                                       f"zabbix: {{server: 127.0.0.1:{zabbix_port}, send_interval: 1s}}\n")
    proc = subprocess.Popen([str(exe), "serve", "--config", "exporter.yml"], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                text = ""
            spool = [line for line in text.splitlines() if line.startswith("kafkajmx_zabbix_spool_values")]
            if "kafka_controller_kafkacontroller_activebrokercount" in text and spool and \
                    float(spool[0].rsplit(" ", 1)[1]) > 0:
                break
            time.sleep(1.0)
        else:
            pytest.fail(f"no metrics or no spooled Zabbix values: {text[-2000:]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output


def test_the_java_helper_compiles_from_the_wheel(installed, tmp_path):
    require_jdk()
    (installed[1] / "c.yaml").write_text(SCENARIO)
    base = free_port_block(6)
    out = run(installed, "cluster", "run", "c.yaml", "--duration", "2s", "--jmx-base-port", str(base), timeout=180,
              env={"KAFKA_JMX_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    assert f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{base}/jmxrmi" in out.stdout
    assert list((tmp_path / "cache").rglob("*.class"))


def test_a_monitoring_host_installs_the_exporter_without_the_lab(installed, tmp_path):
    """`pip install kafka-jmx-toolkit` on a monitoring host resolves the exporter's dependencies only (not the
    simulator's record codecs, the demo's terminal status or the generators' Grafana SDK): serve runs, the
    provisioner loads, and a lab command names the extra it needs."""
    exe, work, _ = installed
    [wheel] = (exe.parents[2] / "dist").glob("kafka_jmx_toolkit-*.whl")
    host = tmp_path / "host"
    subprocess.run([sys.executable, "-m", "venv", str(host)], check=True, timeout=120)
    pip = subprocess.run([str(host / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    listed = subprocess.run([str(host / "bin" / "pip"), "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.split()}
    assert {"confluent-kafka", "cramjam", "prometheus-client", "py4j", "zabbix-utils", "pyzabbix"} <= names
    assert names & {"grafana-foundation-sdk", "rich"} == set()       # (crc32c comes with kio)
    helped = subprocess.run([str(host / "bin" / "kafka-jmx"), "serve", "--help"], capture_output=True, text=True,
                            cwd=work, check=True).stdout
    reference = host / "share" / "doc" / "kafka-jmx-toolkit" / "docs" / "operators" / "configuration.md"
    assert str(reference) in " ".join(helped.split()) and reference.is_file(), helped
    loads = subprocess.run([str(host / "bin" / "python"), "-c", "import exporter.provision, exporter.daemon"],
                           capture_output=True, text=True, cwd=work)
    assert loads.returncode == 0, loads.stderr
    port = free_port_block(1)
    (work / "host.yml").write_text(f"cluster: host\nprometheus: {{listen: '127.0.0.1:{port}'}}\n"
                                   "targets:\n  - {name: broker-1, role: broker, jolokia: {url: 'http://127.0.0.1:9/jolokia/'}}\n")
    proc = subprocess.Popen([str(host / "bin" / "kafka-jmx"), "serve", "--config", "host.yml"], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline and 'kafkajmx_target_up{cluster="host"' not in text:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                time.sleep(0.5)
        assert 'kafkajmx_target_up{cluster="host",node="broker-1",node_id="",role="broker"} 0.0' in text, text[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    rules = subprocess.run([str(host / "bin" / "kafka-jmx"), "generate", "--alerts-out", "alerts.yml",
                            "--brokers-min", "3"], capture_output=True, text=True, cwd=work, timeout=120)
    assert rules.returncode == 0 and "< 3" in (work / "alerts.yml").read_text(), rules.stderr
    lab = subprocess.run([str(host / "bin" / "kafka-jmx"), "generate", "--out", "artifacts"], capture_output=True,
                         text=True, cwd=work, timeout=120)
    assert lab.returncode == 2 and "pip install 'kafka-jmx-toolkit[lab]'" in lab.stderr, lab.stderr
