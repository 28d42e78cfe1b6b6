"""A blocking connection to one broker, speaking Kafka's messages as kio encodes them (generated from
Kafka's own schemas), for what no maintained Python client reads yet: share groups (librdkafka 2.16
consumes from them but has no admin call for them; kafka-python 3.0 neither) and streams groups (librdkafka
lists none of them). Security from the same
librdkafka settings the rest of the reader uses: TLS (with a client certificate), SASL PLAIN and
SCRAM-SHA-256/512 (the SCRAM exchange by scramp)."""
from __future__ import annotations

import io
import socket
import ssl
import struct
from typing import Any

from kio.index import load_response_schema
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

from kafka_common.frames import FrameError, read_frame

API_VERSIONS = 18
CLIENT_ID = "kafka-jmx-lag"


class KafkaProtocolError(Exception):
    """The broker could not be reached, refused us, or answered what we cannot read."""


def error_name(code: Any) -> str:
    """An error code as Kafka's documentation names it (COORDINATOR_LOAD_IN_PROGRESS), with its number."""
    return f"{getattr(code, 'name', 'UNKNOWN').upper()} ({int(code)})"


def tls_context(settings: dict[str, Any]) -> ssl.SSLContext:
    """librdkafka's ssl.* settings as Python's ssl module takes them (the system's CAs without a CA file)."""
    context = ssl.create_default_context(cafile=settings.get("ssl.ca.location"))
    if settings.get("ssl.endpoint.identification.algorithm") == "none":
        context.check_hostname = False
    if "ssl.certificate.location" in settings:
        context.load_cert_chain(settings["ssl.certificate.location"], settings.get("ssl.key.location"),
                                settings.get("ssl.key.password"))
    return context


class BrokerConnection:
    def __init__(self, host: str, port: int, settings: dict[str, Any], timeout_s: float) -> None:
        self.address = f"{host}:{port}"
        protocol = str(settings.get("security.protocol", "PLAINTEXT")).upper()
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
            if protocol in ("SSL", "SASL_SSL"):
                sock = tls_context(settings).wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as e:
            raise KafkaProtocolError(f"{self.address}: cannot connect: {e}") from e
        self.sock = sock
        self._correlation = 0
        try:
            answer = self.call(ApiVersionsRequest(client_software_name="kafka-jmx", client_software_version="1"))
            if answer.error_code != 0:
                raise KafkaProtocolError(f"{self.address}: ApiVersions: {error_name(answer.error_code)}")
            self.versions = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in answer.api_keys}
            if protocol.startswith("SASL"):
                self._authenticate(settings)
        except BaseException:
            self.close()
            raise

    def supports(self, request_type: type[Any]) -> bool:
        span = self.versions.get(int(request_type.__api_key__))
        return span is not None and span[0] <= int(request_type.__version__) <= span[1]

    def call(self, request: Any) -> Any:
        """Sends one request and reads its response (requests on one connection are answered in order)."""
        api_key, version = int(request.__api_key__), int(request.__version__)
        self._correlation += 1
        out = io.BytesIO()
        out.write(b"\0\0\0\0")
        header_type = RequestHeaderV2 if request.__flexible__ else RequestHeaderV1
        entity_writer(header_type)(out, header_type(request_api_key=i16(api_key), request_api_version=i16(version),
                                                    correlation_id=i32(self._correlation), client_id=CLIENT_ID))
        entity_writer(type(request))(out, request)
        data = out.getbuffer()
        struct.pack_into(">i", data, 0, len(data) - 4)
        name = type(request).__name__.removesuffix("Request")
        try:
            self.sock.sendall(data)
            frame = read_frame(self.sock)
        except (OSError, FrameError) as e:
            raise KafkaProtocolError(f"{self.address}: {name}: {e}") from e
        if frame is None:
            raise KafkaProtocolError(f"{self.address}: {name}: the broker closed the connection")
        schema = load_response_schema(api_key, version)
        # ApiVersions answers with header v0 whatever its version
        flexible = schema.__flexible__ and api_key != API_VERSIONS
        try:
            view = memoryview(frame)
            header: Any
            header, used = entity_reader(ResponseHeaderV1 if flexible else ResponseHeaderV0)(view, 0)
            if int(header.correlation_id) != self._correlation:
                raise ValueError(f"correlation id {int(header.correlation_id)}, expected {self._correlation}")
            response, _ = entity_reader(schema)(view, used)
        except Exception as e:      # whatever kio raises on an answer it cannot read
            raise KafkaProtocolError(f"{self.address}: {name} v{version}: unreadable answer "
                                     f"({type(e).__name__}: {e})") from e
        return response

    def _authenticate(self, settings: dict[str, Any]) -> None:
        mechanism = str(settings.get("sasl.mechanism", "PLAIN")).upper()
        user, password = str(settings.get("sasl.username", "")), str(settings.get("sasl.password", ""))
        hello = self.call(SaslHandshakeRequest(mechanism=mechanism))
        if hello.error_code != 0:
            raise KafkaProtocolError(f"{self.address}: SASL mechanism {mechanism} not enabled "
                                     f"(the broker offers {', '.join(hello.mechanisms) or 'none'})")
        if mechanism == "PLAIN":
            self._sasl_step(f"\0{user}\0{password}".encode())
            return
        from scramp import ScramClient, ScramException
        scram = ScramClient([mechanism], user, password)
        try:
            scram.set_server_first(self._sasl_step(scram.get_client_first().encode()).decode())
            scram.set_server_final(self._sasl_step(scram.get_client_final().encode()).decode())
        except ScramException as e:
            raise KafkaProtocolError(f"{self.address}: SASL {mechanism} as {user!r}: {e}") from e

    def _sasl_step(self, token: bytes) -> bytes:
        answer = self.call(SaslAuthenticateRequest(auth_bytes=token))
        if answer.error_code != 0:
            raise KafkaProtocolError(f"{self.address}: SASL authentication failed: "
                                     f"{answer.error_message or error_name(answer.error_code)}")
        return bytes(answer.auth_bytes)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Connections:
    """The reader's connections, one per broker, kept between collections; one that failed is dropped and made
    afresh when next needed."""

    def __init__(self, settings: dict[str, Any], timeout_s: float) -> None:
        self.settings, self.timeout_s = settings, timeout_s
        self._open: dict[tuple[str, int], BrokerConnection] = {}

    def to(self, address: tuple[str, int]) -> BrokerConnection:
        conn = self._open.get(address)
        if conn is None:
            conn = self._open[address] = BrokerConnection(*address, self.settings, self.timeout_s)
        return conn

    def bootstrap(self) -> tuple[str, int]:
        """The address of the first bootstrap server that answers."""
        problems = []
        for server in filter(None, (s.strip() for s in str(self.settings["bootstrap.servers"]).split(","))):
            host, _, port = server.rpartition(":")
            try:
                self.to((host, int(port)))
                return host, int(port)
            except KafkaProtocolError as e:
                problems.append(str(e))
        raise KafkaProtocolError(f"no bootstrap server answered ({'; '.join(problems)})")

    def drop(self, address: tuple[str, int]) -> None:
        conn = self._open.pop(address, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for address in list(self._open):
            self.drop(address)
