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


def test_a_group_back_from_a_stop_is_not_stalled_before_it_had_a_window_to_commit():
    tracker = StatusTracker(60)
    stopped = [(t, {("orders", 0): 100}, {("orders", 0): 100 + t}, 0) for t in range(0, 100, 10)]
    back = [(t, {("orders", 0): 100}, {("orders", 0): 100 + t}, 1) for t in range(100, 160, 10)]
    assert run(tracker, stopped)[-1] == STOPPED
    assert set(run(tracker, back)) == {OK}                # offsets unmoved for 150 s, but members only 50 s
    assert run(tracker, [(170, {("orders", 0): 100}, {("orders", 0): 270}, 1)]) == [STALLED]


def test_a_group_without_members_and_with_lag_is_stopped_at_once_and_ok_once_caught_up():
    tracker = StatusTracker(60)
    assert run(tracker, [(0, {("orders", 0): 5}, {("orders", 0): 9}, 0)]) == [STOPPED]
    assert run(tracker, [(10, {("orders", 0): 9}, {("orders", 0): 9}, 0)]) == [OK]


def test_a_group_its_coordinator_could_not_describe_is_not_called_stopped():
    tracker = StatusTracker(60)
    unknown = Snapshot(0.0, {"billing": Group("billing", "classic", "Unknown", None, {("orders", 0): 5})},
                       {"orders": 1}, {("orders", 0): 9})
    assert tracker.update(unknown) == {"billing": OK}
    assert "kafka_consumergroup_members" not in {f.name for f in render(unknown, {}, "prod", True, 100).families
                                                 if f.samples}


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
    s.groups["billing"].assigned["orders"] = 1          # its one member owns one partition of two
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
    assert out["kafka_consumergroup_assigned_partitions"] == [({"consumergroup": "billing", "topic": "orders"}, 1.0)]


def test_kafka_exporters_cluster_series_follow_its_rules_and_each_family_can_be_switched_off():
    from exporter.lag.model import Layout
    s = snap(1.0, {}, {("orders", p): 0 for p in range(3)})
    s.brokers = {2: "b2:9092", 1: "b1:9092"}
    s.layouts = {("orders", 0): Layout(1, (1, 2), (1, 2)),      # on its preferred leader
                 ("orders", 1): Layout(1, (2, 1), (1,)),        # moved off the preferred one, which fell out of the ISR
                 ("orders", 2): Layout(-1, (2,), (2,))}         # no leader: no leader series, not preferred
    out = families(render(s, {}, "prod", True, 1000))
    assert out["kafka_brokers"] == [({}, 2.0)]
    assert out["kafka_broker_info"] == [({"id": "1", "address": "b1:9092"}, 1.0), ({"id": "2", "address": "b2:9092"}, 1.0)]
    at = [{"topic": "orders", "partition": str(p)} for p in range(3)]
    assert out["kafka_topic_partition_leader"] == [(at[0], 1.0), (at[1], 1.0)]
    assert out["kafka_topic_partition_replicas"] == [(at[0], 2.0), (at[1], 2.0), (at[2], 1.0)]
    assert out["kafka_topic_partition_in_sync_replica"] == [(at[0], 2.0), (at[1], 1.0), (at[2], 1.0)]
    assert out["kafka_topic_partition_leader_is_preferred"] == [(at[0], 1.0), (at[1], 0.0), (at[2], 0.0)]
    assert out["kafka_topic_partition_under_replicated_partition"] == [(at[0], 0.0), (at[1], 1.0), (at[2], 0.0)]
    off = families(render(s, {}, "prod", True, 1000, frozenset({"kafka_broker_info", "kafka_topic_partition_leader"})))
    assert "kafka_broker_info" not in off and "kafka_topic_partition_leader" not in off and off["kafka_brokers"]
    config = load_config("kafka: {bootstrap_servers: 'b1:9092', disable: [kafka_broker_info]}\n")
    assert config.kafka.disabled == {"kafka_broker_info"}
    with pytest.raises(ConfigError) as e:
        load_config("kafka: {bootstrap_servers: 'b1:9092', disable: [kafka_broker_infos]}\n")
    assert "kafka.disable[0]: no metric family 'kafka_broker_infos' here (did you mean kafka_broker_info?)" in str(e.value)


def test_the_cap_cuts_partition_series_before_sums_and_counts_what_it_dropped():
    ends = {("orders", p): 100 for p in range(50)}
    s = snap(1.0, {tp: 90 for tp in ends}, ends)
    full = render(s, {}, "prod", True, 100_000)
    capped = render(s, {}, "prod", True, 20)
    assert capped.series == 20 and capped.dropped == full.series - 20
    s.commit_times.update({("billing", tp): 0.5 for tp in ends})
    off = frozenset({"kafka_consumergroup_lag"})        # a family switched off is not counted as cut either
    assert render(s, {}, "prod", True, 20, off).dropped == render(s, {}, "prod", True, 100_000, off).series - 20
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


def test_the_timeline_stops_slows_and_resumes_a_consumer_group():
    """stop_consumer, slow_consumer and resume_consumer on the virtual clock: the group goes Empty and
    its lag grows, a slow group falls behind, a resumed group catches up."""
    from broker.scenario import load_scenario
    from broker.simulation import Simulation
    sim = Simulation(load_scenario("""
cluster: {brokers: 3, controllers: 1}
config: {offsets.topic.num.partitions: 3, group.initial.rebalance.delay.ms: 0}
topics: [{name: orders, partitions: 3, replication_factor: 3, min_insync_replicas: 2}]
workload:
  - {producer: p, topic: orders, rate: 200, keys: 12, batch_interval: 500ms}
  - {consumer_group: billing, topic: orders, members: 2}
timeline:
  - {at: 30s, stop_consumer: billing}
  - {at: 60s, resume_consumer: billing}
  - {at: 90s, slow_consumer: billing, processing_ms: 20}
  - {at: 150s, resume_consumer: billing}
  - {at: 200s, slow_consumer: billing, processing_ms: 600000}
  - {at: 260s, resume_consumer: billing}
run_for: 320s
""", "s.yaml"))
    sim.start()
    c = sim.cluster

    def lag() -> int:
        coordinator = next(b.coordinator for b in c.brokers.values() if b.coordinator.owns("billing") == "NONE")
        offsets = coordinator.groups["billing"].offsets
        ends = {tp: p.high_watermark for b in c.brokers.values() for tp, p in b.replica_manager.partitions.items()
                if p.is_leader and tp.topic == "orders"}
        return sum(end - offsets.get(tp, 0) for tp, end in ends.items())

    def committed() -> dict:
        return next(dict(b.coordinator.groups["billing"].offsets) for b in c.brokers.values()
                    if b.coordinator.owns("billing") == "NONE")

    def state() -> str:
        return next(b.coordinator.groups["billing"].state for b in c.brokers.values()
                    if b.coordinator.owns("billing") == "NONE")
    sim.run(until_ms=29_000)
    assert state() == "Stable" and lag() < 1_500        # at most one auto-commit interval (5 s) behind
    sim.run(until_ms=59_000)
    assert state() == "Empty" and lag() > 4_000            # 29 s of 200 records/s, nobody consuming
    sim.run(until_ms=89_000)
    assert state() == "Stable" and lag() < 1_500        # at most one auto-commit interval (5 s) behind
    sim.run(until_ms=149_000)
    assert lag() > 3_000                                   # 20 ms a record: 50 records/s of 200
    sim.run(until_ms=199_000)
    assert lag() < 1_500
    sim.run(until_ms=215_000)
    stuck = committed()
    sim.run(until_ms=259_000)
    assert committed() == stuck and state() == "Stable"    # a member stuck on a record: offsets stop, it stays
    sim.run(until_ms=320_000)
    assert lag() < 1_500                                   # the resumed member finished that record at once
    assert any("stop_consumer billing (2 members leave)" in e for _, e in sim.events)


def test_consumer_actions_need_a_group_of_the_workload():
    from broker.scenario import load_scenario
    with pytest.raises(ConfigError) as e:
        load_scenario("topics: [{name: t}]\nworkload: [{consumer_group: g, topic: t}]\n"
                      "timeline:\n  - {at: 1s, stop_consumer: nobody}\n  - {at: 2s, slow_consumer: g}\n", "s.yaml")
    assert "timeline[0].stop_consumer: stop_consumer needs a consumer group of the workload, got 'nobody' (groups: g)" \
        in str(e.value)
    assert "slow_consumer needs processing_ms" in str(e.value)


# -- through the Kafka protocol, against the embedded cluster on the wall clock -------------------------------
@pytest.fixture(scope="module")
def wire():
    from conftest import wall_clock_cluster
    from jvm_support import free_port_block

    from broker.wire.listener import start_listeners
    config = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000,
              "offsets.topic.replication.factor": 3, "replica.lag.time.max.ms": 2000}
    with wall_clock_cluster(3, 1, 7, config, ("orders", 3, 3, 2)) as cluster:
        port = free_port_block(3, low=20000)
        listeners = start_listeners(cluster, port)
        yield cluster, ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        for listener in listeners:
            listener.stop()


def produce(bootstrap: str, topic: str, n: int, partitions: int = 3) -> list[float]:
    """n records round-robin over the partitions, one flush each (their write times, epoch s, in order)."""
    import time

    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    times = []
    for i in range(n):
        times.append(time.time())
        p.produce(topic, value=str(i).encode(), partition=i % partitions)
        assert p.flush(10) == 0
    return times


@pytest.mark.slow
def test_an_empty_group_reports_its_lag_in_records_and_seconds_and_is_stopped(wire, caplog):
    import time

    from confluent_kafka import Consumer, TopicPartition

    from exporter.lag.isolated import IsolatedReader
    from exporter.lag.reader import Filter
    from exporter.lag.worker import LagWorker
    _cluster, bootstrap = wire
    times = produce(bootstrap, "orders", 30)
    time.sleep(1.0)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("orders", p, 4) for p in range(3)], asynchronous=False)   # 6 of 10 left each
    c.close()
    reader = IsolatedReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 10.0, True,
                            deadline_s=60.0)
    worker = LagWorker(reader, "test", 30.0, 60.0)
    try:
        worker.collect_once()
        assert worker.up and worker.partitions_unread == 0
        # nothing to complain about: the embedded brokers do not offer share groups, which is no error
        assert [r.getMessage() for r in caplog.records if r.name == "kafka_jmx.lag"] == []
        snap_families = {f.name: f for f in worker.rendered.families}
        lag = {s.labels["partition"]: s.value for s in snap_families["kafka_consumergroup_lag"].samples
               if s.labels["consumergroup"] == "billing"}
        assert lag == {"0": 6.0, "1": 6.0, "2": 6.0}
        [members] = [s.value for s in snap_families["kafka_consumergroup_members"].samples
                     if s.labels["consumergroup"] == "billing"]
        [status] = [s.value for s in snap_families["kafka_consumergroup_status"].samples
                    if s.labels["consumergroup"] == "billing"]
        assert (members, status) == (0.0, float(STOPPED))
        # the record at offset 4 of partition 0 was the 13th written (round-robin): its age
        seconds = {s.labels["partition"]: s.value for s in snap_families["kafka_consumergroup_lag_seconds"].samples
                   if s.labels["consumergroup"] == "billing"}
        expected = time.time() - times[12]
        assert abs(seconds["0"] - expected) < 2.0, (seconds, expected)
        assert seconds["0"] > seconds["1"] > seconds["2"]      # 13th, 14th, 15th record: younger and younger
        ends = {s.labels["partition"]: s.value for s in snap_families["kafka_topic_partition_current_offset"].samples
                if s.labels["topic"] == "orders"}
        assert ends == {"0": 10.0, "1": 10.0, "2": 10.0}
        assert not any(s.labels["topic"].startswith("__") for s in snap_families["kafka_topic_partitions"].samples)
    finally:
        worker.join(1.0)


@pytest.mark.slow
def test_a_group_of_the_new_protocol_is_reported_with_its_type_state_and_members(wire):
    """Two librdkafka members with group.protocol=consumer (KIP-848) against the embedded coordinator: the lag
    collector names the group's type and state and counts both members and their partitions (peers report
    such groups with no members)."""
    from confluent_kafka import Consumer
    from conftest import wait

    from exporter.lag.isolated import IsolatedReader
    from exporter.lag.reader import Filter
    from exporter.lag.worker import LagWorker
    _cluster, bootstrap = wire
    members = [Consumer({"bootstrap.servers": bootstrap, "group.id": "new-protocol", "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "auto.commit.interval.ms": 200}) for _ in range(2)]
    for c in members:
        c.subscribe(["orders"])
    reader = IsolatedReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 5.0, True,
                            deadline_s=60.0)
    worker = LagWorker(reader, "test", 30.0, 60.0)

    def series(name: str) -> list:
        return [s for f in worker.rendered.families if f.name == name for s in f.samples
                if s.labels["consumergroup"] == "new-protocol"]

    def both_members() -> bool:
        for c in members:
            c.poll(0.2)
        worker.collect_once()
        return worker.up and [s.value for s in series("kafka_consumergroup_members")] == [2.0] and \
            [s.labels["state"] for s in series("kafka_consumergroup_info")] == ["Stable"]
    try:
        assert wait(both_members, 60, step=0.1)
        assert [s.labels["type"] for s in series("kafka_consumergroup_info")] == ["consumer"]
        assert [(s.labels["topic"], s.value) for s in series("kafka_consumergroup_assigned_partitions")] \
            == [("orders", 3.0)]
    finally:
        for c in members:
            c.close()
        worker.join(1.0)


@pytest.mark.slow
def test_a_live_group_and_a_partition_whose_leader_is_down(wire, caplog):
    import logging

    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    from conftest import wait

    from exporter.lag.isolated import IsolatedReader
    from exporter.lag.reader import Filter
    from exporter.lag.worker import LagWorker
    cluster, bootstrap = wire
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("fragile", 1, 1)])["fragile"].result(timeout=30)
    produce(bootstrap, "fragile", 3, partitions=1)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "live", "auto.offset.reset": "earliest",
                  "enable.auto.commit": True, "auto.commit.interval.ms": 200, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500})
    c.subscribe(["orders"])
    reader = IsolatedReader({"bootstrap.servers": bootstrap}, Filter(), Filter(deny="^__.*"), 5.0, True,
                            deadline_s=60.0)
    worker = LagWorker(reader, "test", 30.0, 60.0)

    def described() -> bool:
        c.poll(0.2)
        worker.collect_once()
        return worker.up and any(s.labels["consumergroup"] == "live" and s.labels["state"] == "Stable"
                                 for f in worker.rendered.families if f.name == "kafka_consumergroup_info"
                                 for s in f.samples)
    leader = None
    try:
        assert wait(described, 60, step=0.1)
        info = [s.labels for f in worker.rendered.families if f.name == "kafka_consumergroup_info" for s in f.samples
                if s.labels["consumergroup"] == "live"]
        assert info == [{"cluster": "test", "consumergroup": "live", "type": "classic", "state": "Stable"}]
        assert [s.value for f in worker.rendered.families if f.name == "kafka_consumergroup_members" for s in f.samples
                if s.labels["consumergroup"] == "live"] == [1.0]
        # its one member owns the topic's three partitions
        assert [(s.labels["topic"], s.value) for f in worker.rendered.families
                if f.name == "kafka_consumergroup_assigned_partitions" for s in f.samples
                if s.labels["consumergroup"] == "live"] == [("orders", 3.0)]
        with cluster.sched.lock:
            leader = cluster.active_controller().image.partition("fragile", 0).leader
            cluster.kill(f"broker-{leader}")
        # once the cluster has moved what it can, only the partition without a replica left is unread, and
        # everything else (the live group, the other topic's offsets) is still collected
        def settled() -> bool:
            c.poll(0.2)         # the member keeps polling (and rejoins when its coordinator moved)
            worker.collect_once()
            return worker.up and worker.partitions_unread == 1 and any(
                f.name == "kafka_consumergroup_info" and any(s.labels["consumergroup"] == "live" for s in f.samples)
                for f in worker.rendered.families) and len([
                    s for f in worker.rendered.families if f.name == "kafka_topic_partition_current_offset"
                    for s in f.samples if s.labels["topic"] == "orders"]) == 3
        assert wait(settled, 30, step=1.0), worker.last_problem
        # kafka_exporter's cluster series: the dead broker is gone from the metadata, the partition it alone
        # held has no leader (its ISR keeps the last member, as KRaft does), and the topic it shared with the
        # others lost it from the ISR of every partition
        got = {f.name: {(s.labels.get("topic"), s.labels.get("partition"), s.labels.get("id")): s.value
                        for s in f.samples} for f in worker.rendered.families}
        assert got["kafka_brokers"] == {(None, None, None): 2.0}
        assert leader is not None and str(leader) not in {i for _, _, i in got["kafka_broker_info"]}
        assert ("fragile", "0", None) not in got["kafka_topic_partition_leader"]
        assert got["kafka_topic_partition_leader_is_preferred"][("fragile", "0", None)] == 0.0
        assert got["kafka_topic_partition_under_replicated_partition"][("fragile", "0", None)] == 0.0
        orders = [("orders", str(p), None) for p in range(3)]
        assert [got["kafka_topic_partition_replicas"][k] for k in orders] == [3.0, 3.0, 3.0]
        assert [got["kafka_topic_partition_in_sync_replica"][k] for k in orders] == [2.0, 2.0, 2.0]
        assert [got["kafka_topic_partition_under_replicated_partition"][k] for k in orders] == [1.0, 1.0, 1.0]
        assert leader not in [got["kafka_topic_partition_leader"][k] for k in orders]
        # librdkafka aborting its process (issue #4605) ends the reader's child only: the next collection
        # says so and runs in a new child
        import os
        import signal
        first = reader.pid
        assert first is not None
        os.kill(first, signal.SIGABRT)
        assert wait(lambda: reader.pid is None, 10)
        with caplog.at_level(logging.WARNING, logger="kafka_jmx.lag"):
            worker.collect_once()
        assert worker.up and reader.pid not in (None, first)
        assert any("the Kafka client's process ended (exit -6" in r.getMessage() for r in caplog.records)
    finally:
        c.close()
        worker.join(1.0)
        if leader is not None:
            with cluster.sched.lock:
                cluster.restart(f"broker-{leader}")


@pytest.mark.slow
def test_serve_with_only_the_kafka_section_serves_lag_alone(wire, tmp_path):
    import requests
    from confluent_kafka import Consumer, TopicPartition
    from conftest import wait
    from jvm_support import free_port_block

    from exporter.config import load_config_file
    from exporter.daemon import Daemon
    _cluster, bootstrap = wire
    produce(bootstrap, "orders", 6)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "served", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("orders", p, 0) for p in range(3)], asynchronous=False)
    c.close()
    port = free_port_block(1, low=20000)
    config = tmp_path / "exporter.yml"
    config.write_text(f"cluster: lagonly\nprometheus: {{listen: '127.0.0.1:{port}'}}\n"
                      f"kafka: {{bootstrap_servers: '{bootstrap}', interval: 2s, groups: {{allow: 'served'}}}}\n")
    daemon = Daemon.from_config(load_config_file(str(config)))
    daemon.start()
    try:
        def lag_lines() -> list[str]:
            body = requests.get(daemon.url, timeout=5).text
            return [line for line in body.splitlines() if line.startswith("kafka_consumergroup_lag_sum{")]
        lines = wait(lag_lines, 30)
        assert lines and 'consumergroup="served"' in lines[0] and 'cluster="lagonly"' in lines[0]
        body = requests.get(daemon.url, timeout=5).text
        assert "kafkajmx_kafka_up{cluster=\"lagonly\"} 1.0" in body
        assert not [line for line in body.splitlines() if line.startswith("kafkajmx_target_up{")]    # no JMX targets
        assert not [line for line in body.splitlines() if line.startswith("kafka_consumergroup_members{")
                    and 'consumergroup="billing"' in line]          # the allow list holds
    finally:
        daemon.stop()


def test_the_zabbix_values_of_a_collection_name_each_group_and_pair_and_skip_what_is_unknown():
    from exporter.catalog.model import load_catalog
    from exporter.trapper import TrapperSink
    sink = TrapperSink("127.0.0.1", 1, load_catalog(), "prod", host_name="{cluster}-{node}", lld_settle_s=0.0)
    s = snap(50.0, {("orders", 0): 10, ("orders", 1): 20}, {("orders", 0): 15, ("orders", 1): 20})
    s.groups["billing"].assigned["orders"] = 2
    s.groups["unsure"] = Group("unsure", "share", "Unknown", None, {("orders", 0): 3}, {("orders", 0): 7})
    sink.offer_groups(s, {"billing": STALLED})
    values = {(v.host, v.key): v.value for v in sink.pending()}
    assert {h for h, _ in values} == {"prod-cluster"}
    assert values[("prod-cluster", 'kafka.group.lag["billing","orders"]')] == "5"
    assert values[("prod-cluster", 'kafka.group.assigned["billing","orders"]')] == "2"
    assert values[("prod-cluster", 'kafka.group.status["billing"]')] == "2"
    # a share group's lag is its coordinator's count; a group its coordinator could not describe has no
    # members value and no assignment, rather than a 0 that would read as "nobody reads"
    assert values[("prod-cluster", 'kafka.group.lag["unsure","orders"]')] == "7"
    assert values[("prod-cluster", 'kafka.group.type["unsure"]')] == "share"
    assert ("prod-cluster", 'kafka.group.members["unsure"]') not in values
    assert ("prod-cluster", 'kafka.group.assigned["unsure","orders"]') not in values


def test_the_zabbix_values_of_the_trends_go_to_their_pair():
    from exporter.catalog.model import load_catalog
    from exporter.lag.trends import TrendTracker
    from exporter.trapper import TrapperSink
    sink = TrapperSink("127.0.0.1", 1, load_catalog(), "prod", host_name="{cluster}-{node}", lld_settle_s=0.0)
    tracker = TrendTracker(60.0)
    tracker.update(snap(0.0, {("orders", 0): 0}, {("orders", 0): 100}))
    s = snap(10.0, {("orders", 0): 150}, {("orders", 0): 200})          # 15/s read of 10/s written: gaining
    sink.offer_groups(s, {}, tracker.update(s))
    values = {v.key: v.value for v in sink.pending()}
    pair = '["billing","orders"]'
    assert (values["kafka.group.consume_rate" + pair], values["kafka.group.produce_rate" + pair]) == ("15.0", "10.0")
    assert values["kafka.group.lag_trend" + pair] == "-5.0" and values["kafka.group.catch_up" + pair] == "10.0"
    assert values["kafka.group.retention_lost" + pair] == "0"
    assert "kafka.group.retention_margin" + pair not in values        # the topic's retention was not read


def test_share_and_streams_groups_unreachable_are_an_error_named_and_nothing_else():
    from jvm_support import free_port_block

    from exporter.lag.connection import Connections
    from exporter.lag.coordinated import CoordinatedGroupReader
    from exporter.lag.filters import Filter
    port = free_port_block(1, low=20000)            # nothing listens there
    s = Snapshot(1.0)
    CoordinatedGroupReader(Connections({"bootstrap.servers": f"127.0.0.1:{port}"}, 1.0), Filter(), Filter()).read(s)
    assert s.groups == {}
    [error] = s.errors
    assert error.startswith("share and streams groups: no bootstrap server answered") and f"127.0.0.1:{port}: cannot connect" in error


@pytest.mark.slow
def test_groups_are_read_from_their_coordinators_many_per_request(wire, monkeypatch):
    """1,100 groups: librdkafka would send 1,100 OffsetFetch and 1,100 DescribeGroups; batched, each coordinator
    gets one of each per 500 groups, and every group's offsets and lag are read."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka import TopicPartition as CkTP
    from confluent_kafka.admin import AdminClient

    from exporter.lag import batched
    from exporter.lag.connection import BrokerConnection
    from exporter.lag.reader import Filter, KafkaReader
    _, bootstrap = wire
    produce(bootstrap, "orders", 6)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ids = [f"batch-{i:04d}" for i in range(1100)]
    for f in [admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            gid, [CkTP("orders", i % 3, i % 2)])])[gid] for i, gid in enumerate(ids)]:
        assert f.result(60).topic_partitions[0].error is None
    sent: dict[str, int] = {}
    call = BrokerConnection.call

    def counted(self, request):
        sent[type(request).__name__] = sent.get(type(request).__name__, 0) + 1
        return call(self, request)
    monkeypatch.setattr(BrokerConnection, "call", counted)
    reader = KafkaReader({"bootstrap.servers": bootstrap}, Filter(allow="batch-.*"), Filter(allow="orders"), 30.0,
                         lag_seconds=False)
    try:
        s = reader.read()
    finally:
        reader.close()
    assert s.errors == [] and sorted(s.groups) == ids
    for i, gid in enumerate(ids):
        tp = ("orders", i % 3)
        assert s.groups[gid].committed == {tp: i % 2} and s.groups[gid].state == "Empty"
        assert s.lag(gid, tp) == s.ends[tp] - i % 2 and s.ends[tp] >= 2
    # 3 brokers, each coordinating some of the groups, in batches of 500
    assert sent["FindCoordinatorRequest"] == 1
    assert sent["OffsetFetchRequest"] <= 3 * -(-len(ids) // batched.BATCH)
    assert sent["DescribeGroupsRequest"] == sent["OffsetFetchRequest"]
