"""The README's "Monitor your real Kafka in five minutes", followed literally: its blocks are read from
README.md (so the guide cannot drift from the product) and only the addresses are this machine's.

Real Kafka 4.1 (3 controllers read over JMX, 3 brokers over Jolokia with a user and the guide's
read-only policy; a producer and a consumer group), the wheel installed into a venv of the system
Python, `serve` run as the unprivileged `kafka-jmx` user with a clean environment, Zabbix provisioned
with the guide's command, Prometheus with the guide's config and the rules `generate --out` writes.
What the first user met (reference: issue 29) is each checked here: every pushed value accepted, no
alert or problem on the healthy cluster, a broker's loss raising both, lag served through the outage
and a group stopping during it raising "stopped with lag", and a stop without a traceback."""
from __future__ import annotations

import copy
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT, wait
from jvm_support import free_port_block, kafka_port_block, require_jolokia, require_real_kafka
from prometheus_server import PrometheusServer

from broker.scenario import Fault, load_scenario
from realkafka.cluster import RealCluster
from realkafka.engine import Engine
from realkafka.install import DEFAULT_LINE

# real Kafka clusters: one of make test's two CPU slots while the module runs (tests/conftest.py)
CPU_SLOTS = 1

pytestmark = pytest.mark.slow
USER = "kafka-jmx"
JOLOKIA_PASSWORD = "quickstart-secret"
WORKLOAD = """cluster: {brokers: 3, controllers: 3}
topics: [{name: orders, partitions: 6, replication_factor: 3, min_insync_replicas: 2}]
workload:
  - {producer: p1, topic: orders, rate: 20}
  - {consumer_group: billing, topic: orders, members: 2}
"""
# what a broker's loss may raise besides its own problem: its fencing (the stop of the group is asked for)
BROKER_LOSS = ("only 2 active brokers", "fenced brokers", "stopped with lag")


def readme_block(name: str) -> str:
    """The fenced block after `<!-- quickstart: NAME -->` in README.md, dedented."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- quickstart: " + re.escape(name) + r" -->\n[ ]*```\w*\n(.*?)\n[ ]*```", text, re.S)
    assert m, f"README.md has no quickstart block {name!r}"
    return textwrap.dedent(m.group(1))


def run(cmd: str | list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout}\n{out.stderr}"
    return out


def as_service_user(path: Path, mode: int) -> None:
    shutil.chown(path, group=USER)
    path.chmod(mode)


@pytest.fixture(scope="module")
def quickstart(zabbix70, zabbix70_api):
    """The guide on Zabbix 7.0 LTS, what most of its readers run."""
    zabbix, zabbix_api = zabbix70, zabbix70_api
    require_jolokia()
    require_real_kafka(DEFAULT_LINE)
    if shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"):
        pytest.fail("the quickstart needs Debian's /usr/bin/python3 and setpriv (util-linux)")
    home = Path(tempfile.mkdtemp(prefix="kafka-jmx-quickstart-"))
    home.chmod(0o755)           # the service user reaches its venv and config below
    policy = home / "jolokia-access.xml"
    policy.write_text(readme_block("jolokia-access.xml") + "\n")
    policy.chmod(0o644)
    base = kafka_port_block()
    cluster = RealCluster(DEFAULT_LINE, brokers=3, controllers=3, jmx_base_port=base, kafka_base_port=base + 8,
                          jolokia_base_port=base + 16,
                          jolokia_options=f",user=monitor,password={JOLOKIA_PASSWORD},policyLocation=file://{policy}")
    engine = serve = prom = None
    try:
        cluster.start()
        engine = Engine(load_scenario(WORKLOAD), cluster, out=open(os.devnull, "w"))
        engine.create_topics()
        engine.start_workload()
        venv, etc = home / "opt-kafka-jmx", home / "etc-kafka-jmx"
        install(home, venv, etc)
        # below the ephemeral range, as the other services' ports: an outgoing connection of the JVMs or
        # clients could be handed an ephemeral one before `serve` binds it
        port = free_port_block(1, low=20000)
        config = exporter_config(cluster, zabbix.server_port, port, etc)
        (etc / "exporter.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        as_service_user(etc / "exporter.yml", 0o640)
        provision(venv, zabbix.api_url.removesuffix("api_jsonrpc.php"), cluster)
        # the operator's own period for the group stop (the template's is 5m), on the cluster's host
        [host] = zabbix_api.host.get(filter={"host": "prod-cluster"}, output=["hostid"])
        zabbix_api.usermacro.create(hostid=host["hostid"], macro="{$KAFKA.GROUP.STOPPED.PERIOD}", value="30s")
        zabbix.reload_config_cache()
        cache = home / "cache"
        cache.mkdir()
        shutil.chown(cache, user=USER, group=USER)
        log = home / "serve.log"
        # as systemd runs the unit: the service user, a clean environment, its own process group
        serve = subprocess.Popen(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
                                  str(venv / "bin" / "kafka-jmx"), "serve", "--config", str(etc / "exporter.yml")],
                                 cwd="/", env={"PATH": os.environ["PATH"], "KAFKA_JMX_CACHE": str(cache), "LANG": "C.UTF-8"},
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        prom = prometheus(home, venv, port)
        yield Quickstart(cluster, engine, zabbix_api, prom, serve, log, f"http://127.0.0.1:{port}/metrics",
                         zabbix.api_url.removesuffix("api_jsonrpc.php"))
    finally:
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        if prom is not None:
            prom.stop()
        if engine is not None:
            engine.close()
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def install(home: Path, venv: Path, etc: Path) -> None:
    """Step 2's commands, with this checkout's wheel, this test's folders, and the user kept if there."""
    try:
        pwd.getpwnam(USER)
        have_user = True
    except KeyError:
        have_user = False
    for line in readme_block("install").splitlines():
        if line.startswith("useradd") and have_user:
            continue
        line = line.replace("pip wheel", f"{shlex.quote(str(ROOT / '.venv' / 'bin' / 'python'))} -m pip wheel")
        line = line.replace("-w dist .", f"-w {home / 'dist'} {shlex.quote(str(ROOT))}")
        line = line.replace("dist/", f"{home / 'dist'}/").replace("/opt/kafka-jmx", str(venv))
        run(line.replace("/etc/kafka-jmx", str(etc)), cwd=home)
    assert (venv / "bin" / "kafka-jmx").exists() and os.path.realpath(venv / "bin" / "python").startswith("/usr/")


def exporter_config(cluster: RealCluster, zabbix_port: int, port: int, etc: Path) -> dict:
    """The guide's exporter.yml: its keys as written, one target per node after the guide's own two."""
    config = yaml.safe_load(readme_block("exporter.yml"))
    example = {t["role"]: t for t in config.pop("targets")}
    config["prometheus"]["listen"] = f"127.0.0.1:{port}"
    config["zabbix"]["server"] = f"127.0.0.1:{zabbix_port}"
    config["kafka"]["bootstrap_servers"] = cluster.bootstrap_servers()
    targets = []
    for name, node in cluster.nodes.items():
        t = copy.deepcopy(example[node.role])
        t.update(name=name, node_id=node.node_id)
        if "jmx" in t:
            t["jmx"]["url"] = re.sub(r"//[\w.-]+:\d+/jmxrmi", f"//127.0.0.1:{node.jmx_port}/jmxrmi", t["jmx"]["url"])
        else:
            t["jolokia"]["url"] = re.sub(r"//[\w.-]+:\d+/", f"//127.0.0.1:{node.jolokia_port}/", t["jolokia"]["url"])
            secret = etc / Path(t["jolokia"]["password_file"]).name
            secret.write_text(JOLOKIA_PASSWORD + "\n")
            as_service_user(secret, 0o640)
            t["jolokia"]["password_file"] = str(secret)
        targets.append(t)
    config["targets"] = targets
    return config


def provision(venv: Path, frontend: str, cluster: RealCluster) -> None:
    """Step 4's command, with one --node per node in the guide's form."""
    words = shlex.split(readme_block("provision").replace("\\\n", " "))
    assignment, exe, *args = words
    assert assignment.startswith("ZABBIX_PASSWORD=") and exe == "/opt/kafka-jmx/bin/kafka-jmx"
    kept, skip = [], False
    for word in args:                   # the guide's --url and --node values are this machine's
        if skip:
            skip = False
        elif word in ("--url", "--node"):
            skip = True
            kept += ["--url", frontend] if word == "--url" else []
        else:
            kept.append(word)
    nodes = [f"{name}={node.role}@127.0.0.1:{node.jmx_port}" for name, node in cluster.nodes.items()]
    out = run([str(venv / "bin" / "kafka-jmx"), *kept, *(a for n in nodes for a in ("--node", n))],
              env={**os.environ, "ZABBIX_PASSWORD": "zabbix"})
    assert "host group 'Kafka prod'" in out.stdout and "prod-broker-3" in out.stdout, out.stdout


def prometheus(home: Path, venv: Path, port: int) -> PrometheusServer:
    """Step 5: the guide's prometheus.yml, its rule file written by the guide's command."""
    words = shlex.split(readme_block("alerts"))
    guide_rules = words[words.index("--alerts-out") + 1]
    rules = home / "kafka-4x-alerts.yml"
    run([str(venv / "bin" / "kafka-jmx"), *[str(rules) if w == guide_rules else w for w in words[1:]]])
    config = yaml.safe_load(readme_block("prometheus.yml"))
    assert config["rule_files"] == [guide_rules]
    [job] = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config["rule_files"] = [str(rules)]
    prom = PrometheusServer(home / "prometheus", free_port_block(1, low=20000), [], [], config=config)
    prom.start()
    return prom


class Quickstart:
    def __init__(self, cluster, engine, api, prom, serve, log, url, frontend) -> None:
        self.cluster, self.engine, self.api, self.prom, self.serve, self.log, self.url, self.frontend = \
            cluster, engine, api, prom, serve, log, url, frontend
        self.hostids = [h["hostid"] for h in api.host.get(search={"host": "prod-"}, output=["hostid"])]

    def answers(self) -> bool:
        """`serve` listens (it binds its port a moment after it starts)."""
        try:
            requests.get(self.url, timeout=5)
        except requests.ConnectionError:
            return False
        return True

    def metric(self, name: str) -> list[float]:
        text = requests.get(self.url, timeout=5).text
        return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith(name + "{") or line.startswith(name + " ")]

    def problems(self) -> list[str]:
        return [p["name"] for p in self.api.problem.get(hostids=self.hostids, output=["name"])]

    def alerts(self) -> list[tuple[str, str]]:
        return [(a["labels"]["alertname"], a["state"]) for a in self.prom.alerts()]

    def lastvalue(self, host: str, key: str) -> str | None:
        items = self.api.item.get(host=host, filter={"key_": key}, output=["lastvalue", "lastclock"])
        return items[0]["lastvalue"] if items and items[0]["lastclock"] != "0" else None


def dashboards_show_the_cluster(q: Quickstart) -> None:
    """What the operator opens next: the template dashboards of the cluster, a broker and a controller in the
    real 7.0 frontend (chromium). Every widget draws, without an error, and shows the cluster's data: each
    graph a line, each graph prototype its discovered topics or groups. A screenshot per page is kept in
    build/test-output/zabbix-7.0-dashboards."""
    from zabbix_browser import Frontend, missing
    if missing():
        pytest.fail(f"the dashboard check needs {' '.join(missing())} (scripts/install-system-deps browser)")
    out = ROOT / "build" / "test-output" / "zabbix-7.0-dashboards"
    shutil.rmtree(out, ignore_errors=True)
    browser = Frontend(q.frontend)
    try:
        browser.login()
        pages = browser.read_dashboards(q.api, ["prod-cluster", "prod-broker-1", "prod-controller-1001"], out)
    finally:
        browser.close()
    print("quickstart: dashboards in the 7.0 frontend:", {page: len(ws) for page, ws in pages.items()}, "->", out)
    assert {"prod-cluster / Cluster", "prod-cluster / Consumer groups", "prod-broker-1 / Topics",
            "prod-controller-1001 / Quorum"} <= set(pages), sorted(pages)
    bad = {page: [str(w) for w in ws if w.problem or not w.graphs or w.blank] for page, ws in pages.items()}
    assert {page: ws for page, ws in bad.items() if ws} == {}


def test_the_quickstart_monitors_a_healthy_cluster_quietly_and_pages_for_a_lost_broker(quickstart):
    q = quickstart
    # step 3's check: one target_up per node, each 1
    assert wait(q.answers, 60), q.log.read_text()[-3000:]
    assert wait(lambda: q.metric("kafkajmx_target_up") == [1.0] * 6, 90), q.log.read_text()[-3000:]
    # the brokers' Jolokia: a user, and the policy refuses all but reading
    jolokia = next(iter(q.cluster.jolokia_urls().values()))
    assert requests.get(jolokia + "version", timeout=5).status_code == 401
    refused = requests.post(jolokia, json={"type": "exec", "mbean": "java.lang:type=Memory", "operation": "gc"},
                            auth=("monitor", JOLOKIA_PASSWORD), timeout=5).json()
    assert refused["status"] == 403, refused
    # Zabbix has the cluster, the consumer group and its lag from the exporter's push
    active = 'kafka.cluster.active_brokers'
    assert wait(lambda: q.lastvalue("prod-cluster", active) == "3", 240), q.problems()
    assert wait(lambda: q.lastvalue("prod-cluster", 'kafka.group.lag["billing","orders"]') is not None, 240)
    assert wait(lambda: q.prom.query('kafka_controller_kafkacontroller_activebrokercount == 3'), 60)
    # a healthy cluster for another minute: no alert, not even pending (what would page shows as pending at
    # its first evaluation), no problem, no refused value
    healthy_until = time.monotonic() + 60
    while time.monotonic() < healthy_until:
        assert q.alerts() == [] and q.problems() == [], (q.alerts(), q.problems())
        time.sleep(5)
    assert q.metric("kafkajmx_zabbix_refused_values_total") == [0.0]
    assert q.metric("kafkajmx_zabbix_sent_values_total")[0] > 500
    assert "refused" not in q.log.read_text()
    dashboards_show_the_cluster(q)

    q.cluster.kill("broker-3")
    killed = time.monotonic()
    q.engine.apply(Fault(0, "stop_consumer", "billing"))         # the group's application goes down too
    fresh = 'timestamp(kafka_consumergroup_lag_sum{consumergroup="billing"}) > time() - 45'
    seen: dict[str, float] = {}

    def paged() -> bool:
        # lag stays served all through the outage (it went silent for minutes before)
        assert q.prom.query(fresh), q.log.read_text()[-3000:]
        for name, state in q.alerts():
            if state == "firing":
                seen.setdefault(name, time.monotonic() - killed)
        for problem in q.problems():
            seen.setdefault(problem, time.monotonic() - killed)
        return {"KafkaActiveBrokersBelowMinimum", "Kafka prod: only 2 active brokers",
                "Kafka consumer group billing: stopped with lag"} <= set(seen) \
            and bool(q.prom.query('kafka_consumergroup_status{consumergroup="billing"} == 3'))
    assert wait(paged, 300, step=5), (seen, q.problems(), q.alerts())
    print("quickstart: broker-3 killed, then the group stopped; first seen after (s):",
          {k: round(v, 1) for k, v in sorted(seen.items(), key=lambda kv: kv[1])})
    assert [p for p in q.problems() if not any(allowed in p for allowed in BROKER_LOSS)] == []
    # firing or pending (their for: is still running): the loss, the fencing, the dead node's target, the
    # replicas it held, the group stop; and, pending only, the stopped group falling behind while its rate
    # window still holds its consumption (its 15 minutes never pass: the consumption leaves the window first)
    alerts = q.alerts()
    assert {name for name, _ in alerts} <= {"KafkaActiveBrokersBelowMinimum", "KafkaFencedBrokers", "KafkaTargetDown",
                                            "KafkaUnderReplicatedPartitions", "KafkaConsumerGroupStopped",
                                            "KafkaConsumerGroupFallingBehind"}, alerts
    assert ("KafkaConsumerGroupFallingBehind", "firing") not in alerts
    assert q.metric("kafkajmx_kafka_groups_unread") == [0.0]

    # systemd's stop (KillMode=mixed): SIGTERM to the daemon, which stops its JVM and reader itself
    q.serve.send_signal(signal.SIGTERM)
    assert q.serve.wait(30) == 0
    log = q.log.read_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
