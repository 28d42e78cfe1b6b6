"""Provisioning a Zabbix server for a Kafka cluster: templates, host group, one host per node
(linked to its role's template, with a JMX interface for the Java gateway or none for trapper
items), and the cluster host with its macros. Idempotent: running it again updates in place.
Zabbix 6.0 through 8.0 (pyzabbix logs in with username= on 5.4 and later)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyzabbix import ZabbixAPI, ZabbixAPIException

from exporter.catalog import zabbix as templates
from exporter.catalog.model import load_catalog
from exporter.config import DEFAULT_HOST_NAME
from kafka_common.roles import is_broker

IMPORT_RULES = {
    "groups": {"createMissing": True},
    "templates": {"createMissing": True, "updateExisting": True},
    "templateLinkage": {"createMissing": True},
    "items": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "triggers": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "discoveryRules": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "graphs": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "templateDashboards": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "valueMaps": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
}
# the template Zabbix ships for Kafka (2.x era, ZooKeeper-based): its JMX items share keys with ours
BUNDLED_KAFKA_TEMPLATE = "Apache Kafka by JMX"
OUR_TEMPLATES = "Apache Kafka 4.x "


def release(server_version: str) -> tuple[int, int]:
    """(major, minor) of an API version such as 7.0.22."""
    major, minor = server_version.split(".")[:2]
    return int(major), int(minor)


def import_rules(server_version: str) -> dict[str, dict[str, bool]]:
    """configuration.import's rules for a server version: 6.2 split host and template groups."""
    rules = dict(IMPORT_RULES)
    if release(server_version) >= (6, 2):
        rules["template_groups"] = rules.pop("groups")
    return rules


def export_format(server_version: str) -> str:
    """The template export format a server imports as ours: 6.0's up to 6.4 (their frontends
    convert it), 7.0's for 7.0 to 7.4 (dashboard widgets changed), 8.0's from 8.0 on."""
    at = release(server_version)
    return "6.0" if at < (7, 0) else "7.0" if at < (8, 0) else "8.0"


class ProvisionError(RuntimeError):
    """A Zabbix API call failed; the message names the call and the object."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str                    # broker | controller | combined
    host: str = "127.0.0.1"
    port: int = 0                # the node's JMX port (jmx transport)
    host_name: str = ""          # an existing Zabbix host to take over; default CLUSTER-NAME


def _call(what: str, fn: Callable[..., Any], *ids: str, **params: Any) -> Any:
    """An API method (its parameters by name, or a delete's ids by position), its error named with `what`."""
    try:
        return fn(*ids, **params)
    except ZabbixAPIException as e:
        raise ProvisionError(f"Zabbix API {what}: {e.args[0] if e.args else e}") from None


class Provisioner:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.api = ZabbixAPI(url)
        try:
            self.api.login(user, password)
        except ZabbixAPIException as e:
            raise ProvisionError(f"Zabbix API login as {user!r} at {url}: {e.args[0] if e.args else e}") from None
        except Exception as e:      # connection refused, not a Zabbix frontend
            raise ProvisionError(f"cannot reach the Zabbix API at {url}: {e}") from None
        self.version = str(self.api.api_version())

    def import_templates(self) -> None:
        catalog = load_catalog()
        fmt = export_format(self.version)
        rules = import_rules(self.version)
        source = templates.serialize(templates.render(catalog, fmt))
        _call("configuration.import of the Kafka 4.x templates", self.api.configuration["import"],
              format="yaml", source=source, rules=rules)

    def _template_ids(self) -> dict[str, str]:
        return {t["host"]: t["templateid"]
                for t in _call("template.get", self.api.template.get, search={"host": "Apache Kafka 4.x"},
                               output=["host"])}

    def _proxy(self, name: str) -> dict[str, Any]:
        """The host fields that put a host behind this proxy (7.0 renamed them)."""
        seven = release(self.version) >= (7, 0)
        found = _call("proxy.get", self.api.proxy.get, filter={"name" if seven else "host": name}, output=["proxyid"])
        if not found:
            raise ProvisionError(f"--proxy: no Zabbix proxy named {name!r} (create it under Administration > Proxies, "
                                 "active mode, with the Hostname of its zabbix_proxy.conf)")
        return {"monitored_by": 1, "proxyid": found[0]["proxyid"]} if seven else {"proxy_hostid": found[0]["proxyid"]}

    def _group(self, name: str) -> str:
        found = _call("hostgroup.get", self.api.hostgroup.get, filter={"name": name}, output=["groupid"])
        if found:
            return str(found[0]["groupid"])
        return str(_call(f"hostgroup.create {name!r}", self.api.hostgroup.create, name=name)["groupids"][0])

    def _upsert_host(self, host: str, group: str, template_id: str | list[str], macros: list[dict[str, Any]],
                     interface: dict[str, Any] | None, migrate_from: dict[str, str] | None = None,
                     monitored_by: dict[str, Any] | None = None) -> str:
        existing = _call("host.get", self.api.host.get, filter={"host": host}, output=["hostid"],
                         selectInterfaces=["interfaceid", "type"], selectParentTemplates=["templateid", "host"])
        ids = [template_id] if isinstance(template_id, str) else template_id
        params: dict[str, Any] = {"groups": [{"groupid": group}], "templates": [{"templateid": t} for t in ids], "macros": macros,
                        **(monitored_by or {})}
        if not existing:
            if interface:
                params["interfaces"] = [interface]
            return str(_call(f"host.create {host!r}", self.api.host.create, host=host, **params)["hostids"][0])
        hostid = str(existing[0]["hostid"])
        linked = {t["host"]: t["templateid"] for t in existing[0]["parentTemplates"]}
        clear = [{"templateid": tid} for name, tid in linked.items() if name in (migrate_from or {})]
        if BUNDLED_KAFKA_TEMPLATE in linked and not clear:
            raise ProvisionError(f"host {host!r} is linked to {BUNDLED_KAFKA_TEMPLATE!r}, whose items have the keys of "
                                 f"ours: pass --migrate-from '{BUNDLED_KAFKA_TEMPLATE}' to unlink and clear it "
                                 "(its items and their history go) and link the Kafka 4.x template instead")
        if clear:
            params["templates_clear"] = clear
        replaced = [tid for name, tid in linked.items() if name.startswith(OUR_TEMPLATES) and tid not in ids]
        if replaced:
            self._unlink_keeping_history(host, hostid, linked, replaced, ids)
        _call(f"host.update {host!r}", self.api.host.update, hostid=hostid, **params)
        if interface:
            jmx = [i for i in existing[0]["interfaces"] if str(i["type"]) == "4"]
            if jmx:
                _call(f"hostinterface.update {host!r}", self.api.hostinterface.update,
                      interfaceid=jmx[0]["interfaceid"], ip=interface["ip"], port=interface["port"])
            else:
                _call(f"hostinterface.create {host!r}", self.api.hostinterface.create, hostid=hostid, **interface)
        return hostid

    def _unlink_keeping_history(self, host: str, hostid: str, linked: dict[str, str], replaced: list[str],
                                new: list[str]) -> None:
        """Another of our templates (the other transport's) has the new one's item keys: it is unlinked, so its
        items stay on the host with their history and the new template takes them over. Its discovery rules
        have other keys than the new one's but the same item prototypes, which Zabbix will not have twice:
        those rules go, with what they discovered (discovered again by the new rules)."""
        _call(f"host.update {host!r} (unlinking)", self.api.host.update, hostid=hostid,
              templates=[{"templateid": tid} for tid in linked.values() if tid not in replaced])
        keep = {r["key_"] for r in _call("discoveryrule.get", self.api.discoveryrule.get, templateids=new,
                                         output=["key_"])}
        old = {r["key_"] for r in _call("discoveryrule.get", self.api.discoveryrule.get, templateids=replaced,
                                        output=["key_"])} - keep
        stale = [r["itemid"] for r in _call("discoveryrule.get", self.api.discoveryrule.get, hostids=[hostid],
                                            output=["itemid", "key_"]) if r["key_"] in old]
        if stale:
            _call(f"discoveryrule.delete on {host!r}", self.api.discoveryrule.delete, *stale)

    def provision(self, cluster: str, nodes: list[NodeSpec], transport: str = "jmx", brokers_min: int | None = None,
                  interval: str | None = None, host_name: str = DEFAULT_HOST_NAME,
                  macros: dict[str, str] | None = None, migrate_from: Sequence[str] = (),
                  proxy: str | None = None) -> dict[str, str]:
        """Hosts for every node and the cluster; returns host name -> hostid. `macros` go on every host.
        A node's existing host linked to a template of `migrate_from` has it unlinked and cleared first.
        With `proxy` the node hosts are monitored by that Zabbix proxy (the exporter then pushes to it)."""
        if transport not in ("jmx", "trapper"):
            raise ProvisionError(f"transport must be jmx or trapper, got {transport!r}")
        monitored_by = self._proxy(proxy) if proxy else {}
        old = {t["host"]: t["templateid"] for t in _call(
            "template.get", self.api.template.get, filter={"host": list(migrate_from)}, output=["host"])} \
            if migrate_from else {}
        missing = sorted(set(migrate_from) - set(old))
        if missing:
            raise ProvisionError(f"--migrate-from: no template named {', '.join(map(repr, missing))} on this server")
        self.import_templates()
        group_name = f"Kafka {cluster}"
        group = self._group(group_name)
        tids = self._template_ids()
        extra = [{"macro": k, "value": v} for k, v in (macros or {}).items()]
        node_macros = ([{"macro": "{$KAFKA.INTERVAL}", "value": interval}] if interval else []) + extra
        hosts = {}
        for node in nodes:
            template = templates.TEMPLATE_NAMES[(transport, node.role)]
            interface = None
            if transport == "jmx":
                interface = {"type": 4, "main": 1, "useip": 1, "ip": node.host, "dns": "", "port": str(node.port)}
            name = node.host_name or host_name.format(cluster=cluster, node=node.name)
            hosts[name] = self._upsert_host(name, group, tids[template], node_macros, interface, old, monitored_by)
        cluster_macros = [{"macro": "{$KAFKA.CLUSTER.GROUP}", "value": group_name}]
        if brokers_min is None:         # the cluster as given: every broker it has is expected up
            brokers_min = sum(1 for node in nodes if is_broker(node.role)) or None
        if brokers_min is not None:
            cluster_macros.append({"macro": "{$KAFKA.BROKERS.MIN}", "value": str(brokers_min)})
        if interval:
            cluster_macros.append({"macro": "{$KAFKA.INTERVAL}", "value": interval})
        cluster_macros += extra
        name = host_name.format(cluster=cluster, node="cluster")
        # the cluster's host also takes the consumer groups the exporter reads through the Kafka protocol
        hosts[name] = self._upsert_host(name, group, [tids["Apache Kafka 4.x cluster"],
                                                      tids["Apache Kafka 4.x consumer groups by trapper"]],
                                        cluster_macros, None)
        return hosts
