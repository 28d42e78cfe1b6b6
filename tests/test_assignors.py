from broker.assignors import RangeAssignor, RoundRobinAssignor
from broker.structs import TopicPartition as TP


def test_range_worked_example():
    plan = RangeAssignor.assign({"t0": 3, "t1": 3}, {"C0": ("t0", "t1"), "C1": ("t0", "t1")})
    assert plan == {"C0": [TP("t0", 0), TP("t0", 1), TP("t1", 0), TP("t1", 1)],
                    "C1": [TP("t0", 2), TP("t1", 2)]}


def test_roundrobin_worked_example():
    plan = RoundRobinAssignor.assign({"t0": 3, "t1": 3}, {"C0": ("t0", "t1"), "C1": ("t0", "t1")})
    assert plan == {"C0": [TP("t0", 0), TP("t0", 2), TP("t1", 1)],
                    "C1": [TP("t0", 1), TP("t1", 0), TP("t1", 2)]}


def test_extra_members_stay_idle_and_no_partition_is_shared():
    members = {f"C{i}": ("t",) for i in range(5)}
    for assignor in (RangeAssignor, RoundRobinAssignor):
        plan = assignor.assign({"t": 3}, members)
        owned = [tp for tps in plan.values() for tp in tps]
        assert sorted(owned) == [TP("t", 0), TP("t", 1), TP("t", 2)]
        assert sum(1 for tps in plan.values() if not tps) == 2


def test_members_only_get_subscribed_topics():
    plan = RoundRobinAssignor.assign({"a": 2, "b": 2}, {"C0": ("a",), "C1": ("a", "b")})
    assert all(tp.topic == "a" for tp in plan["C0"])
    assert [tp for tp in plan["C1"] if tp.topic == "b"] == [TP("b", 0), TP("b", 1)]
