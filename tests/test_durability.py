"""acks=all with min.insync.replicas=2 on RF 3 loses no acknowledged record across broker faults."""
from conftest import make_cluster

from broker.structs import TopicPartition


def _read_all(c, topic, partitions):
    """Every record below the HW, per partition, from the current leaders' logs."""
    out = {}
    for p in range(partitions):
        state = c.active_controller().image.partition(topic, p)
        part = c.brokers[f"broker-{state.leader}"].partitions[TopicPartition(topic, p)]
        out[p] = [b for b in part.log.read(0, 1 << 40, upto=part.high_watermark)]
    return out


def test_no_acknowledged_record_lost_when_leaders_die():
    c = make_cluster(topics=(("d", 6, 3, 2),))
    producer = c.producer("p", {"acks": "all"})
    producer.track_acks = True
    n = 0
    for step in range(60):
        for _ in range(20):
            producer.send_bulk("d", {str(n).encode(): 1}, 100)
            n += 1
        if step in (10, 30):
            victim = c.active_controller().image.partition("d", 0).leader
            c.kill(f"broker-{victim}")
        if step in (20, 40):
            for b in c.brokers.values():
                if not b.alive:
                    c.restart(b.name)
        c.run_for(500)
    c.run_for(30_000)
    assert producer.acked >= n - 20
    logs = _read_all(c, "d", 6)
    for tp, _offset, seq, _count in producer.acked_batches:
        batches = logs[tp.partition]
        held = [b for b in batches if b.producer_id == producer.producer_id
                and b.base_sequence <= seq < b.base_sequence + b.count]
        assert held, f"acknowledged batch {tp} seq {seq} lost"
    for p, batches in logs.items():
        seqs = [b.base_sequence for b in batches if b.producer_id == producer.producer_id]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), f"partition {p}: order or duplicates"
