"""The Prometheus view of a lag collection: kafka_exporter's names and labels for what it has (its
community dashboards keep working), our own for lag in seconds, group type, state, assignment and
status.

Cardinality: any family can be switched off, per-partition series of groups can be turned off (the
group x topic sums stay), and a cap bounds the series of one collection; what the cap leaves out is
counted, never silently lost."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.lag.model import Snapshot
from exporter.lag.trends import Trends

FAMILIES = {
    # kafka_exporter's
    "kafka_brokers": ("Number of Brokers in the Kafka Cluster.", ()),
    "kafka_broker_info": ("Information about the Kafka Broker.", ("id", "address")),
    "kafka_consumergroup_current_offset": ("Current Offset of a ConsumerGroup at Topic/Partition", ("consumergroup", "topic", "partition")),
    "kafka_consumergroup_current_offset_sum": ("Current Offset of a ConsumerGroup at Topic for all partitions", ("consumergroup", "topic")),
    "kafka_consumergroup_lag": ("Current Approximate Lag of a ConsumerGroup at Topic/Partition", ("consumergroup", "topic", "partition")),
    "kafka_consumergroup_lag_sum": ("Current Approximate Lag of a ConsumerGroup at Topic for all partitions", ("consumergroup", "topic")),
    "kafka_consumergroup_members": ("Amount of members in a consumer group", ("consumergroup",)),
    "kafka_topic_partitions": ("Number of partitions for this Topic", ("topic",)),
    "kafka_topic_partition_current_offset": ("Current Offset of a Broker at Topic/Partition", ("topic", "partition")),
    "kafka_topic_partition_oldest_offset": ("Oldest Offset of a Broker at Topic/Partition", ("topic", "partition")),
    "kafka_topic_partition_leader": ("Leader Broker ID of this Topic/Partition", ("topic", "partition")),
    "kafka_topic_partition_replicas": ("Number of Replicas for this Topic/Partition", ("topic", "partition")),
    "kafka_topic_partition_in_sync_replica": ("Number of In-Sync Replicas for this Topic/Partition", ("topic", "partition")),
    "kafka_topic_partition_leader_is_preferred": ("1 if Topic/Partition is using the Preferred Broker", ("topic", "partition")),
    "kafka_topic_partition_under_replicated_partition": ("1 if Topic/Partition is under Replicated", ("topic", "partition")),
    # ours
    "kafka_consumergroup_lag_seconds": ("How long ago the record at the group's committed offset was written (0 when caught up)", ("consumergroup", "topic", "partition")),
    "kafka_consumergroup_lag_seconds_max": ("The largest lag in seconds of the group's partitions of the topic", ("consumergroup", "topic")),
    "kafka_consumergroup_info": ("The group's type (classic, consumer: KIP-848, share: KIP-932, streams: KIP-1071) and state, as labels; value 1", ("consumergroup", "type", "state")),
    "kafka_consumergroup_assigned_partitions": ("Partitions of the topic the group's members own (a share group's: that at least one member reads; a streams group's: that its active tasks process); below kafka_topic_partitions, some are read by nobody", ("consumergroup", "topic")),
    "kafka_consumergroup_status": ("The group's status over the status window: 0 ok, 1 lagging and growing, 2 stalled (offsets not moving, lag > 0), 3 stopped (no members, lag > 0)", ("consumergroup",)),
    # ours, over the rate window (exporter/lag/trends.py)
    "kafka_consumergroup_consume_rate": ("Records per second the group's committed offsets of the topic moved over the rate window", ("consumergroup", "topic")),
    "kafka_consumergroup_produce_rate": ("Records per second written to the topic's partitions the group has offsets on, over the rate window", ("consumergroup", "topic")),
    "kafka_consumergroup_lag_trend": ("Records per second the group's lag on the topic grew over the rate window (negative: shrank)", ("consumergroup", "topic")),
    "kafka_consumergroup_catch_up_seconds": ("Seconds until the group's lag on the topic is 0 at the rates of the window (0 when caught up; no series while it does not gain)", ("consumergroup", "topic")),
    "kafka_consumergroup_retention_margin_records": ("Records retention deletes before the oldest record the group has not read (its closest lagging partition of the topic)", ("consumergroup", "topic")),
    "kafka_consumergroup_retention_margin_seconds": ("Seconds until retention may delete the oldest record the group has not read (its closest lagging partition of the topic)", ("consumergroup", "topic")),
}
# a counter: Prometheus names it with _total
LOST = ("kafka_consumergroup_retention_lost_records", "Records retention deleted before the group read them (its "
        "committed offset below the log start offset), counted since the exporter started or the group appeared",
        ("consumergroup", "topic"))
PER_PARTITION = {"kafka_consumergroup_current_offset", "kafka_consumergroup_lag", "kafka_consumergroup_lag_seconds"}


@dataclass
class Rendered:
    families: list[Metric]
    series: int
    dropped: int            # series the cap left out


def render(snap: Snapshot, verdicts: dict[str, int], cluster: str, partition_series: bool, max_series: int,
           disabled: frozenset[str] = frozenset(), trends: Trends | None = None) -> Rendered:
    fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        name: GaugeMetricFamily(name, doc, labels=["cluster", *labels]) for name, (doc, labels) in FAMILIES.items()
        if (partition_series or name not in PER_PARTITION) and name not in disabled}
    if LOST[0] not in disabled:
        fams[LOST[0]] = CounterMetricFamily(LOST[0], LOST[1], labels=["cluster", *LOST[2]])
    budget = [max_series, 0]        # left, dropped

    def add(name: str, labels: list[str], value: float) -> None:
        if name not in fams:
            return
        if budget[0] <= 0:
            budget[1] += 1
            return
        budget[0] -= 1
        fams[name].add_metric([cluster, *labels], value)

    partitions: list[tuple[str, list[tuple[tuple[str, int], int, int | None, float | None]]]] = []
    # the cluster's and the group-level and group x topic series first: a cap cuts partitions before sums
    if snap.brokers:
        add("kafka_brokers", [], float(len(snap.brokers)))
    for node, address in sorted(snap.brokers.items()):
        add("kafka_broker_info", [str(node), address], 1.0)
    for gid, g in sorted(snap.groups.items()):
        if g.members is not None:
            add("kafka_consumergroup_members", [gid], float(g.members))
        add("kafka_consumergroup_info", [gid, g.type, g.state], 1.0)
        add("kafka_consumergroup_status", [gid], float(verdicts.get(gid, 0)))
        for topic, n in sorted(g.assigned.items()):
            add("kafka_consumergroup_assigned_partitions", [gid, topic], float(n))
        rows = snap.rows(gid)
        partitions.append((gid, rows))
        by_topic: dict[str, list[tuple[int, int | None, float | None]]] = {}
        for (topic, _), offset, lag, lag_s in rows:
            by_topic.setdefault(topic, []).append((offset, lag, lag_s))
        for topic, of_topic in by_topic.items():
            add("kafka_consumergroup_current_offset_sum", [gid, topic], float(sum(o for o, _, _ in of_topic)))
            lags = [lag for _, lag, _ in of_topic if lag is not None]
            if lags:
                add("kafka_consumergroup_lag_sum", [gid, topic], float(sum(lags)))
            seconds = [s for _, _, s in of_topic if s is not None]
            if seconds:
                add("kafka_consumergroup_lag_seconds_max", [gid, topic], max(seconds))
    if trends is not None:
        for (gid, topic), trend in sorted(trends.by_group_topic.items()):
            for name, value in trend.series().items():
                if value is not None:
                    add(name, [gid, topic], float(value))
        for (gid, topic), lost in sorted(trends.lost.items()):
            add(LOST[0], [gid, topic], float(lost))
    for topic, n in sorted(snap.partitions.items()):
        add("kafka_topic_partitions", [topic], float(n))
    for (topic, p), end in sorted(snap.ends.items()):
        add("kafka_topic_partition_current_offset", [topic, str(p)], float(end))
        if (topic, p) in snap.starts:
            add("kafka_topic_partition_oldest_offset", [topic, str(p)], float(snap.starts[(topic, p)]))
    for (topic, p), layout in sorted(snap.layouts.items()):
        where = [topic, str(p)]
        if layout.leader >= 0:
            add("kafka_topic_partition_leader", where, float(layout.leader))
        add("kafka_topic_partition_replicas", where, float(len(layout.replicas)))
        add("kafka_topic_partition_in_sync_replica", where, float(len(layout.isr)))
        preferred = layout.leader >= 0 and layout.replicas[:1] == (layout.leader,)
        add("kafka_topic_partition_leader_is_preferred", where, 1.0 if preferred else 0.0)
        add("kafka_topic_partition_under_replicated_partition", where, 1.0 if len(layout.isr) < len(layout.replicas) else 0.0)
    offset_on, lag_on, seconds_on = ("kafka_consumergroup_current_offset" in fams, "kafka_consumergroup_lag" in fams,
                                     "kafka_consumergroup_lag_seconds" in fams)
    for gid, rows in partitions:
        for (topic, p), offset, lag, lag_s in rows:
            if budget[0] <= 0:      # the cap is reached: the rest is only counted (500,000 rows at 10,000 groups)
                budget[1] += offset_on + (lag_on and lag is not None) + (seconds_on and lag_s is not None)
                continue
            add("kafka_consumergroup_current_offset", [gid, topic, str(p)], float(offset))
            if lag is not None:
                add("kafka_consumergroup_lag", [gid, topic, str(p)], float(lag))
            if lag_s is not None:
                add("kafka_consumergroup_lag_seconds", [gid, topic, str(p)], lag_s)
    return Rendered(list(fams.values()), max_series - budget[0], budget[1])
