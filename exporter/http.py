"""The /metrics endpoint: pre-rendered bytes, optional TLS and HTTP basic authentication."""
from __future__ import annotations

import base64
import hmac
import ssl
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

INDEX = b"""<html><head><title>kafka-jmx exporter</title></head><body>
<h1>kafka-jmx exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>"""


class MetricsServer:
    def __init__(self, host: str, port: int, body: Callable[[], Sequence[bytes]], gzipped: Callable[[], Sequence[bytes]],
                 certfile: str | None = None, keyfile: str | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self._body = body           # the exposition in parts, written one after the other
        self._gzipped = gzipped
        self._auth = None
        if username is not None:
            self._auth = b"Basic " + base64.b64encode(f"{username}:{password or ''}".encode())
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if server_self._auth is not None:
                    given = (self.headers.get("Authorization") or "").encode()
                    if not hmac.compare_digest(given, server_self._auth):
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="kafka-jmx"')
                        self.end_headers()
                        return
                gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
                if self.path.split("?")[0] == "/metrics":
                    payload = server_self._gzipped() if gz else server_self._body()
                    ctype = CONTENT_TYPE_LATEST
                elif self.path == "/":
                    payload, ctype, gz = [INDEX], "text/html", False
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(sum(len(p) for p in payload)))
                self.end_headers()
                for part in payload:
                    self.wfile.write(part)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
