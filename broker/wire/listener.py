"""The Kafka protocol on 127.0.0.1 for the embedded brokers of a wall-clock cluster.

Each TCP connection is a client process on the simulated network: its requests go to the broker
through the simulation's request handling, so the MBeans move as for the built-in clients and
faults reach external clients as on real Kafka (a killed broker refuses connections, an isolated
one never answers). Requests of a connection are answered in order, as Kafka does."""
from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from broker.cluster import Cluster
from broker.net import RequestFailed
from broker.node import Node
from broker.wire import apis
from broker.wire.codec import WireError, decode_request, encode_response, peek_api
from broker.wire.replies import CLOSE, NO_RESPONSE
from kafka_common.frames import FrameError, read_frame

log = logging.getLogger("kafka_jmx.wire")


class WireClient(Node):
    """One client connection, as the simulated network knows it."""
    role = "client"


class Connection:
    """A client connection to one broker: what an API handler may ask of the simulation."""

    def __init__(self, listener: KafkaListener, sock: socket.socket, number: int) -> None:
        self.listener, self.sock = listener, sock
        self.cluster = listener.cluster
        self.broker = listener.broker
        with self.cluster.sched.lock:
            self.client = WireClient(f"{listener.broker}-wire-{number}", self.cluster.sched, self.cluster.net,
                                     self.cluster.rng(f"{listener.broker}-wire-{number}"))
            self.client.start()

    @property
    def node(self) -> Any:
        return self.cluster.brokers[self.broker]

    def addresses(self) -> dict[int, tuple[str, int]]:
        return self.listener.addresses

    def call(self, request: Any, timeout_ms: float, dst: str | None = None) -> Any:
        """The simulation's response to an internal request, or a RequestFailed."""
        done = threading.Event()
        box: list[Any] = []

        def on_reply(response: Any) -> None:
            box.append(response)
            done.set()
        with self.cluster.sched.lock:
            self.client.request(dst or self.broker, request, on_reply, timeout_ms)
        # the wall clock runs the timeout; a margin for a loaded machine
        if not done.wait(timeout_ms / 1000.0 + 5.0):
            return RequestFailed(dst or self.broker, request)
        return box[0]

    def send(self, request: Any, timeout_ms: float) -> None:
        """A request whose answer nobody reads (Produce with acks=0)."""
        with self.cluster.sched.lock:
            self.client.request(self.broker, request, lambda response: None, timeout_ms)

    def gather(self, calls: list[tuple[Any, str | None]], timeout_ms: float) -> list[Any]:
        """Several internal requests at once (a client request that spans partitions or brokers)."""
        results: list[Any] = [None] * len(calls)
        left = threading.Semaphore(0)

        def reply_to(i: int) -> Callable[[Any], None]:
            def on_reply(response: Any) -> None:
                results[i] = response
                left.release()
            return on_reply
        with self.cluster.sched.lock:
            for i, (request, dst) in enumerate(calls):
                self.client.request(dst or self.broker, request, reply_to(i), timeout_ms)
        for _ in range(len(calls)):
            if not left.acquire(timeout=timeout_ms / 1000.0 + 5.0):
                break
        return [r if r is not None else RequestFailed(dst or self.broker, req)
                for r, (req, dst) in zip(results, calls)]

    def serve(self) -> None:
        try:
            while not self.listener.stopping.is_set():
                frame = read_frame(self.sock)
                if frame is None:
                    return
                if not self._answer(frame):
                    return
        except FrameError as e:
            log.warning("%s: closing the connection: %s", self.client.name, e)
        except OSError as e:
            log.debug("%s: connection closed: %s", self.client.name, e)
        except Exception:       # a request this listener mishandles: that connection closes, the rest serve on
            log.exception("%s: closing the connection after an error", self.client.name)
        finally:
            self.close()

    def _answer(self, frame: bytes) -> bool:
        api_key, version, correlation_id = peek_api(frame)
        if not apis.supported(self, api_key, version):
            if api_key != apis.API_VERSIONS:
                # Kafka closes a connection that sends an API or version it does not serve
                raise WireError(f"API key {api_key} version {version} is not served here")
            response = apis.unsupported_api_versions(self)
            self.sock.sendall(encode_response(api_key, 0, correlation_id, response))
            return True
        try:
            header, request = decode_request(frame)
        except Exception as e:      # whatever kio raises on a malformed body: the request cannot be read
            raise WireError(f"unreadable {api_key} v{version} request ({type(e).__name__}: {e})") from e
        response = apis.handle(self, header, request)
        if response is NO_RESPONSE:
            return True
        if response is CLOSE:
            return False
        self.sock.sendall(encode_response(api_key, version, correlation_id, response))
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        with self.cluster.sched.lock:
            if self.client.alive:
                self.client.kill()
        self.listener.forget(self)


class KafkaListener:
    """127.0.0.1:port for one broker. While the broker is down the port refuses connections."""

    _numbers = itertools.count(1)

    def __init__(self, cluster: Cluster, broker: str, port: int, addresses: dict[int, tuple[str, int]]) -> None:
        self.cluster, self.broker, self.port = cluster, broker, port
        self.addresses = addresses          # node id -> (host, port) of every broker's listener
        self.stopping = threading.Event()
        self._server: socket.socket | None = None
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, name=f"wire-{self.broker}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self.stopping.is_set():
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.cluster.sched.lock:
                up = self.cluster.servers[self.broker].alive
            if not up:
                sock.close()      # a dead process's port: the OS resets the connection
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock, next(self._numbers))
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=conn.serve, name=conn.client.name, daemon=True).start()

    def drop_connections(self) -> None:
        """The broker died: its clients' connections reset."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def forget(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=2)


def start_listeners(cluster: Cluster, base_port: int) -> list[KafkaListener]:
    """broker-1 on base_port, broker-2 on base_port + 1, ... (the brokers' node ids in order)."""
    brokers = sorted(cluster.brokers.values(), key=lambda b: b.node_id)
    addresses = {b.node_id: ("127.0.0.1", base_port + i) for i, b in enumerate(brokers)}
    listeners = [KafkaListener(cluster, b.name, addresses[b.node_id][1], addresses) for b in brokers]
    try:
        for listener in listeners:
            listener.start()
    except OSError:
        for listener in listeners:
            listener.stop()
        raise
    return listeners


def bootstrap_servers(listeners: list[KafkaListener]) -> str:
    return ",".join(f"127.0.0.1:{listener.port}" for listener in listeners)
