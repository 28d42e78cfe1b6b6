"""The exporter daemon: background collection per target, /metrics from the last results, health
metrics, TLS and basic auth, configuration errors."""
import contextlib
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import make_cluster, wait
from jvm_support import free_port_block, hung_jmx_url, require_jdk

from exporter.collector import Target
from exporter.config import PrometheusSpec, load_config
from exporter.daemon import Daemon
from exporter.rulesets import builtin_rules
from exporter.sources.jmx import JmxSource
from exporter.sources.jolokia import JolokiaSource
from kafka_common.yamlconf import ConfigError
from kafka_jmx.embedded import embedded_targets


@contextlib.contextmanager
def http_agent(respond):
    """A real HTTP server on 127.0.0.1 that answers every POST with respond(request_body) -> (status, body)."""
    class Agent(BaseHTTPRequestHandler):
        def do_POST(self):
            status, body = respond(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jolokia/"
    finally:
        server.shutdown()


def scrape(url, **kw):
    r = requests.get(url, timeout=5, **kw)
    r.raise_for_status()
    return r.text


def series(text, name):
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


@pytest.fixture
def running():
    c = make_cluster()
    # 0.5 s: eight targets of Kafka's full MBean set collected more often would saturate a 2-core CI machine
    targets = embedded_targets(c, interval_s=0.5, timeout_s=5.0)
    d = Daemon("prod", targets, builtin_rules(), PrometheusSpec(port=free_port_block(1)))
    d.start()
    yield c, d
    d.stop()


@pytest.mark.slow
def test_metrics_have_strimzi_names_and_target_labels(running):
    _c, d = running
    assert wait(lambda: all(w.result for w in d.workers), 10.0, step=0.05)
    d.renderer.render()
    text = scrape(d.url)
    [abc] = [s for s in series(text, "kafka_controller_kafkacontroller_activebrokercount") if 'node="controller-1001"' in s]
    assert 'cluster="prod"' in abc and 'node_id="1001"' in abc and 'role="controller"' in abc and abc.endswith(" 5.0")
    assert len(series(text, "kafka_controller_kafkacontroller_activecontrollercount")) == 3
    assert series(text, "kafka_server_replicamanager_underreplicatedpartitions")
    assert any('current_state="leader"' in s for s in series(text, "kafka_server_raftmetrics_current_state"))
    assert "# TYPE kafka_server_brokertopicmetrics_totalproducerequests_total counter" in text
    ups = series(text, "kafkajmx_target_up")
    assert len(ups) == 8 and all(s.endswith(" 1.0") for s in ups)
    assert 'kafkajmx_build_info{version="0.1.0"} 1.0' in text


@pytest.mark.slow
def test_a_dead_target_goes_down_without_stale_series_and_others_stay(running):
    c, d = running
    assert wait(lambda: all(w.result for w in d.workers), 10.0, step=0.05)
    with c.sched.lock:
        c.kill("broker-3")
    assert wait(lambda: not d.workers[5].result.up, 20, step=0.05)
    d.renderer.render()
    text = scrape(d.url)
    assert next(s for s in series(text, "kafkajmx_target_up") if 'node="broker-3"' in s).endswith(" 0.0")
    assert not [s for s in text.splitlines() if 'node="broker-3"' in s and not s.startswith("kafkajmx_")]
    [errors] = [s for s in series(text, "kafkajmx_collection_errors_total") if 'node="broker-3"' in s and 'kind="connect"' in s]
    assert float(errors.rsplit(" ", 1)[1]) >= 1
    assert len([s for s in series(text, "kafka_server_replicamanager_leadercount")]) == 4
    with c.sched.lock:
        c.restart("broker-3")
    assert wait(lambda: d.workers[5].result.up, 20, step=0.05)


@pytest.mark.slow
def test_a_hung_target_times_out_while_the_others_stay_on_time():
    require_jdk()
    c = make_cluster(topics=())
    with hung_jmx_url() as url:
        targets = embedded_targets(c, interval_s=0.5, timeout_s=5.0)
        targets.append(Target("hung", "broker", JmxSource("hung", url, timeout_ms=4_000), "9", {}, 0.5, 4.0))
        d = Daemon("prod", targets, builtin_rules(), PrometheusSpec(port=free_port_block(1)))
        d.start()
        try:
            # the hung target times out while every other target is collected on its own thread
            assert wait(lambda: d.workers[-1].errors["timeout"] >= 1
                            and all(w.result is not None and w.result.up for w in d.workers[:-1]), 20, step=0.05)
            started = time.monotonic()
            d.renderer.render()
            text = scrape(d.url)
            assert time.monotonic() - started < 2.0       # never waits for the hung target's 4 s
            assert next(s for s in series(text, "kafkajmx_target_up") if 'node="hung"' in s).endswith(" 0.0")
        finally:
            d.stop()


@pytest.mark.slow
def test_metrics_endpoint_with_tls_and_basic_auth(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    c = make_cluster(topics=())
    d = Daemon("prod", embedded_targets(c, interval_s=0.5), builtin_rules(),
               PrometheusSpec(port=free_port_block(1), cert=str(cert), key=str(key), username="prom", password="pw"))
    d.start()
    try:
        assert d.url.startswith("https://127.0.0.1:")
        assert requests.get(d.url, verify=str(cert), timeout=5).status_code == 401
        assert requests.get(d.url, verify=str(cert), auth=("prom", "wrong"), timeout=5).status_code == 401
        assert "kafkajmx_target_up" in scrape(d.url, verify=str(cert), auth=("prom", "pw"))
    finally:
        d.stop()


def test_config_loads_targets_secrets_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("JMX_PW", "s3cret")
    (tmp_path / "pw").write_text("fromfile\n")
    cfg = load_config(f"""
cluster: prod
collection: {{interval: 15s, timeout: 5s}}
include: ["kafka.*:*"]
prometheus: {{listen: "127.0.0.1:9555", basic_auth: {{username: prom, password_file: {tmp_path / 'pw'}}}}}
targets:
  - {{name: c1, role: controller, node_id: 1001, jmx: {{url: "service:jmx:rmi:///jndi/rmi://h:9999/jmxrmi", username: m, password_env: JMX_PW}}}}
  - {{name: b1, role: broker, node_id: 1, jolokia: {{url: "http://h:8778/jolokia/"}}, labels: {{rack: a}}, interval: 30s}}
""", str(tmp_path / "exporter.yml"))
    assert cfg.cluster == "prod" and cfg.includes[0] == "kafka.*:*" and "java.lang:type=Runtime" in cfg.includes
    c1, b1 = cfg.targets
    assert c1.source.password == "s3cret" and c1.interval_s == 15 and c1.timeout_s == 5
    assert b1.source.kind == "jolokia" and b1.labels == {"rack": "a"} and b1.interval_s == 30
    assert cfg.prometheus.port == 9555 and cfg.prometheus.password == "fromfile"


@pytest.mark.parametrize("text,expected", [
    ("targets: []\nbogus: 1\n", "x.yml:2: bogus: unknown key 'bogus'"),
    ("targets:\n  - {name: a, role: broker}\n", "x.yml:2: targets[0]: give exactly one source: jmx or jolokia"),
    ("targets:\n  - {name: a, role: zookeeper, jolokia: {url: 'http://h/'}}\n",
     "x.yml:2: targets[0].role: role must be broker, controller or combined (process.roles=broker,controller), got 'zookeeper'"),
    ("targets:\n  - {name: a, role: broker, jmx: {url: 'localhost:9999'}}\n", "targets[0].jmx.url: expected a JMX service URL"),
    ("targets:\n  - {name: a, role: broker, jmx: {url: 'service:jmx:x', password_env: NOPE_NOT_SET}}\n",
     "targets[0].jmx.password_env: environment variable NOPE_NOT_SET is not set"),
    ("collection: {interval: often}\ntargets: []\n", "x.yml:1: collection.interval: expected a duration"),
    ("prometheus: {listen: 9404}\ntargets: []\n", "prometheus.listen: expected HOST:PORT"),
    ("rules: /nope/rules.yml\ntargets: []\n", "rules: rules file /nope/rules.yml not found"),
    ("include: ['kafka.server']\ntargets: []\n", "include[0]: not an ObjectName pattern"),
    ("{}\n", "nothing to collect"),
    ("zabbix: {server: z, tls: {psk_identity: k, psk: 'abc'}}\ntargets: []\n",
     "x.yml:1: zabbix.tls: the PSK must be an even number of hex digits, 32 to 512"),
    ("zabbix: {server: z, tls: {psk: '00112233445566778899aabbccddeeff'}}\ntargets: []\n",
     "zabbix.tls: missing required key 'psk_identity'"),
    ("zabbix: {server: z, tls: {psk_identity: k}}\ntargets: []\n", "zabbix.tls: give the key as psk_file or psk_env"),
])
def test_config_errors_name_file_line_and_key(text, expected):
    with pytest.raises(ConfigError) as e:
        load_config(text, "x.yml")
    assert expected in str(e.value)


def test_secrets_never_appear_in_errors(monkeypatch):
    monkeypatch.setenv("PW", "hunter2-secret")
    with pytest.raises(ConfigError) as e:
        load_config("targets:\n  - {name: a, role: broker, jmx: {url: 'nope', password_env: PW}}\n", "x.yml")
    assert "hunter2" not in str(e.value)
    monkeypatch.setenv("PSK", "hunter2-not-hex")
    with pytest.raises(ConfigError) as e:
        load_config("zabbix: {server: z, tls: {psk_identity: k, psk_env: PSK}}\ntargets: []\n", "x.yml")
    assert "hunter2" not in str(e.value) and "zabbix.tls" in str(e.value)


def test_zabbix_psk_from_a_file(tmp_path):
    key = tmp_path / "zabbix.psk"
    key.write_text("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")
    cfg = load_config(f"zabbix: {{server: 'z:10051', tls: {{psk_identity: kafka-jmx, psk_file: {key}}}}}\n"
                      "targets:\n  - {name: b1, role: broker, jolokia: {url: 'http://h/'}}\n", "x.yml")
    assert cfg.zabbix.psk == ("kafka-jmx", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")


@pytest.mark.slow
def test_rules_test_command_prints_the_exposition(tmp_path, capsys):
    from kafka_jmx.cli import main
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {brokers: 3, controllers: 3, seed: 1}\n"
                        "topics:\n  - {name: t, partitions: 3, replication_factor: 3}\nrun_for: 20s\n")
    dump = tmp_path / "d.json"
    assert main(["simulate", str(scenario), "--dump", str(dump)]) == 0
    capsys.readouterr()
    assert main(["rules", "test", "builtin", "--mbeans", str(dump), "--target-labels"]) == 0
    out = capsys.readouterr().out
    assert 'kafka_controller_kafkacontroller_activebrokercount{cluster="kafka",node="controller-1001"' in out
    assert "kafka_log_log_size{" in out and 'topic="t"' in out
    # by default what jmx_exporter prints: the rules' labels only; an indented dump reads the same
    indented = tmp_path / "indented.json"
    indented.write_text(json.dumps(json.loads(dump.read_text()), indent=2))
    assert main(["rules", "test", "builtin", "--mbeans", str(indented)]) == 0
    plain = capsys.readouterr().out
    assert "\nkafka_controller_kafkacontroller_activebrokercount 3.0\n" in plain
    assert "activebrokercount{" not in plain


@pytest.mark.slow
def test_a_target_answering_garbage_goes_down_and_recovers_while_the_others_stay():
    answer = {"body": b"<html>502 Bad Gateway</html>"}
    with http_agent(lambda _: (200, answer["body"])) as url:
        c = make_cluster(topics=())
        targets = embedded_targets(c, interval_s=0.2, timeout_s=2.0)
        targets.append(Target("garbage", "broker", JolokiaSource("garbage", url, includes=["kafka.server:*"]), "9", {},
                              0.2, 1.0))
        d = Daemon("prod", targets, builtin_rules(), PrometheusSpec(port=free_port_block(1)))
        d.start()
        try:
            assert wait(lambda: d.workers[-1].errors["protocol"] >= 1 and d.workers[-1].result is not None, 10, step=0.05)
            assert not d.workers[-1].result.up and d.workers[-1].result.error_kind == "protocol"
            assert wait(lambda: all(w.result is not None and w.result.up for w in d.workers[:-1]), 10, step=0.05)
            answer["body"] = (b'[{"status": 200, "value": {"kafka.server:type=ReplicaManager,name=LeaderCount": '
                              b'{"Value": 0}}}]')
            assert wait(lambda: d.workers[-1].result.up, 10, step=0.05)
        finally:
            d.stop()


def test_jolokia_requests_are_plain_reads_never_proxy_requests():
    """A Jolokia agent in proxy mode would forward a request carrying "target" to any JMX URL;
    the exporter only ever asks the agent about its own JVM."""
    bodies: list = []
    answer = json.dumps([{"status": 200, "value": {"kafka.server:type=ReplicaManager,name=LeaderCount":
                                                   {"Value": 4}}}]).encode()

    def respond(body):
        bodies.append(json.loads(body))
        return 200, answer

    with http_agent(respond) as url:
        source = JolokiaSource("j", url, includes=["kafka.server:*"])
        samples = source.read().samples
        source.close()
    assert [(s.attr, s.value) for s in samples] == [("Value", 4)]
    assert bodies and all(r["type"] == "read" and "target" not in r for body in bodies for r in body)


def test_an_answer_that_breaks_off_is_a_connection_error_not_a_traceback(caplog):
    """A broker killed while its agent writes the answer: the chunked body ends early."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_half():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"400\r\n[{\"status\": 200, \"val")
        conn.close()

    threading.Thread(target=answer_half, daemon=True).start()
    from exporter.collector import TargetWorker
    url = f"http://127.0.0.1:{server.getsockname()[1]}/jolokia/"
    worker = TargetWorker(Target("broker-3", "broker", JolokiaSource("broker-3", url), "3", {}, 30.0, 5.0),
                          builtin_rules(), lambda w: None)
    with caplog.at_level("DEBUG"):
        result = worker.collect_once()
    server.close()
    assert not result.up and result.error_kind == "connect" and "broke off" in result.error, result
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_a_refused_password_never_appears_in_logs_or_metrics(caplog):
    with http_agent(lambda _: (401, b"")) as url, caplog.at_level("DEBUG"):
        source = JolokiaSource("locked", url, username="monitor", password="hunter2-secret")
        d = Daemon("prod", [Target("locked", "broker", source, "1", {}, 0.2, 1.0)], builtin_rules(),
                   PrometheusSpec(port=free_port_block(1)))
        d.start()
        try:
            assert wait(lambda: d.workers[0].errors["auth"] >= 1 and d.workers[0].result is not None, 10, step=0.05)
            d.renderer.render()
            text = scrape(d.url)
        finally:
            d.stop()
    assert 'kind="auth"' in text and "check the Jolokia user and password" in caplog.text
    assert "hunter2" not in text and "hunter2" not in caplog.text and "hunter2" not in d.workers[0].result.error


def test_targets_go_through_rules_and_rendering_one_at_a_time():
    """What bounds the exporter's memory: one target's samples, matches and lines at once."""
    from exporter.collector import TargetWorker
    from exporter.sample import Collection, Sample

    inside, overlaps = [], []

    class Source:
        def read(self):
            return Collection([Sample("kafka.server", (("type", "KafkaServer"), ("name", "BrokerState")), (), "Value",
                                      3, 0.0)], {})

        def close(self):
            pass

    def on_collection(target, collection):
        inside.append(target.name)
        if len(inside) > 1:
            overlaps.append(tuple(inside))
        time.sleep(0.05)
        inside.remove(target.name)

    workers = [TargetWorker(Target(f"broker-{i}", "broker", Source()), builtin_rules(), lambda w: None, on_collection)
               for i in range(4)]
    threads = [threading.Thread(target=w.collect_once) for w in workers for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not overlaps
    assert all(w.result is not None and w.result.up and w.result.series == 1 for w in workers)


def test_the_exporter_names_zabbix_hosts_as_provision_creates_them():
    """The quickstart's `zabbix: {server: ...}` without host_name pushes to the hosts `zabbix provision`
    made (CLUSTER-NODE): with `{node}` Zabbix refused every value."""
    import inspect

    from exporter.catalog.model import load_catalog
    from exporter.provision import Provisioner
    from exporter.trapper import TrapperSink
    cfg = load_config("cluster: prod\nzabbix: {server: 'zabbix.example:10051'}\n"
                      "targets:\n  - {name: broker-1, role: broker, node_id: 1, jolokia: {url: 'http://b1:8778/jolokia/'}}\n")
    provisioned = inspect.signature(Provisioner.provision).parameters["host_name"].default
    assert cfg.zabbix.host_name == provisioned
    sink = TrapperSink(cfg.zabbix.server, cfg.zabbix.port, load_catalog(), cfg.cluster, cfg.zabbix.host_name)
    target = Target("broker-1", "broker", JolokiaSource("broker-1", "http://b1:8778/jolokia/"), "1", {}, 30.0, 10.0)
    assert sink.host_for(target) == provisioned.format(cluster="prod", node="broker-1") == "prod-broker-1"


def test_a_target_is_not_reported_down_before_its_first_collection_ends():
    """A JMX target's first collection waits for the helper JVM to compile (about 10 s): up 0 then read as
    'down' in the quickstart's check. Until a collection ends there is no up series; the error counters are there."""
    from exporter.collector import HealthView, TargetWorker
    worker = TargetWorker(Target("broker-1", "broker", JolokiaSource("broker-1", "http://127.0.0.1:9/jolokia/"), "1",
                                 {}, 30.0, 10.0), builtin_rules(), lambda w: None)
    view = HealthView([worker], "prod")

    def samples(name):
        return [s for m in view.collect() for s in m.samples if s.name == name]
    assert samples("kafkajmx_target_up") == [] and samples("kafkajmx_collection_errors_total")
    worker.collect_once()           # nothing listens on port 9: the first collection fails
    [up] = samples("kafkajmx_target_up")
    assert up.value == 0.0


def test_the_expected_broker_count_is_published_from_the_config():
    from exporter.collector import HealthView, TargetWorker
    text = ("cluster: prod\ntargets:\n"
            + "".join(f"  - {{name: broker-{i}, role: broker, node_id: {i}, jolokia: {{url: 'http://b{i}:8778/jolokia/'}}}}\n"
                      for i in (1, 2, 3))
            + "  - {name: controller-1, role: controller, node_id: 1001, jolokia: {url: 'http://c1:8778/jolokia/'}}\n")
    for extra, expected in (("", 3.0), ("brokers_expected: 5\n", 5.0)):
        cfg = load_config(extra + text)
        workers = [TargetWorker(Target(t.name, t.role, JolokiaSource(t.name, t.source.url), t.node_id, {}, 30.0, 10.0),
                                builtin_rules(), lambda w: None) for t in cfg.targets]
        [s] = [s for m in HealthView(workers, "prod", cfg.brokers_expected).collect() for s in m.samples
               if s.name == "kafkajmx_brokers_expected"]
        assert s.labels == {"cluster": "prod"} and s.value == expected
    with pytest.raises(ConfigError, match=re.escape("x.yml:1: brokers_expected: expected a positive integer, got 0")):
        load_config("brokers_expected: 0\n" + text, "x.yml")
