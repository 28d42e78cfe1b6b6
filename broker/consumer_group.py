"""Consumer groups of KIP-848's protocol (group.protocol=consumer) on the group coordinator: the members
heartbeat, the coordinator assigns.

As Kafka 4.x's GroupMetadataManager does it: a change of the group (a member joins, leaves, expires or
changes its subscription, a subscribed topic's partition count changes) bumps the group epoch; the
server-side assignor (uniform, the default, or range) computes a target assignment for that epoch; each
member then reconciles towards its target on its own heartbeats: it first revokes what it must give up
(keeping its member epoch until it has), then moves to the target epoch and takes its new partitions as
their previous owners release them. The group is Empty, Assigning (a new epoch without its target yet),
Reconciling (members not at the target yet) or Stable.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from broker.structs import TopicPartition

EMPTY, ASSIGNING, RECONCILING, STABLE, DEAD = "Empty", "Assigning", "Reconciling", "Stable", "Dead"
STATES = (EMPTY, ASSIGNING, RECONCILING, STABLE, DEAD)
ASSIGNORS = ("uniform", "range")           # group.consumer.assignors: the first is the default
LEAVE_EPOCH, STATIC_LEAVE_EPOCH = -1, -2


@dataclass
class ConsumerMember:
    member_id: str
    client: str
    rebalance_timeout_ms: int
    epoch: int = 0
    previous_epoch: int = -1
    topics: tuple[str, ...] = ()
    assigned: frozenset[TopicPartition] = frozenset()
    revoking: frozenset[TopicPartition] = frozenset()      # still owned until the member says it let go
    revoke_deadline_ms: float = 0.0
    last_heartbeat_ms: float = 0.0
    told: tuple[int, frozenset[TopicPartition]] | None = None   # the epoch and assignment the member last heard


@dataclass
class ConsumerGroupState:
    """The part of a group only the consumer protocol has (offsets stay with the group)."""
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ASSIGNORS[0]
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    target: dict[str, frozenset[TopicPartition]] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)      # the subscribed topics' partition counts

    def state(self) -> str:
        if not self.members:
            return EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ASSIGNING
        if any(m.epoch != self.assignment_epoch or m.revoking or m.assigned != self.target.get(m.member_id, frozenset())
               for m in self.members.values()):
            return RECONCILING
        return STABLE

    def subscribed(self) -> set[str]:
        return {t for m in self.members.values() for t in m.topics}

    def refresh(self, partition_counts: dict[str, int]) -> bool:
        """The subscribed topics' partition counts as the metadata has them; True when they changed (a new
        group epoch). Topics that do not exist count for nothing, as in Kafka."""
        counts = {t: partition_counts[t] for t in sorted(self.subscribed()) if t in partition_counts}
        if counts == self.partitions:
            return False
        self.partitions = counts
        return True

    def assign(self) -> None:
        """The target assignment of the group epoch, by the group's server-side assignor."""
        subscriptions = {mid: m.topics for mid, m in self.members.items()}
        if self.assignor == "range":
            self.target = range_assignment(self.partitions, subscriptions)
        else:
            self.target = uniform_assignment(self.partitions, subscriptions, self.target)
        self.assignment_epoch = self.group_epoch

    def reconcile(self, member: ConsumerMember, now_ms: float) -> None:
        """CurrentAssignmentBuilder: revoke first, keeping the epoch; then the target epoch, with the new
        partitions that no other member still owns."""
        if member.revoking:
            return
        target = self.target.get(member.member_id, frozenset())
        revoke = member.assigned - target
        if revoke:
            member.assigned -= revoke
            member.revoking = revoke
            member.revoke_deadline_ms = now_ms + member.rebalance_timeout_ms
            return
        if member.epoch != self.assignment_epoch:
            member.previous_epoch, member.epoch = member.epoch, self.assignment_epoch
        held = {tp for mid, m in self.members.items() if mid != member.member_id for tp in m.assigned | m.revoking}
        member.assigned = frozenset(tp for tp in target if tp not in held)

    def released(self, member: ConsumerMember, owned: Iterable[TopicPartition]) -> None:
        """The member's heartbeat lists what it owns: what it was revoking and no longer lists is released."""
        if member.revoking and not member.revoking & set(owned):
            member.revoking = frozenset()


def range_assignment(partitions: dict[str, int], subscriptions: dict[str, tuple[str, ...]]
                     ) -> dict[str, frozenset[TopicPartition]]:
    """Kafka's server-side RangeAssignor: per topic, the members subscribed to it (by member id) get
    contiguous ranges, the first ones one more."""
    out: dict[str, set[TopicPartition]] = {m: set() for m in subscriptions}
    for topic, count in sorted(partitions.items()):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        if not members:
            continue
        per, extra = divmod(count, len(members))
        start = 0
        for i, member in enumerate(members):
            n = per + (1 if i < extra else 0)
            out[member].update(TopicPartition(topic, p) for p in range(start, start + n))
            start += n
    return {m: frozenset(tps) for m, tps in out.items()}


def uniform_assignment(partitions: dict[str, int], subscriptions: dict[str, tuple[str, ...]],
                       previous: dict[str, frozenset[TopicPartition]]) -> dict[str, frozenset[TopicPartition]]:
    """Kafka's UniformAssignor: as balanced as the subscriptions allow (counts differ by one at most among
    members of the same subscription) and sticky (a partition stays with its member while that keeps the
    balance), so a rebalance moves as few partitions as it can."""
    members = sorted(subscriptions)
    out: dict[str, set[TopicPartition]] = {m: set() for m in members}
    if not members:
        return {}
    every = [TopicPartition(t, p) for t, n in sorted(partitions.items()) for p in range(n)]
    eligible = {tp: [m for m in members if tp.topic in subscriptions[m]] for tp in every}
    assignable = [tp for tp in every if eligible[tp]]
    # a member's fair share: each partition split evenly among the members subscribed to its topic
    shares = {m: sum(Fraction(1, len(eligible[tp])) for tp in assignable if m in eligible[tp]) for m in members}
    free = []
    for tp in assignable:
        owner = next((m for m in members if tp in previous.get(m, ()) and m in eligible[tp]), None)
        if owner is not None and len(out[owner]) < int(shares[owner]):
            out[owner].add(tp)
        else:
            free.append(tp)
    for tp in free:
        best = min(eligible[tp], key=lambda m: (len(out[m]) - shares[m], m))
        out[best].add(tp)
    return {m: frozenset(tps) for m, tps in out.items()}
