"""Grafana dashboards built with grafana-foundation-sdk, on the catalog's Prometheus names.

Five dashboards (cluster overview, KRaft quorum, brokers, consumer groups, topics), each with a
Prometheus datasource variable and cluster/node variables (cluster/group for consumer groups). Queries name their series through catalog metric
ids ({m:<id>}) wherever the catalog has the metric, so a renamed metric changes the dashboards
with it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from exporter.catalog.model import Catalog

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'cluster=~"$cluster"'
NODE_SEL = 'cluster=~"$cluster",node=~"$node"'
GROUP_SEL = 'cluster=~"$cluster",consumergroup=~"$group"'
GROUPS_UID = "kafka-4x-consumer-groups"
HEADER_KEY = "__generated"


@dataclass(frozen=True)
class PanelSpec:
    title: str
    expr: str                 # PromQL with {m:<metric id>} and {sel}/{node_sel}
    kind: str = "timeseries"  # timeseries | stat
    unit: str = "short"
    legend: str = "{{node}}"
    may_be_empty: bool = False   # a series that exists only after its event (errors, elections)


DASHBOARDS: dict[str, tuple[str, list[tuple[str, list[PanelSpec]]]]] = {
    "kafka-4x-cluster": ("Kafka 4.x cluster overview", [
        ("Health", [
            PanelSpec("Active brokers", "max({m:active_broker_count}{{sel}})", "stat", legend=""),
            PanelSpec("Active controllers", "sum({m:active_controller_count}{{sel}})", "stat", legend=""),
            PanelSpec("Fenced brokers", "max({m:fenced_broker_count}{{sel}})", "stat", legend=""),
            PanelSpec("Offline partitions", "max({m:offline_partitions_count}{{sel}})", "stat", legend=""),
            PanelSpec("Under replicated partitions", "sum({m:under_replicated_partitions}{{sel}})", "stat", legend=""),
            PanelSpec("Partitions under min ISR", "sum({m:under_min_isr_partitions}{{sel}})", "stat", legend=""),
        ]),
        ("Throughput", [
            PanelSpec("Bytes in", 'sum by (node) (rate({m:bytes_in}{{node_sel},topic=""}[5m]))', unit="Bps"),
            PanelSpec("Bytes out", 'sum by (node) (rate({m:bytes_out}{{node_sel},topic=""}[5m]))', unit="Bps"),
            PanelSpec("Messages in", 'sum by (node) (rate({m:messages_in}{{node_sel},topic=""}[5m]))', unit="short"),
            PanelSpec("Failed produce requests", 'sum by (node) (rate({m:failed_produce}{{node_sel},topic=""}[5m]))',
                      unit="reqps"),
            PanelSpec("Produce NOT_ENOUGH_REPLICAS", "sum by (node) (rate({m:produce_not_enough_replicas}{{node_sel}}[5m]))",
                      unit="reqps", may_be_empty=True),
        ]),
    ]),
    "kafka-4x-kraft": ("Kafka 4.x KRaft quorum", [
        ("Quorum", [
            PanelSpec("Quorum leader seen by each node", "{m:raft_current_leader}{{node_sel}}"),
            PanelSpec("Quorum epoch", "{m:raft_current_epoch}{{node_sel}}"),
            PanelSpec("Raft state", "{m:raft_current_state}{{node_sel}}", legend="{{node}} {{current_state}}"),
            PanelSpec("Controller elections (5m)", "increase({m:new_active_controllers_count}{{node_sel}}[5m])"),
            PanelSpec("Election latency (max)", "{m:raft_election_latency_max}{{node_sel}}", unit="ms",
                      may_be_empty=True),
            PanelSpec("Commit latency (avg)", "{m:raft_commit_latency_avg}{{node_sel}}", unit="ms"),
            PanelSpec("Metadata high watermark", "{m:raft_high_watermark}{{node_sel}}"),
            PanelSpec("Controller metadata lag", "{m:last_applied_record_lag_ms}{{node_sel}}", unit="ms"),
            PanelSpec("Broker metadata lag", "{m:metadata_lag}{{node_sel}}", unit="ms"),
        ]),
    ]),
    "kafka-4x-brokers": ("Kafka 4.x brokers", [
        ("Requests", [
            PanelSpec("Produce request time p99", "{m:produce_total_time_p99}{{node_sel}}", unit="ms"),
            PanelSpec("Consumer fetch time p99", "{m:fetch_consumer_total_time_p99}{{node_sel}}", unit="ms"),
            PanelSpec("Network threads idle", "{m:network_processor_idle}{{node_sel}}", unit="percentunit"),
            PanelSpec("Request handlers idle", "{m:request_handler_idle}{{node_sel}}", unit="percentunit"),
            PanelSpec("Produce purgatory", "{m:produce_purgatory}{{node_sel}}"),
            PanelSpec("Fetch purgatory", "{m:fetch_purgatory}{{node_sel}}"),
        ]),
        ("Replication", [
            PanelSpec("ISR shrinks", "rate({m:isr_shrinks}{{node_sel}}[5m])", unit="short"),
            PanelSpec("ISR expands", "rate({m:isr_expands}{{node_sel}}[5m])", unit="short"),
            PanelSpec("Under replicated partitions", "{m:under_replicated_partitions}{{node_sel}}"),
            PanelSpec("Leaders", "{m:leader_count}{{node_sel}}"),
            PanelSpec("Replication max lag", "{m:replica_max_lag}{{node_sel}}"),
            PanelSpec("Broker state", "{m:broker_state}{{node_sel}}"),
        ]),
    ]),
    GROUPS_UID: ("Kafka 4.x consumer groups", [
        ("Groups", [
            PanelSpec("Status (0 ok, 1 lagging, 2 stalled, 3 stopped)", "{g:group_status}{{gsel}}",
                      legend="{{consumergroup}}"),
            PanelSpec("Members", "{g:group_members}{{gsel}}", legend="{{consumergroup}}"),
            PanelSpec("Groups by state", "count by (state) (kafka_consumergroup_info{{sel}})", legend="{{state}}"),
        ]),
        ("Lag", [
            PanelSpec("Lag by group and topic", "{g:group_lag}{{gsel}}", legend="{{consumergroup}} {{topic}}"),
            PanelSpec("Lag in seconds by group and topic", "{g:group_lag_seconds}{{gsel}}", unit="s",
                      legend="{{consumergroup}} {{topic}}"),
            PanelSpec("Consumed records/s", "sum by (consumergroup, topic) (rate({g:group_offset}{{gsel}}[5m]))",
                      legend="{{consumergroup}} {{topic}}"),
            PanelSpec("Produced records/s by topic", "sum by (topic) (rate(kafka_topic_partition_current_offset{{sel}}[5m]))",
                      legend="{{topic}}"),
            PanelSpec("Lag by partition", "kafka_consumergroup_lag{{gsel}}",
                      legend="{{consumergroup}} {{topic}}/{{partition}}"),
        ]),
    ]),
    "kafka-4x-topics": ("Kafka 4.x topics", [
        ("Topics", [
            PanelSpec("Bytes in by topic", 'sum by (topic) (rate({m:bytes_in}{{sel},topic!=""}[5m]))', unit="Bps",
                      legend="{{topic}}"),
            PanelSpec("Messages in by topic", 'sum by (topic) (rate({m:messages_in}{{sel},topic!=""}[5m]))',
                      legend="{{topic}}"),
            PanelSpec("Log size by topic", "sum by (topic) (kafka_log_log_size{{sel}})", unit="bytes",
                      legend="{{topic}}"),
        ]),
    ]),
}


def _expr(catalog: Catalog, template: str) -> str:
    def metric(m: re.Match[str]) -> str:
        name = catalog.metric(m.group(1)).prometheus
        if name is None:
            raise ValueError(f"dashboard query uses {m.group(1)}, which has no Prometheus name in the catalog")
        return name
    text = re.sub(r"\{m:(\w+)\}", metric, template)
    text = re.sub(r"\{g:(\w+)\}", lambda m: catalog.groups.item(m.group(1)).prometheus, text)
    selectors = {"sel": SEL, "node_sel": NODE_SEL, "gsel": GROUP_SEL}
    # a catalog name may carry its own labels: merge them with the selector that follows
    text = re.sub(r"\}\{\{(sel|node_sel|gsel)\}", lambda m: "," + selectors[m.group(1)], text)
    for name, selector in selectors.items():
        text = text.replace("{{" + name + "}", "{" + selector)
    return text


def queries(catalog: Catalog) -> list[tuple[str, str, PanelSpec]]:
    """(dashboard uid, expression, panel) for every panel query."""
    return [(uid, _expr(catalog, p.expr), p) for uid, (_, rows) in DASHBOARDS.items() for _, panels in rows
            for p in panels]


def render(catalog: Catalog) -> dict[str, dict[str, Any]]:
    out = {}
    for uid, (title, rows) in DASHBOARDS.items():
        dash = (Dashboard(title).uid(uid).tags(["kafka", "kafka-4x", "kraft"]).refresh("30s").time("now-1h", "now")
                .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
                .with_variable(QueryVariable("cluster").label("Cluster").datasource(DS)
                               .query(f"label_values({'kafkajmx_kafka_up' if uid == GROUPS_UID else 'kafkajmx_target_up'}, cluster)")
                               .include_all(True).multi(True))
                .with_variable(_group_variable() if uid == GROUPS_UID else _node_variable()))
        for row_title, panels in rows:
            dash = dash.with_row(Row(row_title))
            for p in panels:
                panel = (Stat() if p.kind == "stat" else Timeseries()).title(p.title).datasource(DS).unit(p.unit)
                panel = panel.with_target(Dataquery().expr(_expr(catalog, p.expr)).legend_format(p.legend or "__auto"))
                panel = panel.height(6).span(4 if p.kind == "stat" else 8)
                dash = dash.with_panel(panel)
        out[uid] = json.loads(json.dumps(dash.build(), cls=JSONEncoder))
        out[uid][HEADER_KEY] = "Generated from exporter/catalog/kafka-4x.yaml by `kafka-jmx generate`; do not edit by hand."
    return out


def _node_variable() -> QueryVariable:
    return (QueryVariable("node").label("Node").datasource(DS)
            .query('label_values(kafkajmx_target_up{cluster=~"$cluster"}, node)').include_all(True).multi(True))


def _group_variable() -> QueryVariable:
    return (QueryVariable("group").label("Consumer group").datasource(DS)
            .query('label_values(kafka_consumergroup_members{cluster=~"$cluster"}, consumergroup)')
            .include_all(True).multi(True))


def serialize(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"
