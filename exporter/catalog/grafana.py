"""Grafana dashboards built with grafana-foundation-sdk, on the catalog's Prometheus names.

Five dashboards (cluster overview, KRaft quorum, brokers with their JVMs, consumer groups, topics with
kafka_exporter's partition series), each with a Prometheus datasource variable and cluster/node
variables (cluster/group for consumer groups). Queries name their series through catalog metric
ids ({metric:<id>}) wherever the catalog has the metric, so a renamed metric changes the dashboards
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

from exporter.catalog import refs
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
    expr: str                 # PromQL with {metric:ID}, {group:ID} and {selector:cluster|node|group} (catalog refs)
    kind: str = "timeseries"  # timeseries | stat
    unit: str = "short"
    legend: str = "{{node}}"
    may_be_empty: bool = False   # a series that exists only after its event (errors, elections)
    needs: str = "jmx"           # what serves its series: jmx (the Kafka beans), jvm (a JVM target), kafka (the kafka: section)


DASHBOARDS: dict[str, tuple[str, list[tuple[str, list[PanelSpec]]]]] = {
    "kafka-4x-cluster": ("Kafka 4.x cluster overview", [
        ("Health", [
            PanelSpec("Active brokers", "max({metric:active_broker_count}{{selector:cluster}})", "stat", legend=""),
            PanelSpec("Active controllers", "sum({metric:active_controller_count}{{selector:cluster}})", "stat", legend=""),
            PanelSpec("Fenced brokers", "max({metric:fenced_broker_count}{{selector:cluster}})", "stat", legend=""),
            PanelSpec("Offline partitions", "max({metric:offline_partitions_count}{{selector:cluster}})", "stat", legend=""),
            PanelSpec("Under replicated partitions", "sum({metric:under_replicated_partitions}{{selector:cluster}})", "stat", legend=""),
            PanelSpec("Partitions under min ISR", "sum({metric:under_min_isr_partitions}{{selector:cluster}})", "stat", legend=""),
        ]),
        ("Throughput", [
            PanelSpec("Bytes in", 'sum by (node) (rate({metric:bytes_in}{{selector:node},topic=""}[5m]))', unit="Bps"),
            PanelSpec("Bytes out", 'sum by (node) (rate({metric:bytes_out}{{selector:node},topic=""}[5m]))', unit="Bps"),
            PanelSpec("Messages in", 'sum by (node) (rate({metric:messages_in}{{selector:node},topic=""}[5m]))', unit="short"),
            PanelSpec("Failed produce requests", 'sum by (node) (rate({metric:failed_produce}{{selector:node},topic=""}[5m]))',
                      unit="reqps"),
            PanelSpec("Produce NOT_ENOUGH_REPLICAS", "sum by (node) (rate({metric:produce_not_enough_replicas}{{selector:node}}[5m]))",
                      unit="reqps", may_be_empty=True),
        ]),
    ]),
    "kafka-4x-kraft": ("Kafka 4.x KRaft quorum", [
        ("Quorum", [
            PanelSpec("Quorum leader seen by each node", "{metric:raft_current_leader}{{selector:node}}"),
            PanelSpec("Quorum epoch", "{metric:raft_current_epoch}{{selector:node}}"),
            PanelSpec("Raft state", "{metric:raft_current_state}{{selector:node}}", legend="{{node}} {{current_state}}"),
            PanelSpec("Controller elections (5m)", "increase({metric:new_active_controllers_count}{{selector:node}}[5m])"),
            PanelSpec("Election latency (max)", "{metric:raft_election_latency_max}{{selector:node}}", unit="ms",
                      may_be_empty=True),
            PanelSpec("Commit latency (avg)", "{metric:raft_commit_latency_avg}{{selector:node}}", unit="ms"),
            PanelSpec("Metadata high watermark", "{metric:raft_high_watermark}{{selector:node}}"),
            PanelSpec("Controller metadata lag", "{metric:last_applied_record_lag_ms}{{selector:node}}", unit="ms"),
            PanelSpec("Broker metadata lag", "{metric:metadata_lag}{{selector:node}}", unit="ms"),
        ]),
    ]),
    "kafka-4x-brokers": ("Kafka 4.x brokers", [
        ("Requests", [
            PanelSpec("Produce request time p99", "{metric:produce_total_time_p99}{{selector:node}}", unit="ms"),
            PanelSpec("Consumer fetch time p99", "{metric:fetch_consumer_total_time_p99}{{selector:node}}", unit="ms"),
            PanelSpec("Network threads idle", "{metric:network_processor_idle}{{selector:node}}", unit="percentunit"),
            PanelSpec("Request handlers idle", "{metric:request_handler_idle}{{selector:node}}", unit="percentunit"),
            PanelSpec("Produce purgatory", "{metric:produce_purgatory}{{selector:node}}"),
            PanelSpec("Fetch purgatory", "{metric:fetch_purgatory}{{selector:node}}"),
        ]),
        ("Replication", [
            PanelSpec("ISR shrinks", "rate({metric:isr_shrinks}{{selector:node}}[5m])", unit="short"),
            PanelSpec("ISR expands", "rate({metric:isr_expands}{{selector:node}}[5m])", unit="short"),
            PanelSpec("Under replicated partitions", "{metric:under_replicated_partitions}{{selector:node}}"),
            PanelSpec("Leaders", "{metric:leader_count}{{selector:node}}"),
            PanelSpec("Replication max lag", "{metric:replica_max_lag}{{selector:node}}"),
            PanelSpec("Broker state", "{metric:broker_state}{{selector:node}}"),
        ]),
        ("JVM", [
            PanelSpec("Heap used of max", 'jvm_memory_used_bytes{{selector:node},area="heap"} / '
                      'jvm_memory_max_bytes{{selector:node},area="heap"}', unit="percentunit", needs="jvm"),
            PanelSpec("Time in garbage collection", "sum by (node) (rate(jvm_gc_collection_seconds_sum{{selector:node}}[5m]))",
                      unit="percentunit", needs="jvm"),
            PanelSpec("Collections/s", "sum by (node, gc) (rate(jvm_gc_collection_seconds_count{{selector:node}}[5m]))",
                      legend="{{node}} {{gc}}", needs="jvm"),
            PanelSpec("Threads", "jvm_threads_current{{selector:node}}", needs="jvm"),
            PanelSpec("Process CPU (cores)", "rate(process_cpu_seconds_total{{selector:node}}[5m])", needs="jvm"),
            PanelSpec("Open file descriptors of the limit", "process_open_fds{{selector:node}} / process_max_fds{{selector:node}}",
                      unit="percentunit", needs="jvm"),
        ]),
    ]),
    GROUPS_UID: ("Kafka 4.x consumer groups", [
        ("Groups", [
            PanelSpec("Status (0 ok, 1 lagging, 2 stalled, 3 stopped)", "{group:group_status}{{selector:group}}",
                      legend="{{consumergroup}}", needs="kafka"),
            PanelSpec("Members", "{group:group_members}{{selector:group}}", legend="{{consumergroup}}", needs="kafka"),
            PanelSpec("Groups by state", "count by (state) (kafka_consumergroup_info{{selector:cluster}})", legend="{{state}}", needs="kafka"),
        ]),
        ("Lag", [
            PanelSpec("Lag by group and topic", "{group:group_lag}{{selector:group}}", legend="{{consumergroup}} {{topic}}", needs="kafka"),
            PanelSpec("Lag in seconds by group and topic", "{group:group_lag_seconds}{{selector:group}}", unit="s",
                      legend="{{consumergroup}} {{topic}}", needs="kafka"),
            PanelSpec("Consumed records/s", "sum by (consumergroup, topic) (rate({group:group_offset}{{selector:group}}[5m]))",
                      legend="{{consumergroup}} {{topic}}", needs="kafka"),
            PanelSpec("Produced records/s by topic", "sum by (topic) (rate(kafka_topic_partition_current_offset{{selector:cluster}}[5m]))",
                      legend="{{topic}}", needs="kafka"),
            PanelSpec("Lag by partition", "kafka_consumergroup_lag{{selector:group}}",
                      legend="{{consumergroup}} {{topic}}/{{partition}}", needs="kafka"),
        ]),
        ("Catching up and retention", [
            PanelSpec("Lag trend (records/s; above 0: falling behind)", "{group:group_lag_trend}{{selector:group}}",
                      legend="{{consumergroup}} {{topic}}", needs="kafka"),
            # no series while a group does not gain on its topic, nor for a group without lag
            PanelSpec("Time to catch up", "{group:group_catch_up_seconds}{{selector:group}}", unit="s",
                      legend="{{consumergroup}} {{topic}}", may_be_empty=True, needs="kafka"),
            PanelSpec("Retention margin (until unread records may be deleted)",
                      "{group:group_retention_margin_seconds}{{selector:group}}", unit="s",
                      legend="{{consumergroup}} {{topic}}", may_be_empty=True, needs="kafka"),
            PanelSpec("Records lost to retention (1h)",
                      "increase({group:group_retention_lost}{{selector:group}}[1h])",
                      legend="{{consumergroup}} {{topic}}", needs="kafka"),
        ]),
    ]),
    "kafka-4x-topics": ("Kafka 4.x topics", [
        ("Topics", [
            PanelSpec("Bytes in by topic", 'sum by (topic) (rate({metric:bytes_in}{{selector:cluster},topic!=""}[5m]))', unit="Bps",
                      legend="{{topic}}"),
            PanelSpec("Messages in by topic", 'sum by (topic) (rate({metric:messages_in}{{selector:cluster},topic!=""}[5m]))',
                      legend="{{topic}}"),
            PanelSpec("Log size by topic", "sum by (topic) (kafka_log_log_size{{selector:cluster}})", unit="bytes",
                      legend="{{topic}}"),
        ]),
        ("Partitions (as the cluster's metadata says)", [
            PanelSpec("Brokers in the metadata", "max(kafka_brokers{{selector:cluster}})", "stat", legend="", needs="kafka"),
            PanelSpec("Under replicated partitions", "sum(kafka_topic_partition_under_replicated_partition{{selector:cluster}})",
                      "stat", legend="", needs="kafka"),
            PanelSpec("Partitions off their preferred leader",
                      "sum(1 - kafka_topic_partition_leader_is_preferred{{selector:cluster}})", "stat", legend="", needs="kafka"),
            PanelSpec("Partitions by topic", "sum by (topic) (kafka_topic_partitions{{selector:cluster}})", legend="{{topic}}",
                      needs="kafka"),
            PanelSpec("Under replicated partitions by topic",
                      "sum by (topic) (kafka_topic_partition_under_replicated_partition{{selector:cluster}})",
                      legend="{{topic}}", needs="kafka"),
            PanelSpec("Replicas out of sync by topic", "sum by (topic) (kafka_topic_partition_replicas{{selector:cluster}} - "
                      "kafka_topic_partition_in_sync_replica{{selector:cluster}})", legend="{{topic}}", needs="kafka"),
            PanelSpec("Partitions led by each broker", 'count_values("leader", kafka_topic_partition_leader{{selector:cluster}})',
                      legend="broker {{leader}}", needs="kafka"),
            PanelSpec("Records retained by topic", "sum by (topic) (kafka_topic_partition_current_offset{{selector:cluster}} - "
                      "kafka_topic_partition_oldest_offset{{selector:cluster}})", legend="{{topic}}", needs="kafka"),
            PanelSpec("Produced records/s by topic",
                      "sum by (topic) (rate(kafka_topic_partition_current_offset{{selector:cluster}}[5m]))",
                      legend="{{topic}}", needs="kafka"),
        ]),
    ]),
}


def _expr(catalog: Catalog, template: str) -> str:
    def metric(ref: str) -> str:
        name = catalog.metric(ref).prometheus
        if name is None:
            raise ValueError(f"dashboard query uses {ref}, which has no Prometheus name in the catalog")
        return name

    def group(ref: str) -> str:
        return catalog.groups.item(ref).prometheus

    selectors = {"cluster": SEL, "node": NODE_SEL, "group": GROUP_SEL}

    def series(m: re.Match[str]) -> str:
        # NAME{{selector:ID},...}: a catalog name may carry its own labels, merged with the selector's
        name = refs.resolve(m.group(1), metric=metric, group=group)
        return (name[:-1] + "," if name.endswith("}") else name + "{") + selectors[m.group(2)]
    text = re.sub(r"(\{(?:metric|group):\w+\})\{\{selector:(\w+)\}", series, template)
    return refs.resolve(text, metric=metric, group=group, selector=lambda ref: selectors[ref])


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
                               .query(_cluster_query(uid))
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


def _cluster_query(uid: str) -> str:
    """The clusters a dashboard offers: the lag collection's for the groups', either source's for the topics'."""
    if uid == GROUPS_UID:
        return "label_values(kafkajmx_kafka_up, cluster)"
    if uid == "kafka-4x-topics":
        return 'label_values({__name__=~"kafkajmx_target_up|kafkajmx_kafka_up"}, cluster)'
    return "label_values(kafkajmx_target_up, cluster)"


def _node_variable() -> QueryVariable:
    return (QueryVariable("node").label("Node").datasource(DS)
            .query('label_values(kafkajmx_target_up{cluster=~"$cluster"}, node)').include_all(True).multi(True))


def _group_variable() -> QueryVariable:
    return (QueryVariable("group").label("Consumer group").datasource(DS)
            .query('label_values(kafka_consumergroup_members{cluster=~"$cluster"}, consumergroup)')
            .include_all(True).multi(True))


def serialize(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"
