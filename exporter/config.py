"""The daemon's configuration file, validated as a whole: every mistake is reported with file,
line and key, and nothing starts half-configured. The keys, their defaults and a full example are in
docs/operators/configuration.md (tests/test_config_reference.py holds the two together)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from exporter.jvm import BEANS as JVM_BEANS
from exporter.jvm import NAME_SETS as JVM_NAME_SETS
from exporter.jvm import family_names as jvm_family_names
from exporter.lag.families import FAMILIES as LAG_FAMILIES
from exporter.lag.families import LOST as LOST_FAMILY
from exporter.zabbix_tls import psk_problem
from kafka_common.durations import parse_duration_ms
from kafka_common.names import ObjectNamePattern
from kafka_common.roles import ROLES
from kafka_common.yamlconf import ConfigError, Doc, KeyPath, read_text

TOP = {"cluster", "collection", "include", "exclude", "rules", "prometheus", "zabbix", "targets", "embedded", "kafka",
       "brokers_expected", "jvm", "otlp"}
# the Zabbix host of a node: what `kafka-jmx zabbix provision` creates (CLUSTER-NODE), so the two agree
DEFAULT_HOST_NAME = "{cluster}-{node}"


@dataclass(frozen=True)
class SourceSpec:
    kind: str                               # jmx, jolokia, embedded
    url: str = ""
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    truststore: str | None = None
    truststore_password: str | None = None
    verify: bool | str = True
    node: str = ""                          # embedded: the cluster node
    null_as_nan: bool = False               # jolokia: its JSON null (Java null or NaN) read as NaN, not skipped


@dataclass(frozen=True)
class TargetSpec:
    name: str
    role: str
    node_id: str
    source: SourceSpec
    labels: dict[str, str] = field(default_factory=dict)
    interval_s: float = 10.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class PrometheusSpec:
    host: str = "127.0.0.1"
    port: int = 9404
    cert: str | None = None
    key: str | None = None
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class OtlpSpec:
    """OTLP/HTTP push of the served metrics (exporter/otlp.py)."""
    endpoint: str                   # the receiver's metrics URL, e.g. http://prometheus:9090/api/v1/otlp/v1/metrics
    interval_s: float = 30.0
    timeout_s: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:      # the headers may hold a token
        return f"OtlpSpec({self.endpoint!r}, interval_s={self.interval_s}, headers={[k for k, _ in self.headers]})"


@dataclass(frozen=True)
class ZabbixSpec:
    server: str
    port: int = 10051
    host_name: str = DEFAULT_HOST_NAME
    batch_size: int = 250
    spool_limit: int = 100_000
    send_interval_s: float = 1.0
    psk: tuple[str, str] | None = None          # (identity, hex key) for TLS-PSK
    topics: tuple[str, str] | None = None       # (matches, not_matches) as the hosts' topic macros; None: defaults


@dataclass(frozen=True)
class KafkaSpec:
    """The Kafka protocol side: librdkafka settings (secrets among them) and what to collect."""
    client: dict[str, Any]
    interval_s: float = 30.0
    timeout_s: float = 10.0
    groups_allow: str = ".*"
    groups_deny: str | None = None
    topics_allow: str = ".*"
    topics_deny: str | None = "^__.*"
    partition_series: bool = True
    max_series: int = 100_000
    status_window_s: float = 600.0
    lag_seconds: bool = True
    disabled: frozenset[str] = frozenset()      # families switched off (exporter.lag.families)
    rate_window_s: float = 300.0                # the consumption rates, lag trend and catch-up estimate's

    def __repr__(self) -> str:      # the client settings hold passwords
        return f"KafkaSpec(bootstrap_servers={self.client.get('bootstrap.servers')!r})"


@dataclass(frozen=True)
class JvmSpec:
    """The JVM and process metrics of JVM targets (exporter/jvm.py)."""
    enabled: bool = True
    names: str = "1.x"                          # jmx_exporter's names: 1.x, or 0.x for older dashboards
    disabled: frozenset[str] = frozenset()      # families switched off


@dataclass(frozen=True)
class DaemonConfig:
    cluster: str
    targets: tuple[TargetSpec, ...]
    rules_file: str | None                  # None: the built-in rules
    prometheus: PrometheusSpec
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    embedded: str | None = None
    source: str = "<config>"
    zabbix: ZabbixSpec | None = None
    kafka: KafkaSpec | None = None
    brokers_expected: int | None = None     # None: as many as the broker targets
    jvm: JvmSpec = JvmSpec()
    otlp: OtlpSpec | None = None


class _Reader:
    def __init__(self, doc: Doc, base_dir: str) -> None:
        self.doc = doc
        self.base_dir = base_dir

    def path(self, p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(self.base_dir, p)

    def string(self, d: dict[str, Any], path: KeyPath, key: str, required: bool = False, default: str | None = None) -> str | None:
        if key not in d:
            if required:
                self.doc.fail(path, f"missing required key {key!r}")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            self.doc.fail(path + (key,), f"expected a string, got {type(v).__name__}")
            return default
        return str(v)

    def boolean(self, d: dict[str, Any], path: KeyPath, key: str, default: bool) -> bool:
        v = d.get(key, default)
        if not isinstance(v, bool):
            self.doc.fail(path + (key,), f"expected true or false, got {v!r}")
            return default
        return v

    def positive_int(self, d: dict[str, Any], path: KeyPath, key: str, default: int | None) -> int | None:
        if key not in d:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            self.doc.fail(path + (key,), f"expected a positive integer, got {v!r}")
            return default
        return v

    def regex(self, d: dict[str, Any], path: KeyPath, key: str, default: str | None = None) -> str | None:
        value = self.string(d, path, key, default=default)
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as e:
            self.doc.fail(path + (key,), f"not a regular expression: {e}")
            return default
        return value

    def duration_s(self, d: dict[str, Any], path: KeyPath, key: str, default: float) -> float:
        if key not in d:
            return default
        try:
            ms = parse_duration_ms(d[key])
        except ValueError as e:
            self.doc.fail(path + (key,), str(e))
            return default
        if ms <= 0:
            self.doc.fail(path + (key,), "must be positive")
            return default
        return ms / 1000.0

    def secret(self, d: dict[str, Any], path: KeyPath, key: str) -> str | None:
        """key, key_env or key_file; the value itself never goes into a message."""
        given = [k for k in (key, f"{key}_env", f"{key}_file") if k in d]
        if len(given) > 1:
            self.doc.fail(path, f"give only one of {', '.join(given)}")
            return None
        if not given:
            return None
        k = given[0]
        raw = d[k]
        if not isinstance(raw, str):
            self.doc.fail(path + (k,), "expected a string")
            return None
        if k == key:
            return raw
        if k.endswith("_env"):
            if raw not in os.environ:
                self.doc.fail(path + (k,), f"environment variable {raw} is not set")
                return None
            return os.environ[raw]
        try:
            with open(self.path(raw), encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as e:
            self.doc.fail(path + (k,), f"cannot read {raw}: {e.strerror}")
            return None

    def names(self, d: dict[str, Any], path: KeyPath, key: str, known: set[str]) -> frozenset[str]:
        """A list of names out of `known` (metric families to switch off)."""
        value = d.get(key, [])
        if not isinstance(value, list):
            self.doc.fail(path + (key,), "expected a list of metric family names")
            return frozenset()
        for i, name in enumerate(value):
            if name not in known:
                close = sorted(n for n in known if str(name) in n or n in str(name))[:3]
                self.doc.fail(path + (key, i), f"no metric family {name!r} here" +
                              (f" (did you mean {', '.join(close)}?)" if close else f"; known: {', '.join(sorted(known))}"))
        return frozenset(str(n) for n in value if n in known)

    def patterns(self, d: dict[str, Any], key: str) -> tuple[str, ...]:
        value = d.get(key, [])
        if not isinstance(value, list):
            self.doc.fail((key,), "expected a list of ObjectName patterns")
            return ()
        for i, p in enumerate(value):
            try:
                ObjectNamePattern(str(p))
            except ValueError as e:
                self.doc.fail((key, i), str(e))
        return tuple(str(p) for p in value)


def load_config(text: str, source: str = "<config>") -> DaemonConfig:
    doc = Doc(text, source)
    r = _Reader(doc, os.path.dirname(os.path.abspath(source)) if source != "<config>" else os.getcwd())
    top = doc.mapping(doc.data or {}, (), TOP)
    cluster = r.string(top, (), "cluster", default="kafka") or "kafka"
    coll = doc.mapping(top.get("collection", {}) or {}, ("collection",), {"interval", "timeout"})
    interval = r.duration_s(coll, ("collection",), "interval", 10.0)
    timeout = r.duration_s(coll, ("collection",), "timeout", interval)
    includes, excludes = r.patterns(top, "include"), r.patterns(top, "exclude")

    rules_file = None
    rules = top.get("rules", "builtin")
    if rules != "builtin":
        if not isinstance(rules, str):
            doc.fail(("rules",), "expected 'builtin' or the path of a jmx_exporter rules file")
        else:
            rules_file = r.path(rules)
            if not os.path.isfile(rules_file):
                doc.fail(("rules",), f"rules file {rules} not found")

    prom = doc.mapping(top.get("prometheus", {}) or {}, ("prometheus",), {"listen", "tls", "basic_auth"})
    listen = r.string(prom, ("prometheus",), "listen", default="127.0.0.1:9404") or "127.0.0.1:9404"
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        doc.fail(("prometheus", "listen"), f"expected HOST:PORT, got {listen!r}")
        port_text = "9404"
    tls = doc.mapping(prom.get("tls", {}) or {}, ("prometheus", "tls"), {"cert", "key"})
    cert, key = r.string(tls, ("prometheus", "tls"), "cert"), r.string(tls, ("prometheus", "tls"), "key")
    for name, value in (("cert", cert), ("key", key)):
        if value and not os.path.isfile(r.path(value)):
            doc.fail(("prometheus", "tls", name), f"file {value} not found")
    if bool(cert) != bool(key):
        doc.fail(("prometheus", "tls"), "give both cert and key")
    auth = doc.mapping(prom.get("basic_auth", {}) or {}, ("prometheus", "basic_auth"),
                  {"username", "password", "password_env", "password_file"})
    username = r.string(auth, ("prometheus", "basic_auth"), "username", required=bool(auth))
    password = r.secret(auth, ("prometheus", "basic_auth"), "password")
    prometheus = PrometheusSpec(host.strip("[]") or "127.0.0.1", int(port_text), r.path(cert) if cert else None,
                                r.path(key) if key else None, username, password)

    zabbix = None
    if "zabbix" in top:
        zp = ("zabbix",)
        z = doc.mapping(top["zabbix"] or {}, zp, {"server", "host_name", "batch_size", "spool_limit", "send_interval", "tls",
                                                  "topics"})
        server = r.string(z, zp, "server", required=True) or ""
        zhost, _, zport = server.rpartition(":") if ":" in server else (server, "", "10051")
        if not zhost or not zport.isdigit():
            doc.fail(zp + ("server",), f"expected HOST or HOST:PORT, got {server!r}")
            zport = "10051"
        host_name = r.string(z, zp, "host_name", default=DEFAULT_HOST_NAME) or DEFAULT_HOST_NAME
        try:
            host_name.format(node="n", cluster="c", role="broker", node_id="1")
        except (KeyError, IndexError, ValueError) as e:
            doc.fail(zp + ("host_name",), f"unknown placeholder {e} (use {{node}}, {{cluster}}, {{role}}, {{node_id}})")
        numbers = {key: r.positive_int(z, zp, key, default) or default
                   for key, default in (("batch_size", 250), ("spool_limit", 100_000))}
        psk = None
        if "tls" in z:
            tp = zp + ("tls",)
            tls = doc.mapping(z["tls"] or {}, tp, {"psk_identity", "psk", "psk_env", "psk_file"})
            identity = r.string(tls, tp, "psk_identity", required=True)
            key = r.secret(tls, tp, "psk")
            if key is None:
                doc.fail(tp, "give the key as psk_file or psk_env (or psk)")
            elif identity is None:
                pass        # already reported as missing
            elif (problem := psk_problem(identity, key)) is not None:
                doc.fail(tp, problem)
            else:
                psk = (identity, key)
        topics = None
        if "topics" in z:
            tp = zp + ("topics",)
            t = doc.mapping(z["topics"] or {}, tp, {"matches", "not_matches"})
            topics = (r.regex(t, tp, "matches", ".*") or ".*", r.regex(t, tp, "not_matches", "") or "")
        zabbix = ZabbixSpec(zhost, int(zport), host_name, numbers["batch_size"], numbers["spool_limit"],
                            r.duration_s(z, zp, "send_interval", 1.0), psk, topics)

    embedded = r.string(top, (), "embedded")
    if embedded is not None:
        embedded = r.path(embedded)
        if not os.path.isfile(embedded):
            doc.fail(("embedded",), f"scenario {top['embedded']} not found")
    targets = []
    raw_targets = top.get("targets", [])
    if not isinstance(raw_targets, list):
        doc.fail(("targets",), "expected a list of targets")
        raw_targets = []
    kafka = _kafka(doc, r, top["kafka"], interval, timeout) if "kafka" in top else None
    if not raw_targets and embedded is None and kafka is None:
        doc.fail((), "nothing to collect: give 'targets', 'embedded' or 'kafka'")
    names = set()
    for i, t in enumerate(raw_targets):
        path = ("targets", i)
        t = doc.mapping(t, path, {"name", "role", "node_id", "jmx", "jolokia", "labels", "interval", "timeout"})
        name = r.string(t, path, "name", required=True) or f"target-{i}"
        if name in names:
            doc.fail(path + ("name",), f"target {name!r} is defined twice")
        names.add(name)
        role = r.string(t, path, "role", required=True) or "broker"
        if role not in ROLES:
            doc.fail(path + ("role",), f"role must be broker, controller or combined (process.roles=broker,controller), "
                                       f"got {role!r}")
        kinds = [k for k in ("jmx", "jolokia") if k in t]
        if len(kinds) != 1:
            doc.fail(path, "give exactly one source: jmx or jolokia")
            continue
        kind = kinds[0]
        spath = path + (kind,)
        if kind == "jmx":
            s = doc.mapping(t[kind], spath, {"url", "username", "password", "password_env", "password_file", "ssl",
                                        "truststore", "truststore_password", "truststore_password_env",
                                        "truststore_password_file"})
            url = r.string(s, spath, "url", required=True) or ""
            if url and not url.startswith("service:jmx:"):
                doc.fail(spath + ("url",), f"expected a JMX service URL (service:jmx:rmi:///jndi/rmi://HOST:PORT/jmxrmi), got {url!r}")
            spec = SourceSpec("jmx", url, r.string(s, spath, "username"), r.secret(s, spath, "password"),
                              r.boolean(s, spath, "ssl", False), r.string(s, spath, "truststore"),
                              r.secret(s, spath, "truststore_password"))
        else:
            s = doc.mapping(t[kind], spath, {"url", "username", "password", "password_env", "password_file", "verify",
                                        "null_as_nan"})
            url = r.string(s, spath, "url", required=True) or ""
            if url and not url.startswith(("http://", "https://")):
                doc.fail(spath + ("url",), f"expected an http(s) URL for jolokia, got {url!r}")
            verify = s.get("verify", True)
            if not isinstance(verify, (bool, str)):
                doc.fail(spath + ("verify",), "expected true, false or the path of a CA bundle")
            spec = SourceSpec("jolokia", url, r.string(s, spath, "username"), r.secret(s, spath, "password"),
                              verify=verify if isinstance(verify, (bool, str)) else True,
                              null_as_nan=r.boolean(s, spath, "null_as_nan", False))
        labels = t.get("labels", {}) or {}
        if not isinstance(labels, dict):
            doc.fail(path + ("labels",), "expected a mapping of label names to values")
            labels = {}
        targets.append(TargetSpec(name, role, r.string(t, path, "node_id", default="") or "", spec,
                                  {str(k): str(v) for k, v in labels.items()},
                                  r.duration_s(t, path, "interval", interval), r.duration_s(t, path, "timeout", timeout)))
    brokers_expected = r.positive_int(top, (), "brokers_expected", None)
    jp = ("jvm",)
    j = doc.mapping(top.get("jvm", {}) or {}, jp, {"enabled", "names", "disable"})
    jvm_names = r.string(j, jp, "names", default="1.x") or "1.x"
    if jvm_names not in JVM_NAME_SETS:
        doc.fail(jp + ("names",), f"expected one of {', '.join(JVM_NAME_SETS)} (jmx_exporter's names), got {jvm_names!r}")
        jvm_names = "1.x"
    jvm = JvmSpec(r.boolean(j, jp, "enabled", True), jvm_names, r.names(j, jp, "disable", jvm_family_names(jvm_names)))
    if jvm.enabled and includes:        # the beans the JVM metrics are made of are read too
        includes += tuple(p for p in JVM_BEANS if p not in includes)
    otlp = _otlp(doc, r, top)
    doc.check()
    return DaemonConfig(cluster, tuple(targets), rules_file, prometheus, includes, excludes, embedded, source, zabbix,
                        kafka, brokers_expected, jvm, otlp)


def _otlp(doc: Doc, r: _Reader, top: dict[str, Any]) -> OtlpSpec | None:
    if "otlp" not in top:
        return None
    op = ("otlp",)
    o = doc.mapping(top["otlp"] or {}, op, {"endpoint", "interval", "timeout", "headers"})
    endpoint = r.string(o, op, "endpoint", required=True) or ""
    if endpoint and not re.match(r"https?://[^/]+", endpoint):
        doc.fail(op + ("endpoint",), f"expected the receiver's http:// or https:// URL (Prometheus 3: "
                                     f"http://HOST:9090/api/v1/otlp/v1/metrics), got {endpoint!r}")
    headers = o.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        doc.fail(op + ("headers",), "expected a mapping of HTTP header names to strings")
        headers = {}
    return OtlpSpec(endpoint, r.duration_s(o, op, "interval", 30.0), r.duration_s(o, op, "timeout", 10.0),
                    tuple(headers.items()))


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _kafka(doc: Doc, r: _Reader, raw: Any, interval: float, timeout: float) -> KafkaSpec | None:
    kp = ("kafka",)
    k = doc.mapping(raw or {}, kp, {"bootstrap_servers", "tls", "sasl", "interval", "timeout", "groups", "topics",
                                    "partition_series", "max_series", "status_window", "lag_seconds", "disable",
                                    "rate_window"})
    servers = r.string(k, kp, "bootstrap_servers", required=True) or ""
    for server in filter(None, (s.strip() for s in servers.split(","))):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            doc.fail(kp + ("bootstrap_servers",), f"expected HOST:PORT[,HOST:PORT...], got {server!r}")
    client: dict[str, Any] = {"bootstrap.servers": servers}
    tls = sasl = False
    if "tls" in k:
        tp = kp + ("tls",)
        t = doc.mapping(k["tls"] or {}, tp, {"ca", "cert", "key", "key_password", "key_password_env",
                                             "key_password_file", "verify_hostname"})
        tls = True
        for key, setting in (("ca", "ssl.ca.location"), ("cert", "ssl.certificate.location"), ("key", "ssl.key.location")):
            value = r.string(t, tp, key)
            if value is None:
                continue
            if not os.path.isfile(r.path(value)):
                doc.fail(tp + (key,), f"file {value} not found")
            client[setting] = r.path(value)
        if ("ssl.certificate.location" in client) != ("ssl.key.location" in client):
            doc.fail(tp, "give both cert and key for a client certificate (mTLS), or neither")
        password = r.secret(t, tp, "key_password")
        if password is not None:
            client["ssl.key.password"] = password
        if not r.boolean(t, tp, "verify_hostname", True):
            client["ssl.endpoint.identification.algorithm"] = "none"
    if "sasl" in k:
        sp = kp + ("sasl",)
        s = doc.mapping(k["sasl"] or {}, sp, {"mechanism", "username", "password", "password_env", "password_file"})
        sasl = True
        mechanism = r.string(s, sp, "mechanism", required=True) or "PLAIN"
        if mechanism not in SASL_MECHANISMS:
            doc.fail(sp + ("mechanism",), f"expected one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
        client["sasl.mechanism"] = mechanism
        client["sasl.username"] = r.string(s, sp, "username", required=True) or ""
        password = r.secret(s, sp, "password")
        if password is None:
            doc.fail(sp, "give the password as password_env or password_file (or password)")
        client["sasl.password"] = password or ""
    client["security.protocol"] = {(False, False): "PLAINTEXT", (True, False): "SSL", (False, True): "SASL_PLAINTEXT",
                                   (True, True): "SASL_SSL"}[(tls, sasl)]
    filters = {}
    for what in ("groups", "topics"):
        f = doc.mapping(k.get(what) or {}, kp + (what,), {"allow", "deny"})
        for key in ("allow", "deny"):
            filters[(what, key)] = r.regex(f, kp + (what,), key)
    max_series = r.positive_int(k, kp, "max_series", 100_000) or 100_000
    every = r.duration_s(k, kp, "interval", max(interval, 30.0))
    disabled = r.names(k, kp, "disable", set(LAG_FAMILIES) | {LOST_FAMILY[0]})
    rate_window = r.duration_s(k, kp, "rate_window", max(300.0, 2 * every))
    if rate_window < 2 * every:
        doc.fail(kp + ("rate_window",), f"a rate window of {rate_window:g} s holds fewer than three collections at "
                                        f"the interval of {every:g} s: give at least {2 * every:g} s")
    return KafkaSpec(client, every, r.duration_s(k, kp, "timeout", min(timeout, every)),
                     filters[("groups", "allow")] or ".*", filters[("groups", "deny")],
                     filters[("topics", "allow")] or ".*",
                     filters[("topics", "deny")] if "deny" in (k.get("topics") or {}) else "^__.*",
                     r.boolean(k, kp, "partition_series", True), max_series,
                     r.duration_s(k, kp, "status_window", 600.0), r.boolean(k, kp, "lag_seconds", True), disabled,
                     rate_window)


def load_config_file(path: str) -> DaemonConfig:
    return load_config(read_text(path), path)


__all__ = [
    "DEFAULT_HOST_NAME",
    "ConfigError",
    "DaemonConfig",
    "JvmSpec",
    "KafkaSpec",
    "PrometheusSpec",
    "SourceSpec",
    "TargetSpec",
    "ZabbixSpec",
    "load_config",
    "load_config_file",
]
