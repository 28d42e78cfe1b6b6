"""A real Prometheus (3, the main line, or Debian's 2.x) and Alertmanager for the tests: private config and
storage, 127.0.0.1, stopped by PID."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests
import yaml
from jvm_support import free_port_block, unavailable

from exporter.catalog import alerts
from exporter.catalog.model import load_catalog


def rules_for(state: Path, brokers_min: int, hold_max: str | None = None, groups_hold_max: str | None = None,
              scrape_interval: str = "2s") -> str:
    """The alert rules with this cluster's broker threshold (the committed file says 5 brokers), and for
    a fast rehearsal every `for` capped at hold_max (groups_hold_max: the consumer groups' only) and the
    rehearsal's lag-seconds and retention-margin thresholds."""
    from kafka_jmx.rehearse import LAG_SECONDS_MAX, RETENTION_MARGIN_MIN
    path = state / "alerts.yml"
    catalog = load_catalog()
    fast = bool(hold_max or groups_hold_max)
    doc = alerts.render(catalog, brokers_min=brokers_min, hold_max=hold_max,
                        lag_seconds_max=LAG_SECONDS_MAX if fast else None, scrape_interval=scrape_interval,
                        retention_margin_min=RETENTION_MARGIN_MIN if fast else None)
    if groups_hold_max and not hold_max:
        fast_groups = alerts.render(catalog, brokers_min=brokers_min, hold_max=groups_hold_max,
                                    lag_seconds_max=LAG_SECONDS_MAX, scrape_interval=scrape_interval,
                                    retention_margin_min=RETENTION_MARGIN_MIN)
        doc["groups"][1:] = fast_groups["groups"][1:]
    path.write_text(alerts.serialize(doc))
    return str(path)


PROMETHEUS3_DIR = Path(os.environ.get("PROMETHEUS3_DIR", "/var/cache/kafka-jmx/prometheus3"))


def binary(name: str, major: int = 3) -> str:
    """prometheus, promtool, alertmanager or amtool: 3 (and the Alertmanager) as scripts/install-prometheus3
    builds them, 2 as Debian ships it. Missing: a failure in CI (make test installs both), else a skip."""
    if major == 3 or name in ("alertmanager", "amtool"):
        path = PROMETHEUS3_DIR / name
        found = str(path) if (PROMETHEUS3_DIR / ".kafka-jmx-stamp").exists() and path.exists() else None
        how = "scripts/install-prometheus3 builds it (make test runs it)"
    else:
        found = shutil.which(name)
        how = "Debian's package prometheus (make test installs it)"
    if found is None:
        unavailable(f"{name} {major}.x is needed: {how}")
    return found


def free_ports(n: int) -> list[int]:
    base = free_port_block(n, low=20000)
    return list(range(base, base + n))


def alerting_config(alertmanager_url: str | None) -> dict:
    return {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.split("/")[2]]}]}]}} \
        if alertmanager_url else {}


class _Server:
    """A service of the Prometheus family on 127.0.0.1:port, its files under state."""

    def __init__(self, state: Path, port: int) -> None:
        self.state, self.port = state, port
        state.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self, name: str, args: list[str]) -> None:
        log = self.state / f"{name}.log"
        self.proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        _ready(self.url, self.proc, log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class PrometheusServer(_Server):
    def __init__(self, state: Path, port: int, targets: list[str], rule_files: list[str], interval: str = "2s",
                 config: dict | None = None, major: int = 3, alertmanager_url: str | None = None,
                 flags: tuple[str, ...] = ()) -> None:
        """config: a whole prometheus.yml of the caller's (targets, rule_files and interval then unused);
        major: Prometheus 3 (the main line) or 2 (Debian's 2.42); alertmanager_url: where alerts go."""
        super().__init__(state, port)
        self.major, self.flags = major, flags
        config = config or {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                            "rule_files": rule_files,
                            "scrape_configs": [{"job_name": "kafka-jmx", "static_configs": [{"targets": targets}]}],
                            **alerting_config(alertmanager_url)}
        (state / "prometheus.yml").write_text(yaml.safe_dump(config))

    def start(self) -> None:
        self._launch("prometheus", [binary("prometheus", self.major), f"--config.file={self.state / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={self.state / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{self.port}", *self.flags])

    def query(self, expr: str) -> list:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def alerts(self) -> list:
        r = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        r.raise_for_status()
        return r.json()["data"]["alerts"]


def _ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready: " + log.read_text()[-2000:])


class AlertmanagerServer(_Server):
    """An Alertmanager on config (a dict), its cluster listener off (a single instance binds nothing but
    127.0.0.1:port)."""

    def __init__(self, state: Path, port: int, config: dict) -> None:
        super().__init__(state, port)
        (state / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self) -> None:
        self._launch("alertmanager", [binary("alertmanager"), f"--config.file={self.state / 'alertmanager.yml'}",
                                      f"--storage.path={self.state / 'data'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="])

    def alerts(self) -> list:
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return r.json()


@contextlib.contextmanager
def alerting(state: Path, targets: list[str], rule_files: list[str]) -> Iterator[tuple[PrometheusServer, AlertmanagerServer, int]]:
    """Prometheus 3 scraping targets, sending its alerts to an Alertmanager on the shipped routing tree and
    inhibitions with a rehearsal's waits, whose receivers post to 127.0.0.1:<the port yielded> (nothing listens
    there until the rehearsal's inbox does)."""
    from exporter.catalog import alertmanager
    ports = free_ports(3)
    am = AlertmanagerServer(state / "alertmanager", ports[0],
                            alertmanager.render(load_catalog(), "10s", f"http://127.0.0.1:{ports[2]}/"))
    am.start()
    prom = PrometheusServer(state / "prometheus", ports[1], targets, rule_files, alertmanager_url=am.url)
    try:
        prom.start()
        yield prom, am, ports[2]
    finally:
        prom.stop()
        am.stop()
