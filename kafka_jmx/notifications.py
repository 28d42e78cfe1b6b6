"""What reaches a person: an Alertmanager webhook receiver for alert rehearsals.

Alertmanager posts a notification per alert group (version 4 of its webhook payload); each carries the
group's alerts with their status (firing or resolved). The inbox keeps every alert it was told about with the
time it heard of it, so a rehearsal can say which faults paged, how long after the fault, and what paged that
nothing explains."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


@dataclass(frozen=True)
class Notified:
    at: float                 # epoch seconds the webhook received it
    status: str               # firing | resolved
    labels: dict[str, str]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class Inbox:
    """A webhook receiver on host:port (POST any path)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.received: list[Notified] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    inbox.take(json.loads(body))
                except (ValueError, KeyError, TypeError) as e:
                    inbox.errors.append(f"a notification the rehearsal cannot read ({e}): {body[:200]!r}")
                    self.send_response(400)
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the rehearsal reports what arrived."""

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="notifications", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}/"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self, payload: dict) -> None:
        now = time.time()
        notified = [Notified(now, str(a["status"]), {str(k): str(v) for k, v in a["labels"].items()})
                    for a in payload["alerts"]]
        with self._lock:
            self.received.extend(notified)

    def latest(self, cluster: str) -> dict[tuple[tuple[str, str], ...], Notified]:
        """Every alert of the cluster a notification named, with what the last one said of it."""
        out: dict[tuple[tuple[str, str], ...], Notified] = {}
        with self._lock:
            for n in self.received:
                if n.labels.get("cluster") == cluster:
                    out[tuple(sorted(n.labels.items()))] = n
        return out


class AlertmanagerWatch:
    """The rehearsal's view of notifications: an alert has paged when the inbox got a firing notification of
    it; an alert Alertmanager holds back because an inhibit rule's cause fires counts as paged by that cause
    (the operator was paged for the cause) once the cause itself has paged."""

    def __init__(self, url: str, inbox: Inbox, cluster: str) -> None:
        self.url, self.inbox, self.cluster = url.rstrip("/"), inbox, cluster
        self.inhibited: dict[str, str] = {}             # alert name: the alert that inhibited it, when one did

    def _notified(self, name: str) -> list[Notified]:
        return [n for n in self.inbox.latest(self.cluster).values() if n.alertname == name]

    def _held(self) -> list[dict]:
        """The cluster's alerts Alertmanager holds: active or suppressed (by an inhibition or a silence)."""
        r = requests.get(f"{self.url}/api/v2/alerts", params={"filter": f'cluster="{self.cluster}"'}, timeout=5)
        r.raise_for_status()
        return r.json()

    def _firing(self, name: str, held: list[dict]) -> bool:
        held = [a for a in held if a["labels"].get("alertname") == name]
        if any(a["status"].get("inhibitedBy") for a in held):
            return True
        paged = {key for key, n in self.inbox.latest(self.cluster).items() if n.alertname == name and n.status == "firing"}
        return any(tuple(sorted(a["labels"].items())) in paged for a in held)

    def firing(self, t) -> bool:
        """Paged and still held by Alertmanager, or held back by an inhibition (its cause paged for it). An
        alert that resolves while inhibited gets no resolved notification: what Alertmanager no longer holds
        is over, whatever the last notification said."""
        return self._firing(t.alert.name, self._held())

    def active(self, t) -> bool:
        held = self._held()
        return self._firing(t.alert.name, held) or any(a["labels"].get("alertname") == t.alert.name for a in held)

    def fired_since(self, t, since: float) -> bool:
        if any(n.status == "firing" and n.at >= since for n in self._notified(t.alert.name)):
            self.inhibited.pop(t.alert.name, None)      # paged on its own this time
            return True
        by_fingerprint = {a["fingerprint"]: a for a in self._held()}
        for a in by_fingerprint.values():
            if a["labels"].get("alertname") != t.alert.name or a["status"]["state"] != "suppressed":
                continue
            for fp in a["status"].get("inhibitedBy") or []:
                cause = by_fingerprint.get(fp)
                if cause is None:
                    continue
                name = cause["labels"].get("alertname", "")
                if any(n.status == "firing" for n in self._notified(name)):
                    self.inhibited[t.alert.name] = name
                    return True
        return False

    def how(self, t) -> str:
        cause = self.inhibited.get(t.alert.name)
        return f"inhibited by {cause}" if cause else ""

    def everything(self) -> list[str]:
        """The alerts that paged and are not over (or paged in the last seconds: over before this look)."""
        held = {tuple(sorted(a["labels"].items())) for a in self._held()}
        recent = time.time() - 10.0
        return [f"{n.alertname} {n.labels.get('node', '')}".strip()
                for key, n in self.inbox.latest(self.cluster).items()
                if n.status == "firing" and (key in held or n.at >= recent)]
