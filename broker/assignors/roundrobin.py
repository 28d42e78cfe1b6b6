from __future__ import annotations

import itertools

from broker.structs import TopicPartition


class RoundRobinAssignor:
    """All partitions of all topics in order, dealt to the members in turn (skipping members not
    subscribed to the topic).

    C0 and C1 subscribed to t0 and t1, each with 3 partitions:
    C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2].
    """

    name = "roundrobin"

    @staticmethod
    def assign(partitions: dict[str, int], subscriptions: dict[str, tuple[str, ...]]) -> dict[str, list[TopicPartition]]:
        members = sorted(subscriptions)
        out: dict[str, list[TopicPartition]] = {m: [] for m in members}
        if not members:
            return out
        ring = itertools.cycle(members)
        for topic in sorted(partitions):
            if not any(topic in subscriptions[m] for m in members):
                continue
            for p in range(partitions[topic]):
                member = next(ring)
                while topic not in subscriptions[member]:
                    member = next(ring)
                out[member].append(TopicPartition(topic, p))
        return out
