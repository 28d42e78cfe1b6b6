"""Consumer groups and lag: the status verdicts and the Prometheus view on hand-made collections,
then the whole collection through the Kafka protocol against the embedded cluster (wall clock)."""
import pytest

from exporter.config import ConfigError, load_config
from exporter.lag.families import render
from exporter.lag.model import LAGGING, OK, STALLED, STOPPED, Group, Snapshot
from exporter.lag.status import StatusTracker


def snap(t: float, committed: dict, ends: dict, members: int = 1, group: str = "billing") -> Snapshot:
    return Snapshot(t, {group: Group(group, "classic", "Stable" if members else "Empty", members, dict(committed))},
                    {"orders": len(ends)}, dict(ends), {tp: 0 for tp in ends})


def run(tracker: StatusTracker, samples) -> list[int]:
    return [tracker.update(snap(t, c, e, m))["billing"] for t, c, e, m in samples]


def test_a_group_keeping_up_is_ok_even_with_lag_between_commits():
    verdicts = run(StatusTracker(60), [(t, {("orders", 0): 10 * t}, {("orders", 0): 10 * t + (t % 3)}, 1)
                                       for t in range(0, 200, 10)])
    assert set(verdicts) == {OK}


def test_offsets_that_stop_moving_with_lag_stall_after_a_whole_window():
    samples = [(t, {("orders", 0): 100}, {("orders", 0): 150 + t}, 1) for t in range(0, 130, 10)]
    verdicts = run(StatusTracker(60), samples)
    assert verdicts[:6] == [OK] * 6          # the window is not covered yet: no verdict before it is
    assert verdicts[-1] == STALLED


def test_lag_growing_at_every_collection_while_offsets_move_is_lagging():
    samples = [(t, {("orders", 0): t}, {("orders", 0): 3 * t + 1}, 1) for t in range(0, 130, 10)]
    assert run(StatusTracker(60), samples)[-1] == LAGGING


def test_a_group_without_members_and_with_lag_is_stopped_at_once_and_ok_once_caught_up():
    tracker = StatusTracker(60)
    assert run(tracker, [(0, {("orders", 0): 5}, {("orders", 0): 9}, 0)]) == [STOPPED]
    assert run(tracker, [(10, {("orders", 0): 9}, {("orders", 0): 9}, 0)]) == [OK]


def test_lag_is_never_negative_and_unknown_without_a_commit_or_an_end_offset():
    s = Snapshot(100.0, {"g": Group("g", "classic", "Stable", 1, {("t", 0): 12, ("t", 1): 5, ("t", 2): 7})},
                 {"t": 3}, {("t", 0): 10, ("t", 1): 9}, {}, {("g", ("t", 1)): 40.0})
    assert s.lag("g", ("t", 0)) == 0          # a commit read before an older end offset
    assert s.lag("g", ("t", 1)) == 4 and s.lag_seconds("g", ("t", 1)) == 60.0
    assert s.lag("g", ("t", 2)) is None       # its leader did not answer
    assert s.lag_seconds("g", ("t", 0)) == 0.0


def families(rendered) -> dict:
    """name -> [(labels without cluster, value)]; every series carries the cluster."""
    assert all(s.labels["cluster"] == "prod" for f in rendered.families for s in f.samples)
    return {f.name: [({k: v for k, v in s.labels.items() if k != "cluster"}, s.value) for s in f.samples]
            for f in rendered.families}


def test_the_series_carry_kafka_exporters_names_and_labels():
    s = snap(50.0, {("orders", 0): 10, ("orders", 1): 20}, {("orders", 0): 15, ("orders", 1): 20})
    s.commit_times[("billing", ("orders", 0))] = 20.0
    out = families(render(s, {"billing": STALLED}, "prod", True, 1000))
    assert out["kafka_consumergroup_lag"] == [({"consumergroup": "billing", "topic": "orders", "partition": "0"}, 5.0),
                                              ({"consumergroup": "billing", "topic": "orders", "partition": "1"}, 0.0)]
    assert out["kafka_consumergroup_lag_sum"] == [({"consumergroup": "billing", "topic": "orders"}, 5.0)]
    assert out["kafka_consumergroup_current_offset_sum"] == [({"consumergroup": "billing", "topic": "orders"}, 30.0)]
    assert out["kafka_consumergroup_members"] == [({"consumergroup": "billing"}, 1.0)]
    assert out["kafka_consumergroup_lag_seconds_max"] == [({"consumergroup": "billing", "topic": "orders"}, 30.0)]
    assert out["kafka_consumergroup_status"] == [({"consumergroup": "billing"}, 2.0)]
    assert out["kafka_topic_partitions"] == [({"topic": "orders"}, 2.0)]
    assert out["kafka_topic_partition_current_offset"][0] == ({"topic": "orders", "partition": "0"}, 15.0)
    assert out["kafka_consumergroup_info"] == [({"consumergroup": "billing", "type": "classic", "state": "Stable"}, 1.0)]


def test_the_cap_cuts_partition_series_before_sums_and_counts_what_it_dropped():
    ends = {("orders", p): 100 for p in range(50)}
    s = snap(1.0, {tp: 90 for tp in ends}, ends)
    full = render(s, {}, "prod", True, 100_000)
    capped = render(s, {}, "prod", True, 20)
    assert capped.series == 20 and capped.dropped == full.series - 20
    kept = families(capped)
    assert kept["kafka_consumergroup_lag_sum"] and kept["kafka_consumergroup_members"]
    assert not kept["kafka_consumergroup_lag"]
    sums_only = families(render(s, {}, "prod", False, 100_000))
    assert "kafka_consumergroup_lag" not in sums_only and sums_only["kafka_consumergroup_lag_sum"][0][1] == 500.0


def test_a_config_with_only_the_kafka_section_is_valid_and_its_mistakes_are_named(monkeypatch):
    monkeypatch.setenv("KAFKA_PW", "s3cret")
    config = load_config("kafka:\n  bootstrap_servers: 'b1:9092,b2:9092'\n"
                         "  sasl: {mechanism: SCRAM-SHA-512, username: monitor, password_env: KAFKA_PW}\n"
                         "  groups: {deny: '^console-consumer-.*'}\n  status_window: 5m\n")
    k = config.kafka
    assert not config.targets and k.client["security.protocol"] == "SASL_PLAINTEXT"
    assert k.client["sasl.password"] == "s3cret" and "s3cret" not in repr(k) and "s3cret" not in repr(config)
    assert (k.status_window_s, k.groups_deny, k.topics_deny) == (300.0, "^console-consumer-.*", "^__.*")
    with pytest.raises(ConfigError) as e:
        load_config("kafka:\n  bootstrap_servers: b1\n  tls: {cert: c.pem}\n  max_series: 0\n  topics: {allow: '('}\n")
    text = str(e.value)
    assert "kafka.bootstrap_servers: expected HOST:PORT" in text and "kafka.tls.cert: file c.pem not found" in text
    assert "kafka.max_series: expected a positive integer" in text and "kafka.topics.allow: not a regular expression" in text
