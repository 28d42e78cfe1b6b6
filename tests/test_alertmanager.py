"""The shipped Alertmanager routing tree and inhibitions (templates/prometheus/alertmanager-kafka.yml) on a real
Alertmanager: amtool accepts it and routes each severity to its receiver; a cause holds back the alerts it
explains, and only those; the rehearsal's webhook inbox receives what pages and what resolves."""
import datetime
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT
from jvm_support import free_port_block
from prometheus_server import AlertmanagerServer, binary

from exporter.catalog import alertmanager
from exporter.catalog.model import load_catalog
from kafka_jmx.notifications import Inbox

SHIPPED = ROOT / "templates" / "prometheus" / "alertmanager-kafka.yml"
CATALOG = load_catalog()


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary("amtool"), *args], capture_output=True, text=True)


def test_amtool_accepts_the_shipped_and_the_rehearsal_configurations(tmp_path):
    out = amtool("check-config", str(SHIPPED))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(CATALOG.inhibitions)} inhibit rules" in out.stdout and "4 receivers" in out.stdout
    fast = tmp_path / "fast.yml"
    fast.write_text(alertmanager.serialize(alertmanager.render(CATALOG, "10s", "http://127.0.0.1:1/"), CATALOG))
    out = amtool("check-config", str(fast))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("labels,receiver", [
    ({"alertname": "KafkaOfflinePartitions", "severity": "critical", "cluster": "prod"}, "kafka-critical"),
    ({"alertname": "KafkaUnderReplicatedPartitions", "severity": "warning", "cluster": "prod"}, "kafka-warning"),
    ({"alertname": "KafkaControllerElection", "severity": "info", "cluster": "prod"}, "kafka-info"),
    ({"alertname": "NodeFilesystemFull", "severity": "critical"}, "default"),
])
def test_each_severity_reaches_its_receiver(labels, receiver):
    out = amtool("config", "routes", "test", f"--config.file={SHIPPED}", *(f"{k}={v}" for k, v in labels.items()))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == receiver


def test_every_severity_the_catalog_uses_has_a_receiver_and_every_inhibition_names_alerts_that_exist():
    doc = yaml.safe_load(SHIPPED.read_text())
    names = {t.alert.name for t in CATALOG.triggers} | {t.alert.name for t in CATALOG.groups.triggers}
    for rule in doc["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname=~") and matcher != alertmanager.ROUTE_MATCHER:
                assert set(matcher.split('"')[1].split("|")) <= names, matcher
    severities = {t.alert.severity for t in CATALOG.triggers} | {t.alert.severity for t in CATALOG.groups.triggers}
    assert {alertmanager.receiver(s) for s in severities} <= {r["name"] for r in doc["receivers"]}


@pytest.fixture(scope="module")
def alertmanager_inbox():
    """A real Alertmanager on the shipped inhibitions with rehearsal timings, notifying a webhook inbox."""
    inbox = Inbox("127.0.0.1", free_port_block(1, low=20000))
    inbox.start()
    state = Path(tempfile.mkdtemp(prefix="kafka-jmx-am-"))
    server = AlertmanagerServer(state, free_port_block(1, low=20000),
                                alertmanager.render(CATALOG, "10s", inbox.url))
    server.start()
    try:
        yield server, inbox
    finally:
        server.stop()
        inbox.stop()
        shutil.rmtree(state, ignore_errors=True)


def post(am: AlertmanagerServer, *alerts: dict, resolved: bool = False) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ends = now if resolved else now + datetime.timedelta(minutes=5)
    body = [{"labels": a, "startsAt": (now - datetime.timedelta(seconds=30)).isoformat(), "endsAt": ends.isoformat()}
            for a in alerts]
    requests.post(f"{am.url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def states(am: AlertmanagerServer, cluster: str) -> dict[tuple[str, str], str]:
    return {(a["labels"]["alertname"], a["labels"].get("node", "")): a["status"]["state"]
            for a in am.alerts() if a["labels"].get("cluster") == cluster}


def wait(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.2)
    return check()


def alert(name: str, cluster: str, node: str = "", severity: str = "warning") -> dict:
    return {"alertname": name, "cluster": cluster, "severity": severity, **({"node": node} if node else {})}


def test_a_broker_down_holds_back_the_under_replication_it_causes_and_nothing_else(alertmanager_inbox):
    server, _ = alertmanager_inbox
    post(server, alert("KafkaFencedBrokers", "c1"), alert("KafkaUnderReplicatedPartitions", "c1", "broker-1"),
         alert("KafkaIsrShrinking", "c1", "broker-2"), alert("KafkaUnderMinIsrPartitions", "c1", "broker-1", "critical"),
         alert("KafkaUnderReplicatedPartitions", "c2", "broker-1"))
    want = {("KafkaFencedBrokers", ""): "active", ("KafkaUnderReplicatedPartitions", "broker-1"): "suppressed",
            ("KafkaIsrShrinking", "broker-2"): "suppressed", ("KafkaUnderMinIsrPartitions", "broker-1"): "active"}
    assert wait(lambda: states(server, "c1") == want), states(server, "c1")
    assert states(server, "c2") == {("KafkaUnderReplicatedPartitions", "broker-1"): "active"}   # another cluster


def test_a_node_that_cannot_be_read_holds_back_its_own_alerts_not_the_others_nodes(alertmanager_inbox):
    server, _ = alertmanager_inbox
    post(server, alert("KafkaTargetDown", "c3", "broker-2", "critical"),
         alert("KafkaBrokerNotRunning", "c3", "broker-2", "critical"), alert("KafkaRestarted", "c3", "broker-2", "info"),
         alert("KafkaBrokerNotRunning", "c3", "broker-3", "critical"), alert("KafkaOfflinePartitions", "c3", "", "critical"))
    want = {("KafkaTargetDown", "broker-2"): "active", ("KafkaBrokerNotRunning", "broker-2"): "suppressed",
            ("KafkaRestarted", "broker-2"): "suppressed", ("KafkaBrokerNotRunning", "broker-3"): "active",
            ("KafkaOfflinePartitions", ""): "active"}
    assert wait(lambda: states(server, "c3") == want), states(server, "c3")


def test_no_quorum_holds_back_the_controller_count_and_elections(alertmanager_inbox):
    server, _ = alertmanager_inbox
    post(server, alert("KafkaRaftNoLeader", "c4", "broker-1", "critical"),
         alert("KafkaActiveControllerCountNotOne", "c4", "", "critical"), alert("KafkaControllerElection", "c4", "", "info"),
         alert("KafkaOfflinePartitions", "c4", "", "critical"))
    want = {("KafkaRaftNoLeader", "broker-1"): "active", ("KafkaActiveControllerCountNotOne", ""): "suppressed",
            ("KafkaControllerElection", ""): "suppressed", ("KafkaOfflinePartitions", ""): "active"}
    assert wait(lambda: states(server, "c4") == want), states(server, "c4")


def test_the_inbox_receives_what_pages_and_what_resolves_and_not_what_is_held_back(alertmanager_inbox):
    """The cause first, as the catalog's periods order them (KafkaFencedBrokers after 1m, under-replication
    after 5m): an alert pending longer than group_wait is sent the moment it arrives, so an inhibition holds
    only for a cause already firing then."""
    server, inbox = alertmanager_inbox
    cause, held = alert("KafkaFencedBrokers", "c5"), alert("KafkaUnderReplicatedPartitions", "c5", "broker-1")
    post(server, cause)
    assert wait(lambda: {n.alertname: n.status for n in inbox.latest("c5").values()}) == {"KafkaFencedBrokers": "firing"}
    post(server, cause, held)
    assert wait(lambda: states(server, "c5").get(("KafkaUnderReplicatedPartitions", "broker-1")) == "suppressed")
    time.sleep(3)           # a group_interval and more: nothing more arrives
    assert {n.alertname: n.status for n in inbox.latest("c5").values()} == {"KafkaFencedBrokers": "firing"}
    post(server, cause, resolved=True)
    assert wait(lambda: {n.alertname: n.status for n in inbox.latest("c5").values()}.get("KafkaFencedBrokers")
                == "resolved")
    # the cause gone, what it held back pages on its own
    assert wait(lambda: {n.alertname for n in inbox.latest("c5").values() if n.status == "firing"}
                == {"KafkaUnderReplicatedPartitions"})
    assert inbox.errors == []


def test_the_rehearsals_watch_counts_a_held_back_alert_as_paged_by_its_cause_and_over_when_resolved(alertmanager_inbox):
    from kafka_jmx.notifications import AlertmanagerWatch
    server, inbox = alertmanager_inbox
    watch = AlertmanagerWatch(server.url, inbox, "c6")
    trigger = {t.id: t for t in CATALOG.triggers}
    fenced, urp = trigger["fenced_brokers"], trigger["under_replicated"]
    since = time.time()
    cause, held = alert("KafkaFencedBrokers", "c6"), alert("KafkaUnderReplicatedPartitions", "c6", "broker-1")
    post(server, cause)
    assert wait(lambda: watch.fired_since(fenced, since))
    assert watch.how(fenced) == "" and watch.everything() == ["KafkaFencedBrokers"]
    post(server, cause, held)
    assert wait(lambda: watch.fired_since(urp, since))
    assert watch.how(urp) == "inhibited by KafkaFencedBrokers" and watch.firing(urp)
    # both resolve while the cause still holds the consequence back: no resolved notification of it comes,
    # yet it is over
    post(server, cause, held, resolved=True)
    assert wait(lambda: not watch.firing(urp) and not watch.firing(fenced) and not watch.active(urp))
    assert wait(lambda: watch.everything() == [], 15)
