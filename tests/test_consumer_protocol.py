"""KIP-848's consumer group protocol (group.protocol=consumer) on the embedded cluster, on the virtual clock: the
coordinator assigns (uniform or range), members reconcile (a partition is never owned twice), leave, expire;
offsets go by member epoch; the group coordinator's consumer-group metrics count it all."""
from conftest import make_cluster

from broker.group import partition_for
from broker.protocol import ConsumerGroupHeartbeatRequest, JoinGroupRequest, OffsetCommitRequest
from broker.structs import TopicPartition

GCM = "kafka.server:type=group-coordinator-metrics"
NEW = {"group.protocol": "consumer", "auto.offset.reset": "earliest"}


def coordinator_of(c, group: str):
    idx = partition_for(group, c.cfg["offsets.topic.num.partitions"])
    leader = c.active_controller().image.partition("__consumer_offsets", idx).leader
    return next(b for b in c.brokers.values() if b.node_id == leader).coordinator


def owned(consumers) -> list[set[TopicPartition]]:
    return [set(m.assignment) for m in consumers if m.alive]


def run_checking(c, consumers, ms: float) -> None:
    """Run ms of cluster time, checking every 50 ms that no partition is owned by two members."""
    for _ in range(int(ms / 50)):
        c.run_for(50)
        sets = owned(consumers)
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                assert not a & b, (a & b, c.now_ms())


def balanced(consumers, partitions: int) -> bool:
    sets = owned(consumers)
    return sum(len(s) for s in sets) == partitions and len(set().union(*sets)) == partitions and \
        max(map(len, sets)) - min(map(len, sets)) <= 1


def test_members_join_reconcile_and_share_the_partitions_without_ever_overlapping():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 6, 3, 2),))
    p = c.producer("p")
    for i in range(600):
        p.send("orders", i, key=str(i).encode())
    members = [c.consumer("m1", "billing", ["orders"], NEW)]
    run_checking(c, members, 10_000)
    assert balanced(members, 6)
    for name in ("m2", "m3"):
        before = owned(members)
        members.append(c.consumer(name, "billing", ["orders"], NEW))
        run_checking(c, members, 15_000)
        assert balanced(members, 6), owned(members)
        # the uniform assignor is sticky: the members there before keep part of what they had, and only give
        for had, has in zip(before, owned(members)):
            assert has <= had, (had, has)
    group = coordinator_of(c, "billing").groups["billing"]
    state = group.consumer
    assert group.group_type == "consumer" and group.state == "Stable"
    assert {m.epoch for m in state.members.values()} == {state.assignment_epoch} == {state.group_epoch}
    run_checking(c, members, 20_000)
    assert sum(m.consumed for m in members) == 600


def test_a_member_that_leaves_or_dies_hands_its_partitions_on():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 6, 3, 2),))
    members = [c.consumer(f"m{i}", "billing", ["orders"], NEW) for i in (1, 2, 3)]
    run_checking(c, members, 20_000)
    assert balanced(members, 6)
    members[0].close()                      # heartbeat with epoch -1: the others rebalance at once
    run_checking(c, members, 12_000)
    assert balanced(members[1:], 6)
    members[1].kill()                       # silent: gone after group.consumer.session.timeout.ms (45 s)
    run_checking(c, members, 40_000)
    assert set(members[2].assignment) != {TopicPartition("orders", p) for p in range(6)}
    run_checking(c, members, 10_000)
    assert set(members[2].assignment) == {TopicPartition("orders", p) for p in range(6)}
    assert coordinator_of(c, "billing").groups["billing"].state == "Stable"


def test_the_range_assignor_gives_contiguous_ranges_and_the_metrics_count_the_group():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 6, 3, 2),))
    members = [c.consumer(f"m{i}", "billing", ["orders"], {**NEW, "group.remote.assignor": "range"}) for i in (1, 2)]
    run_checking(c, members, 20_000)
    ranges = sorted(sorted(tp.partition for tp in m.assignment) for m in members)
    assert ranges == [[0, 1, 2], [3, 4, 5]]
    coordinator = coordinator_of(c, "billing")
    assert coordinator.groups["billing"].consumer.assignor == "range"
    totals = {state: sum(b.mbeans.read(f"{GCM},state={state}")["consumer-group-count"] for b in c.brokers.values())
              for state in ("Empty", "Assigning", "Reconciling", "Stable", "Dead")}
    assert totals == {"Empty": 0, "Assigning": 0, "Reconciling": 0, "Stable": 1, "Dead": 0}
    assert sum(b.mbeans.read(f"{GCM},protocol=consumer")["group-count"] for b in c.brokers.values()) == 1
    assert sum(b.mbeans.read(f"{GCM},protocol=classic")["group-count"] for b in c.brokers.values()) == 0
    assert sum(b.mbeans.read(GCM)["consumer-group-rebalance-count"] for b in c.brokers.values()) >= 2


def test_offsets_go_by_member_epoch_and_the_protocols_do_not_mix():
    c = make_cluster(brokers=3, controllers=1, topics=(("orders", 3, 3, 2),))
    member = c.consumer("m1", "billing", ["orders"], NEW)
    c.run_for(10_000)
    coordinator = coordinator_of(c, "billing")
    epoch = member.generation
    answers: list = []
    tp = TopicPartition("orders", 0)
    for generation, error in ((epoch, "NONE"), (epoch - 1, "STALE_MEMBER_EPOCH"), (epoch + 1, "FENCED_MEMBER_EPOCH")):
        coordinator.on_offset_commit("x", OffsetCommitRequest("billing", member.member_id, generation, ((tp, 1),)),
                                     answers.append)
        c.run_for(1_000)
        assert answers[-1].error == error, generation
    coordinator.on_join("x", JoinGroupRequest("billing", "", "old", 10_000, 10_000, ("range",), ("orders",)),
                        answers.append)
    assert answers[-1].error == "INCONSISTENT_GROUP_PROTOCOL"
    coordinator.on_consumer_heartbeat("x", ConsumerGroupHeartbeatRequest("billing", "nobody", 3), answers.append)
    assert answers[-1].error == "UNKNOWN_MEMBER_ID"
    coordinator.on_consumer_heartbeat("x", ConsumerGroupHeartbeatRequest("billing", member.member_id, epoch + 5),
                                      answers.append)
    assert answers[-1].error == "FENCED_MEMBER_EPOCH"
    coordinator.on_consumer_heartbeat("x", ConsumerGroupHeartbeatRequest("billing", "new", 0, "x", 1000, ("orders",),
                                                                         "sticky"), answers.append)
    assert answers[-1].error == "UNSUPPORTED_ASSIGNOR"
