"""A real Zabbix 6.0 for the tests: PostgreSQL, zabbix_server, the Java gateway and the frontend/API,
all on 127.0.0.1 under a private state folder, stopped by PID.

Debian packages (make test installs them): postgresql zabbix-server-pgsql zabbix-frontend-php
zabbix-java-gateway php8.2-cli php8.2-pgsql php8.2-gd php8.2-bcmath php8.2-mbstring php8.2-xml php8.2-ldap.
"""
from __future__ import annotations

import contextlib
import glob
import gzip
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from jvm_support import free_port_block

from exporter.provision import IMPORT_RULES  # noqa: F401  (the tests import templates as the provisioner does)

PGBIN = Path("/usr/lib/postgresql/15/bin")
SCHEMA_DIR = Path("/usr/share/zabbix-server-pgsql")
FRONTEND = Path("/usr/share/zabbix")
JAVA_GATEWAY_JAR = Path("/usr/sbin/zabbix-java-gateway.jar")
REQUIRED = {"postgresql": PGBIN / "initdb", "zabbix-server-pgsql": Path("/usr/sbin/zabbix_server"),
            "zabbix-frontend-php": FRONTEND / "api_jsonrpc.php", "zabbix-java-gateway": JAVA_GATEWAY_JAR,
            "php8.2-cli": Path("/usr/bin/php")}
# Debian's proxy package conflicts with the server's: scripts/install-zabbix-proxy unpacks it into the cache
ZABBIX_PROXY = Path(os.environ.get("KAFKA_JMX_CACHE", Path.home() / ".cache" / "kafka-jmx")) / "zabbix-proxy" / \
    "usr" / "sbin" / "zabbix_proxy"


def missing_packages() -> list[str]:
    return [pkg for pkg, path in REQUIRED.items() if not path.exists()]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr or result.stdout}")
    return result


def _wait_port(port: int, timeout: float = 30.0) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class ZabbixStack:
    def __init__(self, state: Path, pg_port: int, server_port: int, gateway_port: int, web_port: int) -> None:
        self.state = state
        self.pg_port, self.server_port, self.gateway_port, self.web_port = pg_port, server_port, gateway_port, web_port
        self.pids: dict[str, int] = {}
        self.pgdata = state / "pg" / "data"
        self.zdir = state / "zabbix"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/api_jsonrpc.php"

    # -- bring-up ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        os.chmod(self.state, 0o755)
        self._postgres()
        self._database()
        self._server()
        self._gateway()
        self._frontend()

    def _postgres(self) -> None:
        (self.state / "pg").mkdir(parents=True)
        shutil.chown(self.state / "pg", "postgres", "postgres")
        _run(["runuser", "-u", "postgres", "--", str(PGBIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
              "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        _run(["runuser", "-u", "postgres", "--", str(PGBIN / "pg_ctl"), "-D", str(self.pgdata), "-l",
              str(self.state / "pg" / "postgres.log"), "-w", "-o",
              f"-p {self.pg_port} -k {self.state / 'pg'} -c listen_addresses=127.0.0.1 -c fsync=off "
              "-c synchronous_commit=off -c full_page_writes=off", "start"])

    def _psql(self, *args: str, user: str = "postgres", stdin: str | None = None) -> None:
        env = {**os.environ, "PGPASSWORD": "zabbixpw"}
        cmd = ["psql", "-h", "127.0.0.1" if user != "postgres" else str(self.state / "pg"), "-p", str(self.pg_port),
               "-U", user, "-v", "ON_ERROR_STOP=1", "-q", *args]
        if user == "postgres":
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        _run(cmd, input=stdin, env=env)

    def _database(self) -> None:
        self._psql("-c", "CREATE ROLE zabbix LOGIN PASSWORD 'zabbixpw'",
                   "-c", "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0")
        for name in ("schema", "images", "data"):
            with gzip.open(SCHEMA_DIR / f"{name}.sql.gz", "rt") as fh:
                self._psql("-d", "zabbix", user="zabbix", stdin=fh.read())

    def _server(self) -> None:
        for sub in ("log", "run"):
            (self.zdir / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(self.zdir / sub, "zabbix", "zabbix")
        conf = self.zdir / "zabbix_server.conf"
        conf.write_text("\n".join([
            f"LogFile={self.zdir}/log/zabbix_server.log", "LogFileSize=0", f"PidFile={self.zdir}/run/zabbix_server.pid",
            f"SocketDir={self.zdir}/run", "DBHost=127.0.0.1", f"DBPort={self.pg_port}", "DBName=zabbix",
            "DBUser=zabbix", "DBPassword=zabbixpw", "ListenIP=127.0.0.1", f"ListenPort={self.server_port}",
            "JavaGateway=127.0.0.1", f"JavaGatewayPort={self.gateway_port}", "StartJavaPollers=2", "StartTrappers=3",
            "StartPollers=2", "StartPollersUnreachable=1", "StartPingers=0", "StartDiscoverers=0",
            "StartHTTPPollers=0", "StartAlerters=1", "StartDBSyncers=2", "StartPreprocessors=2",
            "StartLLDProcessors=1", "CacheUpdateFrequency=2", "Timeout=4", "StatsAllowedIP=127.0.0.1", ""]))
        shutil.chown(conf, "root", "zabbix")
        os.chmod(conf, 0o640)
        self.conf = conf
        self.start_server()

    def _gateway(self) -> None:
        log = open(self.zdir / "log" / "java_gateway.log", "w")
        proc = subprocess.Popen(["setpriv", "--reuid=zabbix", "--regid=zabbix", "--init-groups", "/usr/bin/java",
                                 "-Xmx128m", "-XX:-UsePerfData", "-Dzabbix.listenIP=127.0.0.1",
                                 f"-Dzabbix.listenPort={self.gateway_port}", "-Dzabbix.startPollers=2",
                                 "-Dzabbix.timeout=3", "-Dsun.rmi.transport.tcp.responseTimeout=3000",
                                 "-jar", str(JAVA_GATEWAY_JAR)], stdout=log, stderr=subprocess.STDOUT)
        self.pids["java_gateway"] = proc.pid
        _wait_port(self.gateway_port)

    def _frontend(self) -> None:
        docroot = self.state / "zabbix-web"
        shutil.copytree(FRONTEND, docroot, symlinks=True)
        conf = self.zdir / "zabbix.conf.php"
        conf.write_text(f"""<?php
$DB['TYPE'] = 'POSTGRESQL'; $DB['SERVER'] = '127.0.0.1'; $DB['PORT'] = '{self.pg_port}';
$DB['DATABASE'] = 'zabbix'; $DB['USER'] = 'zabbix'; $DB['PASSWORD'] = 'zabbixpw'; $DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false; $DB['KEY_FILE'] = ''; $DB['CERT_FILE'] = ''; $DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false; $DB['CIPHER_LIST'] = ''; $DB['VAULT_URL'] = ''; $DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = ''; $DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1'; $ZBX_SERVER_PORT = '{self.server_port}'; $ZBX_SERVER_NAME = 'kafka-jmx-tests';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
""")
        cfg = docroot / "include" / "classes" / "core" / "CConfigFile.php"
        text = cfg.read_text()
        import re
        cfg.write_text(re.sub(r"const CONFIG_FILE_PATH = '[^']*';", f"const CONFIG_FILE_PATH = '{conf}';", text))
        log = open(self.zdir / "log" / "php_web.log", "w")
        proc = subprocess.Popen(["php", "-d", "memory_limit=512M", "-d", "post_max_size=32M", "-d", "max_execution_time=300",
                                 "-d", "date.timezone=UTC", "-S", f"127.0.0.1:{self.web_port}", "-t", str(docroot)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PHP_CLI_SERVER_WORKERS": "3"},
                                start_new_session=True)
        self.pids["php"] = proc.pid
        _wait_port(self.web_port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = requests.post(self.api_url, json={"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1},
                                  timeout=5)
                if r.ok and "result" in r.json():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError("the Zabbix API does not answer")

    def stop_server(self) -> None:
        pid = self.pids.pop("zabbix_server")
        os.kill(pid, signal.SIGTERM)
        for _ in range(80):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.25)
        os.kill(pid, signal.SIGKILL)

    def start_server(self) -> None:
        _run(["/usr/sbin/zabbix_server", "-c", str(self.conf)])
        _wait_port(self.server_port)
        self.pids["zabbix_server"] = int((self.zdir / "run" / "zabbix_server.pid").read_text())

    def start_proxy(self, name: str, port: int) -> None:
        """An active Zabbix proxy (SQLite, created on first start) that reports to this server as `name`:
        it fetches its configuration every 2 s, sends its data every second and buffers up to an hour."""
        pdir = self.zdir / f"proxy-{name}"
        for sub in ("", "log", "run"):
            (pdir / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(pdir / sub, "zabbix", "zabbix")
        conf = pdir / "zabbix_proxy.conf"
        conf.write_text("\n".join([
            "ProxyMode=0", f"Server=127.0.0.1:{self.server_port}", f"Hostname={name}", "ListenIP=127.0.0.1",
            f"ListenPort={port}", f"LogFile={pdir}/log/zabbix_proxy.log", "LogFileSize=0",
            f"PidFile={pdir}/run/zabbix_proxy.pid", f"SocketDir={pdir}/run", f"DBName={pdir}/proxy.db",
            "ConfigFrequency=2", "DataSenderFrequency=1", "ProxyOfflineBuffer=1", "StartTrappers=2", "StartPollers=1",
            "StartPollersUnreachable=1", "StartPingers=0", "StartDiscoverers=0", "StartHTTPPollers=0",
            "StartJavaPollers=0", "Timeout=4", ""]))
        shutil.chown(conf, "root", "zabbix")
        os.chmod(conf, 0o640)
        if not ZABBIX_PROXY.exists():
            raise RuntimeError(f"no {ZABBIX_PROXY}: run scripts/install-zabbix-proxy (make test does)")
        _run([str(ZABBIX_PROXY), "-c", str(conf)])
        _wait_port(port)
        self.pids[f"proxy-{name}"] = int((pdir / "run" / "zabbix_proxy.pid").read_text())

    def reload_config_cache(self) -> None:
        subprocess.run(["/usr/sbin/zabbix_server", "-c", str(self.conf), "-R", "config_cache_reload"],
                       capture_output=True)

    # -- tear-down ----------------------------------------------------------------------------------------------
    def stop(self) -> None:
        php = self.pids.pop("php", None)
        if php:
            try:
                os.killpg(php, signal.SIGTERM)      # the master and its forked workers
            except ProcessLookupError:
                pass
        for _name, pid in list(self.pids.items()):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(40):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.25)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()
        if (self.pgdata / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PGBIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast",
                            "-w", "stop"], capture_output=True)

    def logs(self) -> str:
        return "\n".join(f"== {p}\n{Path(p).read_text(errors='replace')[-4000:]}"
                         for p in glob.glob(str(self.zdir / "log" / "*.log")) + glob.glob(str(self.zdir / "proxy-*" / "log" / "*.log")))


@contextlib.contextmanager
def running_stack(prefix: str = "kafka-jmx-zabbix-") -> Iterator[ZabbixStack]:
    """A started stack on free ports, stopped by PID on the way out. Its folder is not under pytest's
    tmp (the services run as postgres and zabbix, who may not enter it); when the body fails the logs
    are printed and the folder is kept."""
    base = free_port_block(4, low=20000)
    state = Path(tempfile.mkdtemp(prefix=prefix))
    stack = ZabbixStack(state, base, base + 1, base + 2, base + 3)
    failed = True
    try:
        stack.start()
        yield stack
        failed = False
    finally:
        if failed:
            print(stack.logs())
        stack.stop()
        if not failed:
            shutil.rmtree(state, ignore_errors=True)


JMX_ITEM = "16"


def polled(api, hostids: list[str]) -> bool:
    """Every JMX item of the hosts (discovered ones too) has a value or has gone unsupported."""
    items = api.item.get(hostids=hostids, filter={"type": JMX_ITEM}, output=["lastclock", "state"])
    return bool(items) and all(i["lastclock"] != "0" or i["state"] == "1" for i in items)


def unsupported(api, hostids: list[str]) -> list[str]:
    """Items and discovery rules of the hosts that Zabbix marked not supported, with its error."""
    found = api.item.get(hostids=hostids, output=["key_", "state", "error"], selectHosts=["host"])
    found += api.discoveryrule.get(hostids=hostids, output=["key_", "state", "error"], selectHosts=["host"])
    return [f'{i["hosts"][0]["host"]} {i["key_"]}: {i["error"]}' for i in found if i["state"] == "1"]


def jmx_hosts(api, zabbix: ZabbixStack, name: str, nodes: dict[str, tuple[str, int]],
              cluster_macros: dict[str, str]) -> list[str]:
    """Host group `Kafka NAME`: a host per node (role, JMX port) with its role's JMX template, polled
    by the Java gateway every 5 s, and the cluster host; returns their ids."""
    group = api.hostgroup.create(name=f"Kafka {name}")["groupids"][0]
    tpl = {t["host"]: t["templateid"] for t in api.template.get(search={"host": "Apache Kafka 4.x"}, output=["host"])}
    for node_name, (role, port) in nodes.items():
        api.host.create(host=f"{name}-{node_name}", groups=[{"groupid": group}],
                        interfaces=[{"type": 4, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": str(port)}],
                        templates=[{"templateid": tpl[f"Apache Kafka 4.x {role} by JMX"]}],
                        macros=[{"macro": "{$KAFKA.INTERVAL}", "value": "5s"},
                                {"macro": "{$KAFKA.LLD.INTERVAL}", "value": "10s"}])
    api.host.create(host=f"{name}-cluster", groups=[{"groupid": group}],
                    templates=[{"templateid": tpl["Apache Kafka 4.x cluster"]}],
                    macros=[{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": f"Kafka {name}"},
                            *({"macro": k, "value": v} for k, v in cluster_macros.items())])
    zabbix.reload_config_cache()
    return [h["hostid"] for h in api.host.get(groupids=[group], output=["hostid"])]
