"""The exporter's trapper push through a real Zabbix proxy (zabbix-proxy-sqlite3, active mode) to the
server (Zabbix 7.0 and 6.0): the way to scale collection out. The proxy keeps what it accepted while the server is down
and delivers it, with the clocks of collection, when the server is back."""
import time

from conftest import make_cluster, wait
from jvm_support import free_port_block

from exporter.catalog.model import load_catalog
from exporter.collector import TargetWorker
from exporter.rulesets import builtin_rules
from exporter.trapper import TrapperSink
from kafka_jmx.cli import main
from kafka_jmx.embedded import embedded_targets

ABC = 'jmx["kafka.controller:type=KafkaController,name=ActiveBrokerCount","Value"]'


def test_trapper_values_reach_the_server_through_an_active_proxy_that_buffers_an_outage(
        zbx, zbx_api, monkeypatch):
    api = zbx_api
    n = time.time_ns() % 10**8
    proxy, cluster = f"kafka-jmx-proxy-{n}", f"px{n}"
    # active: the proxy connects to the server (7.0 renamed the fields)
    api.proxy.create(**({"name": proxy, "operating_mode": 0} if zbx.version == "7.0" else {"host": proxy, "status": 5}))
    proxy_port = free_port_block(1, low=20000)
    zbx.start_proxy(proxy, proxy_port)
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),),
                     config={"offsets.topic.replication.factor": 3})
    monkeypatch.setenv("ZBX_PW", "zabbix")
    url = zbx.api_url.replace("/api_jsonrpc.php", "/")
    nodes = [arg for node in c.servers.values() for arg in ("--node", f"{node.name}={node.role}")]
    assert main(["zabbix", "provision", "--url", url, "--password-env", "ZBX_PW", "--cluster", cluster,
                 "--transport", "trapper", "--brokers-min", "3", "--proxy", proxy, *nodes]) == 0
    host = f"{cluster}-controller-1001"
    # 7.0 names a proxy `name` (6.0: `host`) and a host's proxy `proxyid` (6.0: `proxy_hostid`)
    by_name = {"name" if zbx.version == "7.0" else "host": proxy}
    monitored_by = "proxyid" if zbx.version == "7.0" else "proxy_hostid"
    [proxy_row] = api.proxy.get(filter=by_name, output=["proxyid"])
    assert api.host.get(filter={"host": host}, output=[monitored_by])[0][monitored_by] == proxy_row["proxyid"]
    # the exporter pushes to the proxy, not to the server
    sink = TrapperSink("127.0.0.1", proxy_port, load_catalog(), cluster, host_name="{cluster}-{node}",
                       spool_limit=10_000)
    sink.start()
    worker = TargetWorker(next(t for t in embedded_targets(c) if t.role == "controller"), builtin_rules(),
                          lambda w: None, sink.offer)
    itemid = api.item.get(host=host, filter={"key_": ABC}, output=["itemid"])[0]["itemid"]

    def history(value: str, since: int) -> list[dict]:
        return [h for h in api.history.get(itemids=[itemid], history=3, time_from=since, output="extend")
                if h["value"] == value]
    try:
        # the proxy refuses values of hosts it does not have yet: it fetches them from the server every 2 s
        provisioned = time.time()
        zbx.reload_config_cache()
        assert wait(lambda: int(api.proxy.get(filter=by_name, output=["lastaccess"])[0]["lastaccess"])
                    > provisioned + 3, 60)
        started = int(time.time())
        assert wait(lambda: (worker.collect_once(), history("3", started - 5))[1], 90), sink.last_error
        refused = sink.refused
        zbx.stop_server()
        c.kill("broker-2")
        c.run_for(12_000)
        worker.collect_once()
        outage_clock = int(time.time())
        # the proxy took the value while the server is down: nothing waits in the exporter's spool
        assert wait(lambda: sink.spooled == 0, 30), sink.last_error
        assert sink.refused == refused and sink.dropped == 0
        time.sleep(3)
        zbx.start_server()
        during = wait(lambda: history("2", outage_clock - 30), 90)
        assert during, "the value the proxy buffered never reached the server"
        assert int(during[0]["clock"]) <= outage_clock          # the clock of collection, not of delivery
    finally:
        sink.stop()
        if "zabbix_server" not in zbx.pids:
            zbx.start_server()
