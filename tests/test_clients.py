"""Producers and consumer groups: keys, order, assignment, rebalances and delivery semantics."""
from conftest import make_cluster

from broker.partitioner import partition_for_key
from broker.structs import TopicPartition

EARLIEST = {"auto.offset.reset": "earliest"}


def test_same_key_same_partition_and_order_kept(cluster):
    p = cluster.producer("p")
    acked = []
    for i in range(200):
        key = f"customer-{i % 7}".encode()
        p.send("orders", value=i, key=key, callback=lambda md, err: acked.append((md, err)))
    seen = []
    cluster.consumer("c", "g", ["orders"], EARLIEST, on_records=lambda tp, recs, n: seen.extend(recs))
    cluster.run_for(15_000)
    assert len(acked) == 200 and all(err == "NONE" for _, err in acked)
    assert len(seen) == 200
    by_key: dict[bytes, list] = {}
    for r in seen:
        assert r.partition == partition_for_key(r.key, 12)
        by_key.setdefault(r.key, []).append(r)
    for records in by_key.values():
        assert len({r.partition for r in records}) == 1
        assert [r.value for r in records] == sorted(r.value for r in records)      # order kept per key


def test_explicit_partition_is_honoured(cluster):
    p = cluster.producer("p")
    metas = []
    for i in range(5):
        p.send("orders", value=i, key=b"whatever", partition=7, callback=lambda md, err: metas.append(md))
    cluster.run_for(2_000)
    assert {m.partition for m in metas} == {7}
    assert sorted(m.offset for m in metas) == [0, 1, 2, 3, 4]


def test_unknown_topic_waits_for_metadata_then_fails_after_max_block_ms(cluster):
    p = cluster.producer("p")
    errors = []
    p.send("nope", 1, callback=lambda md, err: errors.append(err))
    cluster.run_for(59_000)
    assert errors == []
    cluster.run_for(2_000)
    assert errors == ["TIMEOUT: Topic nope not present in metadata after 60000 ms."]


def test_group_assignment_with_an_idle_extra_member():
    c = make_cluster(topics=(("small", 3, 3, 2),))
    members = [c.consumer(f"m{i}", "g", ["small"], EARLIEST) for i in range(4)]
    c.run_for(15_000)
    owned = [tp for m in members for tp in m.assignment]
    assert sorted(owned) == [TopicPartition("small", p) for p in range(3)]      # each partition once
    assert sum(1 for m in members if not m.assignment) == 1                     # the extra member waits
    assert len({m.generation for m in members}) == 1


def test_rebalance_when_a_member_dies_and_a_second_group_reads_everything():
    c = make_cluster(topics=(("t", 6, 3, 2),))
    got: dict[str, list] = {"a": [], "b": []}
    a = [c.consumer(f"a{i}", "ga", ["t"], {**EARLIEST, "session.timeout.ms": 10_000},
                    on_records=lambda tp, recs, n: got["a"].extend(recs)) for i in range(3)]
    c.consumer("b0", "gb", ["t"], EARLIEST, on_records=lambda tp, recs, n: got["b"].extend(recs))
    c.run_for(10_000)
    assert all(len(m.assignment) == 2 for m in a)
    p = c.producer("p")
    for i in range(60):
        p.send("t", i, key=str(i).encode())
    c.run_for(5_000)
    a[0].kill()                                           # crash: no LeaveGroup, the session must expire
    c.run_for(5_000)
    assert all(len(m.assignment) == 2 for m in a[1:])     # not yet: session.timeout.ms is 10 s
    c.run_for(15_000)
    assert sorted(tp for m in a[1:] for tp in m.assignment) == [TopicPartition("t", i) for i in range(6)]
    for i in range(60, 120):
        p.send("t", i, key=str(i).encode())
    c.run_for(10_000)
    assert sorted(r.value for r in got["b"]) == list(range(120))              # the other group gets everything
    assert set(r.value for r in got["a"]) == set(range(120))                  # the group lost nothing


def _crash_while_processing(commit: str):
    """One consumer processes slowly; it crashes mid-batch; a new member resumes from the commit."""
    c = make_cluster(topics=(("t", 1, 3, 2),))
    processed: list[int] = []
    cfg = {**EARLIEST, "session.timeout.ms": 6_000}
    p = c.producer("p")
    for i in range(10):
        p.send("t", i, partition=0)
    c.run_for(2_000)
    first = c.consumer("c1", "g", ["t"], cfg, commit=commit, processing_ms=1_000,
                       on_records=lambda tp, recs, n: processed.extend(r.value for r in recs))
    assert c.run_until(lambda: len(processed) == 4, 20_000)   # the 10 records came in one batch
    first.kill()                                               # crash while processing the 5th
    c.run_for(1_000)
    c.consumer("c2", "g", ["t"], cfg, commit=commit, processing_ms=10,
               on_records=lambda tp, recs, n: processed.extend(r.value for r in recs))
    c.run_for(30_000)
    return processed


def test_commit_before_processing_is_at_most_once():
    processed = _crash_while_processing("before")
    assert processed == [0, 1, 2, 3]          # committed before processing: 4..9 are lost with the crash


def test_commit_after_processing_is_at_least_once():
    processed = _crash_while_processing("after")
    assert sorted(set(processed)) == list(range(10))      # nothing lost: the batch is redelivered
    assert processed == [0, 1, 2, 3] + list(range(10))    # 0..3 are processed twice


def test_committed_offsets_survive_a_coordinator_move():
    c = make_cluster(topics=(("t", 3, 3, 2),))
    p = c.producer("p")
    for i in range(30):
        p.send("t", i, key=str(i).encode())
    c.run_for(2_000)
    consumer = c.consumer("c1", "g", ["t"], EARLIEST, commit="after")
    c.run_for(15_000)
    assert consumer.processed == 30
    coordinator = consumer.coordinator
    committed = dict(consumer.positions)
    consumer.kill()
    c.kill(coordinator)
    c.run_for(15_000)
    late = []
    c.consumer("c2", "g", ["t"], EARLIEST, commit="after", on_records=lambda tp, recs, n: late.extend(recs))
    c.run_for(20_000)
    assert late == []                         # it resumed at the committed offsets: nothing re-read
    assert c.clients["c2"].coordinator != coordinator
    assert {tp: c.clients["c2"].positions[tp] for tp in committed} == committed
