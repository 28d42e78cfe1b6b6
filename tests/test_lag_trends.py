"""The lag's trend over the rate window: consumption and production rates, the time to catch up, the retention
margin and the records lost to retention, from collections made by hand (exporter/lag/trends.py)."""
import pytest

from exporter.config import ConfigError, load_config
from exporter.lag.families import render
from exporter.lag.model import Group, Snapshot
from exporter.lag.trends import TrendTracker

TP0, TP1 = ("orders", 0), ("orders", 1)


def snap(t: float, committed: dict, ends: dict, starts: dict | None = None, members: int = 2,
         commit_times: dict | None = None, retention: dict | None = None) -> Snapshot:
    s = Snapshot(t)
    s.groups["billing"] = Group("billing", "classic", "Stable", members, dict(committed))
    s.ends, s.starts = dict(ends), dict(starts or {tp: 0 for tp in ends})
    s.commit_times = {("billing", tp): at for tp, at in (commit_times or {}).items()}
    s.retention = dict(retention or {})
    return s


def test_rates_and_the_time_to_catch_up_at_constant_rates():
    tracker = TrendTracker(window_s=60)
    # produced 100/s on each of two partitions, consumed 80/s each: the lag grows 40 records/s
    for t in range(0, 121, 10):
        trends = tracker.update(snap(t, {TP0: 80 * t, TP1: 80 * t}, {TP0: 1_000 + 100 * t, TP1: 1_000 + 100 * t}))
    trend = trends.by_group_topic[("billing", "orders")]
    assert trend.consume_rate == pytest.approx(160) and trend.produce_rate == pytest.approx(200)
    assert trend.lag_trend == pytest.approx(40) and trend.catch_up_seconds is None      # not gaining
    # it speeds up to 150/s a partition: it gains 100 records/s on a lag of 2 x (1,000 + 20 x 120)
    for t in range(130, 200, 10):
        trends = tracker.update(snap(t, {TP0: 9_600 + 150 * (t - 120), TP1: 9_600 + 150 * (t - 120)},
                                     {TP0: 1_000 + 100 * t, TP1: 1_000 + 100 * t}))
    trend = trends.by_group_topic[("billing", "orders")]
    assert trend.lag_trend == pytest.approx(-100)
    assert trend.catch_up_seconds == pytest.approx(trend.lag / 100)


def test_a_change_of_the_partitions_summed_starts_the_window_over():
    tracker = TrendTracker(window_s=60)
    tracker.update(snap(0, {TP0: 0}, {TP0: 100, TP1: 100}))
    trends = tracker.update(snap(10, {TP0: 100, TP1: 5_000}, {TP0: 200, TP1: 5_100}))   # TP1's first commit
    assert trends.by_group_topic[("billing", "orders")].consume_rate is None
    trends = tracker.update(snap(20, {TP0: 200, TP1: 5_100}, {TP0: 300, TP1: 5_200}))
    assert trends.by_group_topic[("billing", "orders")].consume_rate == pytest.approx(20)


def test_records_lost_to_retention_are_counted_once():
    tracker = TrendTracker(window_s=60)
    key = ("billing", "orders")
    assert tracker.update(snap(0, {TP0: 100}, {TP0: 500}, {TP0: 50})).lost[key] == 0    # there from the start
    assert tracker.update(snap(10, {TP0: 100}, {TP0: 600}, {TP0: 150})).lost[key] == 50
    assert tracker.update(snap(20, {TP0: 100}, {TP0: 700}, {TP0: 250})).lost[key] == 150
    # the group resets to the log start offset: nothing more is lost, the counter stays
    assert tracker.update(snap(30, {TP0: 250}, {TP0: 800}, {TP0: 250})).lost[key] == 150
    assert tracker.update(snap(40, {TP0: 300}, {TP0: 900}, {TP0: 280})).lost[key] == 150
    # a group deleted is forgotten: back, it counts from 0 (a counter reset to Prometheus)
    tracker.update(Snapshot(50))
    assert tracker.update(snap(60, {TP0: 300}, {TP0: 900}, {TP0: 350})).lost[key] == 50


def test_the_retention_margin_is_the_closer_of_time_and_size():
    tracker = TrendTracker(window_s=60)
    # retention.ms 1 h, the oldest unread record written 3,000 s before: 600 s left at most
    trends = tracker.update(snap(10_000, {TP0: 1_000}, {TP0: 5_000}, {TP0: 400},
                                 commit_times={TP0: 7_000}, retention={"orders": (3_600_000, -1)}))
    trend = trends.by_group_topic[("billing", "orders")]
    assert trend.margin_records == 600 and trend.margin_seconds == pytest.approx(600)
    # retention.bytes: written 10 records/s, read by nobody: the 300 records before the group's go in 30 s
    tracker = TrendTracker(window_s=60)
    size_only = {"orders": (-1, 2_097_152)}
    tracker.update(snap(10_000, {TP0: 1_000}, {TP0: 5_000}, {TP0: 400}, members=0, retention=size_only))
    trends = tracker.update(snap(10_030, {TP0: 1_000}, {TP0: 5_300}, {TP0: 700}, members=0, retention=size_only))
    assert trends.by_group_topic[("billing", "orders")].margin_seconds == pytest.approx(300 / 10)
    trends = tracker.update(snap(10_060, {TP0: 1_000}, {TP0: 5_600}, {TP0: 1_000}, members=0, retention=size_only))
    trend = trends.by_group_topic[("billing", "orders")]
    assert trend.margin_records == 0 and trend.margin_seconds == 0.0
    # without retention.bytes, deletion by size is no bound
    tracker = TrendTracker(window_s=60)
    tracker.update(snap(0, {TP0: 1_000}, {TP0: 5_000}, {TP0: 400}, members=0, retention={"orders": (-1, -1)}))
    trends = tracker.update(snap(30, {TP0: 1_000}, {TP0: 5_300}, {TP0: 700}, members=0, retention={"orders": (-1, -1)}))
    assert trends.by_group_topic[("billing", "orders")].margin_seconds is None
    # a group without lag has no margin
    caught_up = tracker.update(snap(60, {TP0: 6_000}, {TP0: 6_000}, {TP0: 1_500}))
    assert caught_up.by_group_topic[("billing", "orders")].margin_seconds is None


def test_the_trend_series_and_the_lost_records_counter_are_rendered():
    tracker = TrendTracker(window_s=60)
    tracker.update(snap(0, {TP0: 0}, {TP0: 1_000}, {TP0: 0}))
    s = snap(30, {TP0: 300}, {TP0: 4_000}, {TP0: 500})
    out = {}
    for family in render(s, {}, "prod", True, 1_000, trends=tracker.update(s)).families:
        for sample in family.samples:
            out[sample.name] = sample.value
    assert out["kafka_consumergroup_consume_rate"] == pytest.approx(10)
    assert out["kafka_consumergroup_produce_rate"] == pytest.approx(100)
    assert out["kafka_consumergroup_lag_trend"] == pytest.approx(90)
    assert out["kafka_consumergroup_retention_lost_records_total"] == 200
    assert "kafka_consumergroup_catch_up_seconds" not in out           # falling behind: no estimate


def test_the_rate_window_must_hold_three_collections():
    config = load_config("kafka:\n  bootstrap_servers: b1:9092\n  interval: 30s\n")
    assert config.kafka is not None and config.kafka.rate_window_s == 300.0
    with pytest.raises(ConfigError, match=r"kafka\.rate_window: a rate window of 40 s holds fewer than three "
                                          r"collections at the interval of 30 s: give at least 60 s"):
        load_config("kafka:\n  bootstrap_servers: b1:9092\n  interval: 30s\n  rate_window: 40s\n")


def test_the_catch_up_estimate_holds_on_the_simulated_cluster_at_constant_rates():
    """A group stopped for a minute resumes at twice the production rate: 20 s into its catch-up the estimate
    is within 20 % of the time it then takes (until its lag is two auto-commits worth of records)."""
    from broker.scenario import load_scenario
    from broker.simulation import Simulation
    sim = Simulation(load_scenario("""
cluster: {brokers: 3, controllers: 1}
config: {offsets.topic.num.partitions: 3, group.initial.rebalance.delay.ms: 0}
topics: [{name: orders, partitions: 3, replication_factor: 3, min_insync_replicas: 2}]
workload:
  - {producer: p, topic: orders, rate: 100, keys: 12}
  - {consumer_group: billing, topic: orders, members: 1, processing_ms: 5, config: {auto.commit.interval.ms: 200}}
timeline:
  - {at: 30s, stop_consumer: billing}
  - {at: 90s, resume_consumer: billing}
run_for: 300s
""", "s.yaml"))
    sim.start()
    c = sim.cluster
    tracker = TrendTracker(window_s=10)

    def collect() -> Snapshot:
        owner = next(b for b in c.brokers.values() if b.alive and b.coordinator.owns("billing") == "NONE")
        committed = {(tp.topic, tp.partition): o for tp, o in owner.coordinator.groups["billing"].offsets.items()}
        leaders = [p for b in c.brokers.values() if b.alive for p in b.partitions.values()
                   if p.is_leader and p.tp.topic == "orders"]
        s = Snapshot(c.now_ms() / 1000.0, {"billing": Group("billing", "classic", "Stable", 1, committed)},
                     {"orders": 3}, {(p.tp.topic, p.tp.partition): p.high_watermark for p in leaders},
                     {(p.tp.topic, p.tp.partition): p.log.start_offset for p in leaders})
        return s

    estimate = None
    for t in range(92, 300, 2):
        sim.run(until_ms=t * 1_000)
        trend = tracker.update(collect()).by_group_topic[("billing", "orders")]
        if t == 110:
            assert trend.lag > 2_000
            estimate = trend.catch_up_seconds
        if estimate is not None and trend.lag <= 40:
            measured = t - 110
            break
    else:
        raise AssertionError("the group did not catch up")
    assert estimate is not None and abs(estimate - measured) <= 0.2 * measured, (estimate, measured)
