"""Share groups (KIP-932) on the group coordinator: the members heartbeat (ShareGroupHeartbeat), the coordinator
assigns with the simple assignor. Unlike a consumer group, a partition may be assigned to several members at
once (the share partitions on the leaders hand each record to one of them), so there is nothing to revoke: a
member takes its target assignment on its next heartbeat. The group is Empty or Stable (Kafka's ShareGroupState).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from broker.structs import TopicPartition

EMPTY, STABLE, DEAD = "Empty", "Stable", "Dead"
STATES = (EMPTY, STABLE, DEAD)
ASSIGNOR = "simple"                 # group.share.assignors
LEAVE_EPOCH = -1


@dataclass
class ShareMember:
    member_id: str
    client: str
    epoch: int = 0
    previous_epoch: int = -1
    topics: tuple[str, ...] = ()
    assigned: frozenset[TopicPartition] = frozenset()
    last_heartbeat_ms: float = 0.0
    told: tuple[int, frozenset[TopicPartition]] | None = None     # what the member last heard


@dataclass
class ShareGroupState:
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    target: dict[str, frozenset[TopicPartition]] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)     # the subscribed topics' partition counts
    # topics the group has share-partition state for (Kafka's initialized topics): kept when members go
    initialized: set[str] = field(default_factory=set)

    def state(self) -> str:
        return STABLE if self.members else EMPTY

    def subscribed(self) -> set[str]:
        return {t for m in self.members.values() for t in m.topics}

    def refresh(self, partition_counts: dict[str, int]) -> bool:
        counts = {t: partition_counts[t] for t in sorted(self.subscribed()) if t in partition_counts}
        if counts == self.partitions:
            return False
        self.partitions = counts
        return True

    def assign(self) -> None:
        """The target assignment of the group epoch."""
        self.target = simple_assignment(self.partitions, {mid: m.topics for mid, m in self.members.items()}, self.target)
        self.initialized.update(self.partitions)
        self.assignment_epoch = self.group_epoch

    def reconcile(self, member: ShareMember) -> None:
        """On the member's own heartbeat it takes its target and the assignment epoch (nothing to revoke first)."""
        if member.epoch != self.assignment_epoch:
            member.previous_epoch, member.epoch = member.epoch, self.assignment_epoch
        member.assigned = self.target.get(member.member_id, frozenset())


def simple_assignment(partitions: dict[str, int], subscriptions: dict[str, tuple[str, ...]],
                      previous: dict[str, frozenset[TopicPartition]]) -> dict[str, frozenset[TopicPartition]]:
    """Kafka's SimpleAssignor: balance first (assignment counts differ by one at most), then stickiness. With more
    members than partitions each partition is shared by ceil(members / partitions) of them; with fewer, each
    partition goes to one member."""
    members = sorted(subscriptions)
    out: dict[str, set[TopicPartition]] = {m: set() for m in members}
    every = [TopicPartition(t, p) for t, n in sorted(partitions.items()) for p in range(n)
             if any(t in subscriptions[m] for m in members)]
    if not members or not every:
        return {m: frozenset() for m in members}
    sharing = -(-len(members) // len(every))            # members per partition
    total = sharing * len(every)
    desired = {m: -(-total * (i + 1) // len(members)) - -(-total * i // len(members)) for i, m in enumerate(members)}
    holders: dict[TopicPartition, set[str]] = {tp: set() for tp in every}
    for m in members:                                   # what each member keeps
        for tp in sorted(previous.get(m, ())):
            if tp in holders and tp.topic in subscriptions[m] and len(out[m]) < desired[m] and len(holders[tp]) < sharing:
                out[m].add(tp)
                holders[tp].add(m)
    for tp in every:                                    # what is left, to the members furthest below their share
        while len(holders[tp]) < sharing:
            eligible = [m for m in members if tp.topic in subscriptions[m] and m not in holders[tp]]
            if not eligible:
                break
            best = min(eligible, key=lambda m: (len(out[m]) - desired[m], len(out[m]), m))
            out[best].add(tp)
            holders[tp].add(best)
    return {m: frozenset(tps) for m, tps in out.items()}
