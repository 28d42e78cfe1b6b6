from __future__ import annotations

from broker.structs import TopicPartition


class RangeAssignor:
    """Per topic, members sorted by id get contiguous ranges; the first ones get one more.

    C0 and C1 subscribed to t0 and t1, each with 3 partitions:
    C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
    """

    name = "range"

    @staticmethod
    def assign(partitions: dict[str, int], subscriptions: dict[str, tuple[str, ...]]) -> dict[str, list[TopicPartition]]:
        out: dict[str, list[TopicPartition]] = {m: [] for m in sorted(subscriptions)}
        for topic in sorted(partitions):
            members = sorted(m for m, topics in subscriptions.items() if topic in topics)
            if not members:
                continue
            per, extra = divmod(partitions[topic], len(members))
            start = 0
            for i, member in enumerate(members):
                n = per + (1 if i < extra else 0)
                out[member].extend(TopicPartition(topic, p) for p in range(start, start + n))
                start += n
        return out
