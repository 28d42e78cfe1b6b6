"""The durability checker: seeded random fault schedules under load, then an audit of the logs.

Per schedule: 3 brokers, 3 controllers, a topic of 6 partitions with RF 3 and min ISR 2; one
idempotent producer with the chosen acks and a consumer group; 20 random faults over 90 s
(broker kill and restart, active controller kill, isolation, slow follower). Then everything is
healed and restarted and the cluster settles. The audit, per schedule:
- lost: acknowledged records not in the final log (0 is Kafka's promise for acks=all with
  min.insync.replicas=2; acks=1 loses what a leader acknowledged before followers copied it);
- duplicated: records in the log more than once (0 with the idempotent producer: a retried
  batch keeps its sequence numbers and the leader drops the copy);
- out_of_order: a producer's sequence numbers going backwards within a partition;
- visible_above_hw: records a consumer read that are not in the final log at their offset
  (reading above the high watermark would show here);
- offset_regressions: a group's committed offset moving backwards across coordinator moves.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from broker.cluster import Cluster
from broker.structs import TopicPartition

TOPIC = "audit"
PARTITIONS = 6


@dataclass
class ScheduleResult:
    seed: int
    acks: str
    faults: list[str]
    acked: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    visible_above_hw: int = 0
    offset_regressions: int = 0
    consumed: int = 0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 or self.acks == "1") and self.duplicated == 0 and self.out_of_order == 0 \
            and self.visible_above_hw == 0 and self.offset_regressions == 0


@dataclass
class Report:
    acks: str
    schedules: int = 0
    acked: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    max_visible_above_hw: int = 0
    offset_regressions: int = 0
    failing_seeds: list[int] = field(default_factory=list)
    lossy_seeds: list[int] = field(default_factory=list)

    def add(self, r: ScheduleResult) -> None:
        self.schedules += 1
        self.acked += r.acked
        self.lost += r.lost
        self.duplicated += r.duplicated
        self.out_of_order += r.out_of_order
        self.max_visible_above_hw = max(self.max_visible_above_hw, r.visible_above_hw)
        self.offset_regressions += r.offset_regressions
        if not r.ok:
            self.failing_seeds.append(r.seed)
        if r.lost:
            self.lossy_seeds.append(r.seed)

    def as_dict(self) -> dict:
        return asdict(self)


def run_schedule(seed: int, acks: str = "all", faults: int = 20, load_s: int = 90) -> ScheduleResult:
    rng = random.Random(f"durability:{seed}")
    c = Cluster(brokers=3, controllers=3, seed=seed,
                config={"replica.lag.time.max.ms": 10_000, "offsets.topic.num.partitions": 3})
    c.start()
    c.run_until(c.ready, 30_000)
    c.create_topic(TOPIC, PARTITIONS, 3, 2)
    c.run_until(lambda: c.topic_exists(TOPIC), 30_000)
    producer = c.producer("producer", {"acks": acks, "enable.idempotence": acks == "all"})
    consumed: list[tuple[int, int, object]] = []             # (partition, offset, value)
    acked: list[int] = []
    commits: dict[TopicPartition, int] = {}
    regressions = [0]

    def on_records(tp, records, n):
        consumed.extend((r.partition, r.offset, r.value) for r in records)

    c.consumer("reader", "auditors", [TOPIC], {"auto.offset.reset": "earliest", "session.timeout.ms": 10_000},
               commit="after", on_records=on_records)
    result = ScheduleResult(seed, acks, [])
    sent = [0]

    def produce() -> None:
        for _ in range(20):
            value = sent[0]
            producer.send(TOPIC, value, key=str(value % 50).encode(),
                          callback=lambda md, err, v=value: acked.append(v) if err == "NONE" else None)
            sent[0] += 1

    step_ms = load_s * 1000 // faults
    for _ in range(faults):
        kind = rng.choice(("kill", "restart", "controller", "isolate", "heal", "slow"))
        broker = f"broker-{rng.randint(1, 3)}"
        try:
            if kind == "kill":
                c.kill(broker)
            elif kind == "restart":
                dead = [b for b, n in c.brokers.items() if not n.alive] + [n for n, x in c.controllers.items() if not x.alive]
                if dead:
                    broker = rng.choice(dead)
                    c.restart(broker)
            elif kind == "controller":
                broker = c.kill("active-controller")
            elif kind == "isolate":
                c.isolate(broker)
            elif kind == "heal":
                c.heal()
                broker = "all"
            else:
                c.slow(broker, fetch_delay_ms=rng.choice((5_000, 15_000)))
            result.faults.append(f"{c.now_ms() / 1000:.0f}s {kind} {broker}")
        except ValueError:
            pass
        for _ in range(step_ms // 500):
            produce()
            c.run_for(500)
            _track_commits(c, commits, regressions)
    c.heal()
    for name, node in c.servers.items():
        if not node.alive:
            c.restart(name)
    c.run_for(60_000)
    _track_commits(c, commits, regressions)
    _audit(c, acked, consumed, result)
    result.offset_regressions = regressions[0]
    return result


def _track_commits(c: Cluster, commits: dict[TopicPartition, int], regressions: list[int]) -> None:
    """The group's offsets as its current coordinator (the leader of its __consumer_offsets
    partition, per the active controller) holds them; a value below one seen before is a regression.
    Other brokers' stale views (a deposed coordinator) are not the committed state and are ignored."""
    from broker.group import OFFSETS_TOPIC, partition_for
    active = c.active_controller()
    topic = active.image.topics.get(OFFSETS_TOPIC) if active else None
    if topic is None:
        return
    leader = topic.partitions[partition_for("auditors", len(topic.partitions))].leader
    broker = c.brokers.get(f"broker-{leader}")
    if broker is None or not broker.alive:
        return
    index = partition_for("auditors", len(topic.partitions))
    if index not in broker.coordinator.loaded:
        return
    group = broker.coordinator.groups.get("auditors")
    for tp, off in (group.offsets.items() if group else ()):
        if off < commits.get(tp, -1):
            regressions[0] += 1
        commits[tp] = max(off, commits.get(tp, -1))


def _audit(c: Cluster, acked_values: list[int], consumed: list[tuple[int, int, object]],
           result: ScheduleResult) -> None:
    """Records are identified by their value (the producer numbers them 0, 1, 2, ...)."""
    active = c.active_controller()
    final: dict[int, dict[int, object]] = {}                  # partition -> offset -> value
    copies: dict[object, int] = {}
    for p in range(PARTITIONS):
        state = active.image.partition(TOPIC, p) if active else None
        leader = state.leader if state else -1
        offsets: dict[int, object] = {}
        if leader >= 0:
            part = c.brokers[f"broker-{leader}"].partitions[TopicPartition(TOPIC, p)]
            last = -1
            for batch in part.log.read(0, 1 << 62, upto=part.high_watermark):
                for i, record in enumerate(batch.records or ()):
                    offsets[batch.base_offset + i] = record.value
                    copies[record.value] = copies.get(record.value, 0) + 1
                    # one key's records go to one partition in send order: values only grow there
                    if record.value < last:
                        result.out_of_order += 1
                    last = max(last, record.value)
        final[p] = offsets
    result.duplicated = sum(n - 1 for n in copies.values() if n > 1)
    result.acked = len(acked_values)
    result.lost = sum(1 for v in acked_values if v not in copies)
    result.consumed = len(consumed)
    result.visible_above_hw = sum(1 for partition, offset, value in consumed if final[partition].get(offset) != value)


def run(schedules: int, seed: int, acks: str = "all") -> tuple[Report, list[ScheduleResult]]:
    report = Report(acks)
    results = []
    for i in range(schedules):
        r = run_schedule(seed + i, acks)
        report.add(r)
        results.append(r)
    return report, results
