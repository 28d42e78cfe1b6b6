"""The OTLP export (exporter/otlp.py) as a receiver decodes it: a resource per node, gauges, monotonic
cumulative sums under the exposition's names, the JVM's summary, and a vanished series sent once as
NO_RECORDED_VALUE. On a real Prometheus 3 receiver: tests/test_promql_dropin.py."""
import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from exporter.config import OtlpSpec, load_config
from exporter.otlp import NO_RECORDED_VALUE, OtlpPusher, points, request
from kafka_common.yamlconf import ConfigError

EXPOSITION = '''\
# HELP kafka_server_replicamanager_partitioncount Attribute exposed for management
# TYPE kafka_server_replicamanager_partitioncount gauge
kafka_server_replicamanager_partitioncount{cluster="prod",node="broker-1",node_id="1",role="broker"} 12.0
kafka_server_replicamanager_partitioncount{cluster="prod",node="broker-2",node_id="2",role="broker"} 11.0
# HELP kafka_server_brokertopicmetrics_messagesin_total Messages in
# TYPE kafka_server_brokertopicmetrics_messagesin_total counter
kafka_server_brokertopicmetrics_messagesin_total{cluster="prod",node="broker-1",node_id="1",role="broker",topic="orders"} 500.0
# HELP jvm_gc_collection_seconds Time spent in a given JVM garbage collector in seconds.
# TYPE jvm_gc_collection_seconds summary
jvm_gc_collection_seconds_count{cluster="prod",gc="G1 Young Generation",node="broker-1",node_id="1",role="broker"} 7.0
jvm_gc_collection_seconds_sum{cluster="prod",gc="G1 Young Generation",node="broker-1",node_id="1",role="broker"} 0.25
# HELP kafka_consumergroup_lag Lag
# TYPE kafka_consumergroup_lag gauge
kafka_consumergroup_lag{cluster="prod",consumergroup="billing",partition="0",topic="orders"} 42.0
# HELP kafka_server_app_info_version An info: its \\\\ escaped
# TYPE kafka_server_app_info_version gauge
kafka_server_app_info_version{cluster="prod",node="broker-1",node_id="1",role="broker",version="a\\\\b\\"c\\nd"} 1.0
'''


def decode(req: ExportMetricsServiceRequest) -> dict:
    """{service.instance.id: {metric name: (kind, [(attributes, value or None when flagged, flags)])}}"""
    out: dict = {}
    for rm in req.resource_metrics:
        attrs = {a.key: a.value.string_value for a in rm.resource.attributes}
        metrics = out.setdefault(attrs["service.instance.id"], {"resource": attrs})
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind).data_points
                metrics[m.name] = (kind, [({a.key: a.value.string_value for a in p.attributes},
                                           (p.count, p.sum) if kind == "summary" else p.as_double, p.flags) for p in data])
                if kind == "sum":
                    assert m.sum.is_monotonic and m.sum.aggregation_temporality == 2     # cumulative
    return out


def test_each_node_is_a_resource_and_every_series_keeps_its_labels():
    got = decode(request(points(EXPOSITION), [], 2_000_000_000, 1_000_000_000, "1.0"))
    assert set(got) == {"prod/broker-1", "prod/broker-2", "prod"}
    assert got["prod/broker-1"]["resource"] == {"service.name": "kafka-jmx", "service.instance.id": "prod/broker-1",
                                                "cluster": "prod", "node": "broker-1", "node_id": "1", "role": "broker"}
    kind, [(labels, value, flags)] = got["prod/broker-1"]["kafka_server_brokertopicmetrics_messagesin_total"]
    assert (kind, value, flags) == ("sum", 500.0, 0)
    assert labels == {"cluster": "prod", "node": "broker-1", "node_id": "1", "role": "broker", "topic": "orders"}
    assert got["prod/broker-2"]["kafka_server_replicamanager_partitioncount"][0] == "gauge"
    kind, [(labels, value, _)] = got["prod/broker-1"]["jvm_gc_collection_seconds"]
    assert (kind, value, labels["gc"]) == ("summary", (7, 0.25), "G1 Young Generation")
    assert got["prod"]["kafka_consumergroup_lag"][1][0][1] == 42.0
    [(labels, _, _)] = got["prod/broker-1"]["kafka_server_app_info_version"][1]
    assert labels["version"] == 'a\\b"c\nd'          # the exposition's escapes undone


def test_a_vanished_series_is_sent_once_as_no_recorded_value():
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = gzip.decompress(self.rfile.read(int(self.headers["Content-Length"])))
            req = ExportMetricsServiceRequest()
            req.ParseFromString(body)
            received.append(decode(req))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exposition = [EXPOSITION.encode()]
    pusher = OtlpPusher(OtlpSpec(f"http://127.0.0.1:{server.server_port}/v1/metrics"), lambda: exposition[0])
    try:
        pusher.push()
        # broker-2 stops answering: its series leave the exposition
        exposition[0] = "\n".join(line for line in EXPOSITION.splitlines() if "broker-2" not in line).encode() + b"\n"
        pusher.push()
        pusher.push()
        pusher.close()          # the exporter stops: every series once more, as stale
    finally:
        server.shutdown()
        server.server_close()
    first, second, third, last = received
    assert {flags for node in last.values() for name, series in node.items() if name != "resource"
            for _, _, flags in series[1]} == {NO_RECORDED_VALUE}
    assert set(last) == {"prod/broker-1", "prod"}
    assert first["prod/broker-2"]["kafka_server_replicamanager_partitioncount"][1][0][2] == 0
    [(_, _, flags)] = second["prod/broker-2"]["kafka_server_replicamanager_partitioncount"][1]
    assert flags == NO_RECORDED_VALUE
    assert "prod/broker-2" not in third
    assert pusher.exports == 4 and pusher.failures == 0


def test_a_receiver_that_refuses_is_reported_and_the_next_export_carries_the_state(caplog):
    pusher = OtlpPusher(OtlpSpec("http://127.0.0.1:9/v1/metrics", timeout_s=1.0), lambda: EXPOSITION.encode())
    pusher.collect_once()
    assert pusher.failures == 1 and "OTLP export to http://127.0.0.1:9/v1/metrics failed" in (pusher.last_error or "")
    assert pusher.last == {}         # nothing counted as delivered: the next export sends every series


def test_the_otlp_section_is_read_and_bad_input_is_named():
    base = "cluster: c\ntargets: [{name: b1, role: broker, jmx: {url: 'service:jmx:rmi:///jndi/rmi://h:1/jmxrmi'}}]\n"
    config = load_config(base + "otlp: {endpoint: 'http://p:9090/api/v1/otlp/v1/metrics', interval: 15s, "
                                "headers: {Authorization: 'Bearer t0ken'}}\n", "x.yml")
    assert config.otlp == OtlpSpec("http://p:9090/api/v1/otlp/v1/metrics", 15.0, 10.0, (("Authorization", "Bearer t0ken"),))
    assert "t0ken" not in repr(config.otlp)
    with pytest.raises(ConfigError) as e:
        load_config(base + "otlp: {endpoint: 'p:9090', headers: [a], interval: -1s, push: true}\n", "x.yml")
    text = str(e.value)
    assert "otlp.endpoint" in text and "http://HOST:9090/api/v1/otlp/v1/metrics" in text
    assert "otlp.headers" in text and "otlp.interval" in text and "push" in text
