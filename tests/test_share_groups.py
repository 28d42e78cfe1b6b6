"""Share groups (KIP-932) on the embedded cluster, on the virtual clock: the simple assignor shares partitions among
members, the leaders hand each record to one member under an acquisition lock, acknowledgements move the start
offset, a lock that runs out or a member that leaves makes its records available again (archived at the delivery
limit), and the state survives a new leader and a new share coordinator."""
from conftest import make_cluster

from broker.protocol import (
    FindCoordinatorRequest,
    JoinGroupRequest,
    ShareGroupHeartbeatRequest,
    ShareGroupOffsetsRequest,
)
from broker.share_coordinator import SHARE_STATE_TOPIC, state_partition
from broker.share_group import simple_assignment
from broker.share_partition import ACCEPT, RELEASE, SharePartition
from broker.structs import TopicPartition
from broker.wire.topic_ids import topic_id

SHARE = {"group.share.enable": True}


def ask(c, broker: str, request, timeout_ms: float = 5_000.0):
    """One request from a client node to broker, the cluster run until it answers."""
    box: list = []
    c._admin().request(broker, request, box.append, timeout_ms)
    assert c.run_until(lambda: box, timeout_ms + 1_000)
    return box[0]


def coordinator(c, group: str) -> str:
    """The group's coordinator (FindCoordinator has the offsets topic created first, as for a client)."""
    from broker.group import partition_for
    if not c.topic_exists("__consumer_offsets"):
        ask(c, "broker-1", FindCoordinatorRequest(group))
        assert c.run_until(lambda: c.topic_exists("__consumer_offsets"), 10_000)
        c.run_for(1_000)
    idx = partition_for(group, c.cfg["offsets.topic.num.partitions"])
    leader = c.active_controller().image.partition("__consumer_offsets", idx).leader
    return next(b.name for b in c.brokers.values() if b.node_id == leader)


def share_partitions(c, group: str) -> dict[TopicPartition, SharePartition]:
    return {tp: sp for b in c.brokers.values() if b.alive for (g, tp), sp in b.share_partitions.partitions.items()
            if g == group}


def produce(c, n: int, topic: str = "orders") -> None:
    p = c.producer(f"p{c.now_ms():.0f}", {"acks": "all"})
    for i in range(n):
        p.send(topic, i, key=str(i).encode())


def test_the_simple_assignor_balances_and_shares_partitions_when_members_outnumber_them():
    tps = {TopicPartition("orders", p) for p in range(3)}
    two = simple_assignment({"orders": 3}, {"a": ("orders",), "b": ("orders",)}, {})
    assert sorted(len(v) for v in two.values()) == [1, 2] and set().union(*two.values()) == tps
    # sticky: a third member takes one partition from the member that had two
    three = simple_assignment({"orders": 3}, {"a": ("orders",), "b": ("orders",), "c": ("orders",)}, two)
    assert all(len(v) == 1 for v in three.values()) and set().union(*three.values()) == tps
    assert all(three[m] <= two[m] for m in ("a", "b"))
    # more members than partitions: each partition goes to ceil(5 / 3) = 2 members
    five = simple_assignment({"orders": 3}, {m: ("orders",) for m in "abcde"}, three)
    holders = {tp: sum(tp in v for v in five.values()) for tp in tps}
    assert holders == {tp: 2 for tp in tps} and all(v for v in five.values())


def test_members_share_the_partitions_and_every_record_is_delivered_once():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),), config=SHARE)
    members = [c.share_consumer(f"s{i}", "jobs", ["orders"]) for i in (1, 2)]
    assert c.run_until(lambda: all(m.assignment for m in members) and len(share_partitions(c, "jobs")) == 3, 20_000)
    c.run_for(6_000)            # the first member hears of its smaller share on its next heartbeat
    assert sorted(len(m.assignment) for m in members) == [1, 2]
    members += [c.share_consumer(f"s{i}", "jobs", ["orders"]) for i in (3, 4)]
    c.run_for(10_000)
    # four members, three partitions: each partition shared by ceil(4 / 3) = 2 members, 6 assignments in all
    assert sorted(len(m.assignment) for m in members) == [1, 1, 2, 2]
    assert sorted(sum(tp in m.assignment for m in members) for tp in {tp for m in members for tp in m.assignment}) \
        == [2, 2, 2]
    produce(c, 600)
    c.run_for(20_000)
    assert sum(m.consumed for m in members) == sum(m.processed for m in members) == 600
    assert sum(m.redelivered for m in members) == 0
    ends = {tp: c.node(b.name).partitions[tp].high_watermark for b in c.brokers.values()
            for tp in b.partitions if tp.topic == "orders" and b.partitions[tp].is_leader}
    assert {tp: sp.start_offset for tp, sp in share_partitions(c, "jobs").items()} == ends
    group = c.node(coordinator(c, "jobs")).coordinator.groups["jobs"]
    state = group.share
    assert group.group_type == "share" and group.state == "Stable" and len(state.members) == 4
    assert {m.epoch for m in state.members.values()} == {state.assignment_epoch} == {state.group_epoch}
    # the coordinator's and the leaders' share metrics count the group, its rebalances and what was accepted
    gcm = "kafka.server:type=group-coordinator-metrics"
    assert sum(c.values(f"{gcm},protocol=share", "group-count").values()) == 1
    assert sum(c.values(f"{gcm},state=Stable", "share-group-count").values()) == 1
    assert sum(c.values(gcm, "share-group-rebalance-count").values()) == state.group_epoch
    accepted = "kafka.server:type=ShareGroupMetrics,name=RecordAcknowledgementsPerSec,ackType=Accept"
    assert sum(c.values(accepted, "Count").values()) == 600
    assert sum(c.values(accepted.replace("Accept", "Reject"), "Count").values()) == 0


def test_a_killed_members_records_come_back_after_the_lock_and_a_closed_ones_at_once():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 1, 3, 2),), config=SHARE)
    slow = c.share_consumer("slow", "jobs", ["orders"], processing_ms=60_000.0)
    fast = c.share_consumer("fast", "jobs", ["orders"])
    assert c.run_until(lambda: slow.assignment and fast.assignment and share_partitions(c, "jobs"), 20_000)
    produce(c, 100)
    assert c.run_until(lambda: slow.consumed > 0, 10_000)
    held = slow.consumed
    c.run_for(5_000)
    assert fast.processed == 100 - held                    # what the slow one holds is locked to it
    slow.kill()
    c.run_for(20_000)
    assert fast.processed == 100 - held                    # the lock (30 s) has not run out yet
    c.run_for(15_000)
    assert fast.processed == 100 and fast.redelivered == held
    timeouts = c.values("kafka.server:type=SharePartitionMetrics,name=AcquisitionLockTimeoutPerSec,group=jobs,"
                        "topic=orders,partition=0", "Count")
    assert list(timeouts.values()) == [held]
    # its share session goes once unused for a member's session timeout (45 s), as on a closed connection
    assert any(m == slow.member_id for b in c.brokers.values() for _, m in b.share_partitions.sessions)
    c.run_for(15_000)
    assert not any(m == slow.member_id for b in c.brokers.values() for _, m in b.share_partitions.sessions)
    [sp] = share_partitions(c, "jobs").values()
    assert sp.start_offset == 100 and not sp.in_flight

    sticky = c.share_consumer("sticky", "jobs", ["orders"], processing_ms=60_000.0)
    c.run_for(6_000)
    produce(c, 50)
    assert c.run_until(lambda: sticky.consumed > 0, 10_000)
    taken = sticky.consumed
    sticky.close()                                          # its share session closes: released at once
    c.run_for(2_000)
    assert fast.processed == 150 and fast.redelivered == held + taken


def test_a_record_delivered_delivery_count_limit_times_is_archived():
    sp = SharePartition(0, delivery_limit=5, lock_ms=1_000.0)
    now = 0.0
    for attempt in range(1, 6):
        assert sp.acquire("m", 1, 10, now) == [(0, 0, attempt)]
        assert sp.acknowledge("m", 0, 0, RELEASE, now) == "NONE"
        now += 10
    assert sp.acquire("m", 1, 10, now) == [] and sp.start_offset == 1 and not sp.in_flight
    # a lock that runs out counts as a delivery too; another member cannot acknowledge what it does not hold
    assert sp.acquire("a", 3, 10, now) == [(1, 2, 1)]
    assert sp.acknowledge("b", 1, 1, ACCEPT, now) == "INVALID_RECORD_STATE"
    assert sp.acquire("b", 3, 10, now + 1_000) == [(1, 2, 2)]
    assert sp.acknowledge("b", 2, 2, ACCEPT, now + 1_000) == "NONE"
    assert sp.start_offset == 1 and sp.lag(3) == 1
    for attempt in range(3, 6):
        assert sp.acquire("b", 3, 10, now + attempt * 1_000) == [(1, 1, attempt)]
    sp.expire_locks(now + 6_000)
    assert sp.in_flight == {} and sp.start_offset == 3 and sp.lag(3) == 0


def test_a_new_leader_and_a_new_share_coordinator_carry_on_from_the_persisted_state():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 1, 3, 2),), config=SHARE)
    members = [c.share_consumer(f"s{i}", "jobs", ["orders"], processing_ms=5.0) for i in (1, 2)]
    assert c.run_until(lambda: all(m.assignment for m in members) and share_partitions(c, "jobs"), 20_000)
    idx = state_partition("jobs", topic_id(c.cluster_id, "orders"), 0, c.cfg["share.coordinator.state.topic.num.partitions"])

    def start_offset() -> int:
        sps = share_partitions(c, "jobs")
        return next(iter(sps.values())).start_offset if sps else -1
    for n, (holder_of, partition) in enumerate((("orders", 0), (SHARE_STATE_TOPIC, idx)), start=1):
        produce(c, 300)
        assert c.run_until(lambda: sum(m.processed for m in members) >= 300 * n - 200, 20_000)
        name = f"broker-{c.active_controller().image.partition(holder_of, partition).leader}"
        c.kill(name)
        c.run_for(15_000)
        c.restart(name)
        assert c.run_until(lambda: start_offset() == 300 * n, 60_000), (holder_of, start_offset())
    # at least once: every record processed; again only what a leader that died had handed out (at most
    # max.poll.records per member) and not heard back of
    processed = sum(m.processed for m in members)
    assert 600 <= processed <= 600 + 2 * c.cfg["max.poll.records"], processed
    # the share coordinator that took over has the state the leader wrote
    c.run_for(2_000)
    [described] = ask(c, coordinator(c, "jobs"), ShareGroupOffsetsRequest((("jobs", None),))).groups
    assert {tp: o.start_offset for tp, o in described.partitions.items()} == {TopicPartition("orders", 0): 600}


def test_share_groups_need_the_switch_on_41_and_do_not_mix_with_other_protocols():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),))
    c.run_for(1_000)
    join = ShareGroupHeartbeatRequest("jobs", "m1", 0, "cli", ("orders",))
    assert ask(c, coordinator(c, "jobs"), join).error == "UNSUPPORTED_VERSION"
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),), config=SHARE)
    assert ask(c, coordinator(c, "jobs"), join).error == "NONE"
    answer = ask(c, coordinator(c, "jobs"), JoinGroupRequest("jobs", "", "cli", 10_000, 10_000, ("range",), ("orders",)))
    assert answer.error == "INCONSISTENT_GROUP_PROTOCOL"
    c.consumer("classic", "billing", ["orders"])
    c.run_for(10_000)
    refused = ask(c, coordinator(c, "billing"), ShareGroupHeartbeatRequest("billing", "m2", 0, "cli", ("orders",)))
    assert refused.error == "GROUP_ID_NOT_FOUND" and "not a share group" in refused.message


def test_start_offsets_and_lag_are_described_from_the_share_coordinators_state():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),), config=SHARE)
    member = c.share_consumer("s1", "jobs", ["orders"])
    assert c.run_until(lambda: len(share_partitions(c, "jobs")) == 3, 20_000)
    produce(c, 90)
    c.run_for(5_000)
    member.close()
    c.run_for(1_000)
    produce(c, 30)
    c.run_for(2_000)
    [described] = ask(c, coordinator(c, "jobs"), ShareGroupOffsetsRequest((("jobs", None),))).groups
    starts = {tp: o.start_offset for tp, o in described.partitions.items()}
    ends = {tp: sp.start_offset for tp, sp in share_partitions(c, "jobs").items()}
    assert described.error == "NONE" and starts == ends and sum(starts.values()) == 90
    assert sum(o.lag for o in described.partitions.values()) == 30
    [missing] = ask(c, coordinator(c, "nobody"), ShareGroupOffsetsRequest((("nobody", None),))).groups
    assert missing.error == "GROUP_ID_NOT_FOUND"


def test_the_timeline_stops_slows_and_resumes_a_share_group():
    """A workload share group on the scenario's timeline: stopped it goes Empty and its start offsets stand
    still while records arrive, slowed it falls behind, resumed it catches up; on 4.1 a share group needs
    the preview switch, which the scenario says."""
    import pytest

    from broker.scenario import load_scenario
    from broker.simulation import Simulation
    from kafka_common.yamlconf import ConfigError
    text = """
cluster: {brokers: 3, controllers: 1}
config: {group.share.enable: true, offsets.topic.num.partitions: 3, share.coordinator.state.topic.num.partitions: 3}
topics: [{name: orders, partitions: 3, replication_factor: 3, min_insync_replicas: 2}]
workload:
  - {producer: p, topic: orders, rate: 200, keys: 12, batch_interval: 500ms}
  - {share_group: jobs, topic: orders, members: 2}
timeline:
  - {at: 30s, stop_consumer: jobs}
  - {at: 60s, resume_consumer: jobs}
  - {at: 90s, slow_consumer: jobs, processing_ms: 20}
  - {at: 150s, resume_consumer: jobs}
  - {at: 200s, slow_consumer: jobs, processing_ms: 600000}
  - {at: 250s, resume_consumer: jobs}
run_for: 300s
"""
    with pytest.raises(ConfigError, match=r"s.yaml:7: workload\[1\]: share groups are a preview in Kafka 4.1"):
        load_scenario(text.replace("group.share.enable: true, ", ""), "s.yaml")
    sim = Simulation(load_scenario(text, "s.yaml"))
    sim.start()
    c = sim.cluster

    def lag() -> int:
        ends = {tp: p.high_watermark for b in c.brokers.values() for tp, p in b.partitions.items()
                if p.is_leader and tp.topic == "orders"}
        starts = {tp: sp.start_offset for tp, sp in share_partitions(c, "jobs").items()}
        return sum(end - starts.get(tp, 0) for tp, end in ends.items())

    def state() -> str:
        return c.node(coordinator(c, "jobs")).coordinator.groups["jobs"].state
    sim.run(until_ms=29_000)
    assert state() == "Stable" and lag() < 300
    sim.run(until_ms=59_000)
    assert state() == "Empty" and lag() > 5_000            # 29 s of 200 records/s, nobody reading
    sim.run(until_ms=89_000)
    assert state() == "Stable" and lag() < 300
    sim.run(until_ms=149_000)
    assert lag() > 6_000                                   # 20 ms a record: 2 members read 100 of 200 a second
    sim.run(until_ms=199_000)
    assert lag() < 300
    # hung on a record: the start offsets stand still (the locks run out, nobody takes the records); resumed,
    # the members finish at once, fetch again and catch up
    sim.run(until_ms=249_000)
    assert state() == "Stable" and lag() > 8_000
    sim.run(until_ms=300_000)
    assert lag() < 300
