"""A real Prometheus for the tests: private config and storage, 127.0.0.1, stopped by PID."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import requests
import yaml

from exporter.catalog import alerts
from exporter.catalog.model import load_catalog


def rules_for(state: Path, brokers_min: int, hold_max: str | None = None, groups_hold_max: str | None = None) -> str:
    """The alert rules with this cluster's broker threshold (the committed file says 5 brokers), and for
    a fast rehearsal every `for` capped at hold_max (groups_hold_max: the consumer groups' only) and the
    rehearsal's lag-seconds threshold."""
    from kafka_jmx.rehearse import LAG_SECONDS_MAX
    path = state / "alerts.yml"
    catalog = load_catalog()
    doc = alerts.render(catalog, brokers_min=brokers_min, hold_max=hold_max,
                        lag_seconds_max=LAG_SECONDS_MAX if hold_max or groups_hold_max else None)
    if groups_hold_max and not hold_max:
        fast = alerts.render(catalog, brokers_min=brokers_min, hold_max=groups_hold_max, lag_seconds_max=LAG_SECONDS_MAX)
        doc["groups"][1:] = fast["groups"][1:]
    path.write_text(alerts.serialize(doc))
    return str(path)


class PrometheusServer:
    def __init__(self, state: Path, port: int, targets: list[str], rule_files: list[str], interval: str = "2s",
                 config: dict | None = None) -> None:
        """config: a whole prometheus.yml of the caller's (targets, rule_files and interval then unused)."""
        self.state, self.port = state, port
        state.mkdir(parents=True, exist_ok=True)
        config = config or {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                            "rule_files": rule_files,
                            "scrape_configs": [{"job_name": "kafka-jmx", "static_configs": [{"targets": targets}]}]}
        (state / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (Debian package prometheus)")
        log = open(self.state / "prometheus.log", "w")
        self.proc = subprocess.Popen([binary, f"--config.file={self.state / 'prometheus.yml'}",
                                      f"--storage.tsdb.path={self.state / 'data'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready: " + (self.state / "prometheus.log").read_text()[-2000:])

    def query(self, expr: str) -> list:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def alerts(self) -> list:
        r = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        r.raise_for_status()
        return r.json()["data"]["alerts"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
