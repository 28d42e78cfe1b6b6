"""A real Zabbix for the tests: PostgreSQL, zabbix_server, the Java gateway and the frontend/API, all on
127.0.0.1 under a private state folder, stopped by PID. Two versions, one stack:

- 6.0 LTS, Debian 12's packages on the host (make test installs them): postgresql zabbix-server-pgsql
  zabbix-frontend-php zabbix-java-gateway php8.2-cli php8.2-pgsql php8.2-gd php8.2-bcmath php8.2-mbstring
  php8.2-xml php8.2-ldap;
- 7.0 LTS, Debian 13's packages in a Debian 13 root (scripts/install-zabbix70 makes it: their binaries need
  Debian 13's libc). The services run under `chroot` in a private mount namespace that holds the root's
  /proc, /sys, /dev and /dev/shm (so no mount is ever left in the host's), and share the host's loopback.
"""
from __future__ import annotations

import contextlib
import glob
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from conftest import wait
from jvm_support import free_port_block

from exporter.catalog.zabbix import TEMPLATE_NAMES

ZABBIX70_ROOT = Path(os.environ.get("ZABBIX70_ROOT", "/var/cache/kafka-jmx/zabbix70-trixie"))
# Debian's 6.0 proxy package conflicts with the server's: scripts/install-zabbix-proxy unpacks it into the cache
ZABBIX60_PROXY = Path(os.environ.get("KAFKA_JMX_CACHE", Path.home() / ".cache" / "kafka-jmx")) / "zabbix-proxy" / \
    "usr" / "sbin" / "zabbix_proxy"


@dataclass(frozen=True)
class Layout:
    """Where one Zabbix version's programs are, as its processes see them (inside the root for 7.0)."""

    version: str
    root: Path | None               # the Debian 13 root, or None: the host
    pgbin: str
    proxy: str
    install: str                    # what makes it available
    proxy_config_frequency: str     # the proxy's configuration period key (renamed in 7.0)

    def host(self, inside: str) -> Path:
        """A path as the host sees it."""
        return self.root / inside.lstrip("/") if self.root else Path(inside)

    def required(self) -> dict[str, Path]:
        return {"postgresql": self.host(f"{self.pgbin}/initdb"), "zabbix-server-pgsql": self.host("/usr/sbin/zabbix_server"),
                "zabbix-frontend-php": self.host("/usr/share/zabbix/api_jsonrpc.php"),
                "zabbix-java-gateway": self.host("/usr/sbin/zabbix-java-gateway.jar"), "php-cli": self.host("/usr/bin/php")}


LAYOUTS = {
    "6.0": Layout("6.0", None, "/usr/lib/postgresql/15/bin", str(ZABBIX60_PROXY), "make test (scripts/install-system-deps)",
                  "ConfigFrequency"),
    "7.0": Layout("7.0", ZABBIX70_ROOT, "/usr/lib/postgresql/17/bin", "/opt/zabbix-proxy/usr/sbin/zabbix_proxy",
                  "make test (scripts/install-zabbix70)", "ProxyConfigFrequency"),
}


def missing_packages(version: str = "6.0") -> list[str]:
    return [pkg for pkg, path in LAYOUTS[version].required().items() if not path.exists()]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr or result.stdout}")
    return result


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, timeout: float = 30.0) -> None:
    if not wait(lambda: _listens(port), timeout, step=0.2):
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class Box:
    """Runs the stack's commands where its version's programs are: on the host (6.0), or under chroot in a
    private mount namespace held by one process (7.0), whose end takes the mounts with it."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.holder: subprocess.Popen[str] | None = None

    def open(self) -> None:
        root = self.layout.root
        if root is None:
            return
        mounts = (f"mount -t proc proc {root}/proc && mount -t sysfs sys {root}/sys && mount --bind /dev {root}/dev && "
                  f"mount --bind /dev/pts {root}/dev/pts && mount -t tmpfs shm {root}/dev/shm")
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                        f"{mounts} && echo ready && exec sleep infinity"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError(f"cannot mount into {root}: {self.holder.communicate(timeout=10)[1]}")

    def close(self) -> None:
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait(10)
            self.holder = None

    def argv(self, cmd: list[str]) -> list[str]:
        if self.layout.root is None:
            return cmd
        assert self.holder is not None, "the box is not open"
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", "chroot", str(self.layout.root), *cmd]

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return _run(self.argv(cmd), **kw)


class ZabbixStack:
    def __init__(self, layout: Layout, state: str, pg_port: int, server_port: int, gateway_port: int,
                 web_port: int) -> None:
        """state: the stack's folder as its processes see it (inside the root for 7.0)."""
        self.layout = layout
        self.version = layout.version
        self.box = Box(layout)
        self.state = state
        self.pg_port, self.server_port, self.gateway_port, self.web_port = pg_port, server_port, gateway_port, web_port
        self.pids: dict[str, int] = {}
        self.pgdata = f"{state}/pg/data"
        self.zdir = f"{state}/zabbix"
        self.conf = f"{self.zdir}/zabbix_server.conf"

    def host(self, inside: str) -> Path:
        return self.layout.host(inside)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/api_jsonrpc.php"

    # -- bring-up ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        os.chmod(self.host(self.state), 0o755)
        self.box.open()
        self._postgres()
        self._database()
        self._server()
        self._gateway()
        self._frontend()

    def _own(self, inside: str, owner: str) -> None:
        self.box.run(["chown", f"{owner}:{owner}", inside])

    def _postgres(self) -> None:
        self.host(f"{self.state}/pg").mkdir(parents=True)
        self._own(f"{self.state}/pg", "postgres")
        pgbin = self.layout.pgbin
        self.box.run(["runuser", "-u", "postgres", "--", f"{pgbin}/initdb", "-D", self.pgdata, "-U", "postgres",
                      "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        self.box.run(["runuser", "-u", "postgres", "--", f"{pgbin}/pg_ctl", "-D", self.pgdata, "-l",
                      f"{self.state}/pg/postgres.log", "-w", "-o",
                      f"-p {self.pg_port} -k {self.state}/pg -c listen_addresses=127.0.0.1 -c fsync=off "
                      "-c synchronous_commit=off -c full_page_writes=off", "start"])

    def _psql(self, *args: str, user: str = "postgres", stdin: str | None = None) -> None:
        env = {**os.environ, "PGPASSWORD": "zabbixpw"}
        cmd = ["psql", "-h", "127.0.0.1" if user != "postgres" else f"{self.state}/pg", "-p", str(self.pg_port),
               "-U", user, "-v", "ON_ERROR_STOP=1", "-q", *args]
        if user == "postgres":
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.box.run(cmd, input=stdin, env=env)

    def _database(self) -> None:
        self._psql("-c", "CREATE ROLE zabbix LOGIN PASSWORD 'zabbixpw'",
                   "-c", "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0")
        for name in ("schema", "images", "data"):
            with gzip.open(self.host(f"/usr/share/zabbix-server-pgsql/{name}.sql.gz"), "rt") as fh:
                self._psql("-d", "zabbix", user="zabbix", stdin=fh.read())

    def _write(self, inside: str, text: str, owner: str = "zabbix", mode: int = 0o640) -> None:
        """A configuration file readable by the service user (root-owned, its group)."""
        path = self.host(inside)
        path.write_text(text)
        self.box.run(["chown", f"root:{owner}", inside])
        os.chmod(path, mode)

    def _server(self) -> None:
        for sub in ("log", "run"):
            self.host(f"{self.zdir}/{sub}").mkdir(parents=True, exist_ok=True)
            self._own(f"{self.zdir}/{sub}", "zabbix")
        self._write(self.conf, "\n".join([
            f"LogFile={self.zdir}/log/zabbix_server.log", "LogFileSize=0", f"PidFile={self.zdir}/run/zabbix_server.pid",
            f"SocketDir={self.zdir}/run", "DBHost=127.0.0.1", f"DBPort={self.pg_port}", "DBName=zabbix",
            "DBUser=zabbix", "DBPassword=zabbixpw", "ListenIP=127.0.0.1", f"ListenPort={self.server_port}",
            "JavaGateway=127.0.0.1", f"JavaGatewayPort={self.gateway_port}", "StartJavaPollers=2", "StartTrappers=3",
            "StartPollers=2", "StartPollersUnreachable=1", "StartPingers=0", "StartDiscoverers=0",
            "StartHTTPPollers=0", "StartAlerters=1", "StartDBSyncers=2", "StartPreprocessors=2",
            "StartLLDProcessors=1", "CacheUpdateFrequency=2", "Timeout=4", "StatsAllowedIP=127.0.0.1", ""]))
        self.start_server()

    def _gateway(self) -> None:
        logback = f"{self.zdir}/java_gateway.logback.xml"
        # 7.0's gateway logs at DEBUG without a configuration (megabytes a minute)
        self._write(logback, "<configuration><appender name=\"out\" class=\"ch.qos.logback.core.ConsoleAppender\">"
                             "<encoder><pattern>%d %-5level %logger{0} %msg%n</pattern></encoder></appender>"
                             "<root level=\"info\"><appender-ref ref=\"out\"/></root></configuration>\n", mode=0o644)
        log = open(self.host(f"{self.zdir}/log/java_gateway.log"), "w")
        proc = subprocess.Popen(self.box.argv(["setpriv", "--reuid=zabbix", "--regid=zabbix", "--init-groups",
                                               "/usr/bin/java", "-Xmx128m", "-XX:-UsePerfData",
                                               f"-Dlogback.configurationFile={logback}", "-Dzabbix.listenIP=127.0.0.1",
                                               f"-Dzabbix.listenPort={self.gateway_port}", "-Dzabbix.startPollers=2",
                                               "-Dzabbix.timeout=3", "-Dsun.rmi.transport.tcp.responseTimeout=3000",
                                               "-jar", "/usr/sbin/zabbix-java-gateway.jar"]),
                                stdout=log, stderr=subprocess.STDOUT)
        self.pids["java_gateway"] = proc.pid
        _wait_port(self.gateway_port)

    def _frontend(self) -> None:
        docroot = f"{self.state}/zabbix-web"
        shutil.copytree(self.host("/usr/share/zabbix"), self.host(docroot), symlinks=True)
        # Debian's links (fonts, local/) are relative to /usr/share/zabbix: made absolute in the copy, or the
        # graphs are drawn without text
        for link in self.host(docroot).rglob("*"):
            if link.is_symlink() and not os.readlink(link).startswith("/"):
                original = "/usr/share/zabbix/" + str(link.relative_to(self.host(docroot)))
                target = os.path.normpath(os.path.join(os.path.dirname(original), os.readlink(link)))
                link.unlink()
                link.symlink_to(target)
        conf = f"{self.zdir}/zabbix.conf.php"
        self._write(conf, f"""<?php
$DB['TYPE'] = 'POSTGRESQL'; $DB['SERVER'] = '127.0.0.1'; $DB['PORT'] = '{self.pg_port}';
$DB['DATABASE'] = 'zabbix'; $DB['USER'] = 'zabbix'; $DB['PASSWORD'] = 'zabbixpw'; $DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false; $DB['KEY_FILE'] = ''; $DB['CERT_FILE'] = ''; $DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false; $DB['CIPHER_LIST'] = ''; $DB['VAULT'] = ''; $DB['VAULT_URL'] = '';
$DB['VAULT_PREFIX'] = ''; $DB['VAULT_DB_PATH'] = ''; $DB['VAULT_TOKEN'] = ''; $DB['VAULT_CERT_FILE'] = '';
$DB['VAULT_KEY_FILE'] = ''; $DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1'; $ZBX_SERVER_PORT = '{self.server_port}'; $ZBX_SERVER_NAME = 'kafka-jmx-tests';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
""", mode=0o644)
        cfg = self.host(docroot) / "include" / "classes" / "core" / "CConfigFile.php"
        cfg.write_text(re.sub(r"const CONFIG_FILE_PATH = '[^']*';", f"const CONFIG_FILE_PATH = '{conf}';", cfg.read_text()))
        log = open(self.host(f"{self.zdir}/log/php_web.log"), "w")
        proc = subprocess.Popen(self.box.argv(["php", "-d", "memory_limit=512M", "-d", "post_max_size=32M",
                                               "-d", "max_execution_time=300", "-d", "date.timezone=UTC",
                                               "-S", f"127.0.0.1:{self.web_port}", "-t", docroot]),
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PHP_CLI_SERVER_WORKERS": "3"},
                                start_new_session=True)
        self.pids["php"] = proc.pid
        _wait_port(self.web_port)
        if not wait(self._api_answers, 30, step=0.3):
            raise RuntimeError("the Zabbix API does not answer")

    def _api_answers(self) -> bool:
        try:
            r = requests.post(self.api_url, json={"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1},
                              timeout=5)
            return r.ok and "result" in r.json()
        except requests.RequestException:
            return False

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
        self.box.run(["/usr/sbin/zabbix_server", "-c", self.conf])
        _wait_port(self.server_port)
        self.pids["zabbix_server"] = int(self.host(f"{self.zdir}/run/zabbix_server.pid").read_text())

    def start_proxy(self, name: str, port: int) -> None:
        """An active Zabbix proxy (SQLite, created on first start) that reports to this server as `name`:
        it fetches its configuration every 2 s, sends its data every second and buffers up to an hour."""
        pdir = f"{self.zdir}/proxy-{port}"
        for sub in ("", "/log", "/run"):
            self.host(pdir + sub).mkdir(parents=True, exist_ok=True)
            self._own(pdir + sub, "zabbix")
        conf = f"{pdir}/zabbix_proxy.conf"
        self._write(conf, "\n".join([
            "ProxyMode=0", f"Server=127.0.0.1:{self.server_port}", f"Hostname={name}", "ListenIP=127.0.0.1",
            f"ListenPort={port}", f"LogFile={pdir}/log/zabbix_proxy.log", "LogFileSize=0",
            f"PidFile={pdir}/run/zabbix_proxy.pid", f"SocketDir={pdir}/run", f"DBName={pdir}/proxy.db",
            f"{self.layout.proxy_config_frequency}=2", "DataSenderFrequency=1", "ProxyOfflineBuffer=1",
            "StartTrappers=2", "StartPollers=1", "StartPollersUnreachable=1", "StartPingers=0", "StartDiscoverers=0",
            "StartHTTPPollers=0", "StartJavaPollers=0", "Timeout=4", ""]))
        if not self.host(self.layout.proxy).exists():
            raise RuntimeError(f"no {self.layout.proxy}: {self.layout.install} makes it")
        self.box.run([self.layout.proxy, "-c", conf])
        try:
            _wait_port(port)
        except RuntimeError as e:
            log = self.host(f"{pdir}/log/zabbix_proxy.log")
            raise RuntimeError(f"{e}; the proxy's log: {log.read_text()[-2000:] if log.exists() else '(none)'}") from None
        self.pids[f"proxy-{name}"] = int(self.host(f"{pdir}/run/zabbix_proxy.pid").read_text())

    def reload_config_cache(self) -> None:
        subprocess.run(self.box.argv(["/usr/sbin/zabbix_server", "-c", self.conf, "-R", "config_cache_reload"]),
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
        if self.host(f"{self.pgdata}/postmaster.pid").exists():
            subprocess.run(self.box.argv(["runuser", "-u", "postgres", "--", f"{self.layout.pgbin}/pg_ctl", "-D",
                                          self.pgdata, "-m", "fast", "-w", "stop"]), capture_output=True)
        self.box.close()

    def logs(self) -> str:
        zdir = self.host(self.zdir)
        return "\n".join(f"== {p}\n{Path(p).read_text(errors='replace')[-4000:]}"
                         for p in glob.glob(str(zdir / "log" / "*.log")) + glob.glob(str(zdir / "proxy-*" / "log" / "*.log")))


@contextlib.contextmanager
def running_stack(version: str = "6.0", prefix: str = "kjz-") -> Iterator[ZabbixStack]:
    """A started stack of the version on free ports, stopped by PID on the way out. Its folder is not under
    pytest's tmp (the services run as postgres and zabbix, who may not enter it; for 7.0 it is in the root);
    when the body fails the logs are printed and the folder is kept. Its path is short: the services' unix
    sockets under it must stay within 108 bytes."""
    layout = LAYOUTS[version]
    base = free_port_block(4, low=20000)
    parent = layout.host("/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    state_host = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    stack = ZabbixStack(layout, "/var/tmp/" + state_host.name if layout.root else str(state_host),
                        base, base + 1, base + 2, base + 3)
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
            shutil.rmtree(state_host, ignore_errors=True)


JMX_ITEM = "16"


def polled(api, hostids: list[str]) -> bool:
    """Every JMX item of the hosts (discovered ones too) has a value or has gone unsupported."""
    items = api.item.get(hostids=hostids, filter={"type": JMX_ITEM}, output=["lastclock", "state"])
    return bool(items) and all(i["lastclock"] != "0" or i["state"] == "1" for i in items)


def settled(api, hostids: list[str], topic: str, timeout: float = 120) -> bool:
    """The topic's MessagesIn discovered on the hosts (its leaders), then every JMX item polled."""
    key = f'jmx["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic={topic}","Count"]'
    return bool(wait(lambda: api.item.get(hostids=hostids, filter={"key_": key}, output=["itemid"]), timeout)) \
        and bool(wait(lambda: polled(api, hostids), timeout))


def unknown_triggers(api, hostids: list[str]) -> list[dict]:
    """Triggers of the hosts Zabbix cannot evaluate, with its error."""
    found: list[dict] = api.trigger.get(hostids=hostids, filter={"state": 1}, output=["description", "error"])
    return found


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
                        templates=[{"templateid": tpl[TEMPLATE_NAMES[("jmx", role)]]}],
                        macros=[{"macro": "{$KAFKA.INTERVAL}", "value": "5s"},
                                {"macro": "{$KAFKA.LLD.INTERVAL}", "value": "10s"}])
    api.host.create(host=f"{name}-cluster", groups=[{"groupid": group}],
                    templates=[{"templateid": tpl["Apache Kafka 4.x cluster"]}],
                    macros=[{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": f"Kafka {name}"},
                            *({"macro": k, "value": v} for k, v in cluster_macros.items())])
    zabbix.reload_config_cache()
    return [h["hostid"] for h in api.host.get(groupids=[group], output=["hostid"])]
