"""The demo's control endpoint (127.0.0.1 only): `kafka-jmx fault ...` posts faults to it."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from broker.errors import UnknownNodeError
from broker.scenario import Fault
from broker.simulation import Simulation
from kafka_common.durations import parse_bytes, parse_duration_ms
from kafka_common.faults import FAULTS


class ControlServer:
    def __init__(self, sim: Simulation, host: str = "127.0.0.1", port: int = 9399) -> None:
        self.sim = sim
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/status":
                    self._answer(404, {"error": "GET /status or POST /fault"})
                    return
                c = control.sim.cluster
                with c.sched.lock:
                    active = c.active_controller()
                    body = {"time_ms": int(c.now_ms()), "active_controller": active.name if active else None,
                            "nodes": {n: node.alive for n, node in c.servers.items()}}
                self._answer(200, body)

            def do_POST(self) -> None:
                if self.path != "/fault":
                    self._answer(404, {"error": "POST /fault"})
                    return
                try:
                    req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    self._answer(200, {"ok": True, "message": control.apply(req)})
                except (ValueError, KeyError, UnknownNodeError) as e:
                    self._answer(400, {"ok": False, "error": str(e)})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="control", daemon=True)

    def apply(self, req: dict) -> str:
        action = req.get("action")
        if action not in FAULTS:
            raise ValueError(f"unknown action {action!r} (use {', '.join(FAULTS)})")
        node = req.get("node")
        if node is None and action not in ("heal", "elect_leaders"):
            raise ValueError(f"{action} needs a node")
        def duration(key: str) -> float:
            return parse_duration_ms(req[key]) if req.get(key) else 0.0
        fault = Fault(0.0, action, node, duration("fetch_delay"), duration("event_delay"),
                      disk_delay_ms=duration("disk_delay"),
                      bytes_per_sec=parse_bytes(req["bytes_per_sec"]) if req.get("bytes_per_sec") else 0.0,
                      log_dir=req.get("log_dir"),
                      down_ms=duration("down") if req.get("down") else 5_000.0)
        if action == "flood" and not fault.bytes_per_sec:
            raise ValueError("flood needs bytes_per_sec, e.g. 100MB")
        c = self.sim.cluster
        with c.sched.lock:
            if action == "flood":
                if node is None or not c.topic_exists(node):
                    raise ValueError(f"flood needs an existing topic, got {node!r}")
            elif node is not None:
                c.node(node)        # an unknown node is an error, not a skipped event
            before = len(self.sim.events)
            self.sim.apply(fault)
            return self.sim.events[-1][1] if len(self.sim.events) > before else f"{action} {node}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
