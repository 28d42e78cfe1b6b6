"""Topic ids on the Kafka protocol. The simulation names topics only, so a topic's id is derived from
the cluster and the name: the same on every broker and every call (a topic deleted and created again
keeps its id, where Kafka would give it a new one)."""
from __future__ import annotations

import uuid
from typing import Any

NAMESPACE = uuid.UUID("6f6b0b52-4a2f-4f1e-9a59-2a1ab1c2d3e4")


def topic_id(cluster_id: str, topic: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{cluster_id}/{topic}")


def topics_by_id(conn: Any) -> dict[uuid.UUID, str]:
    """The topics a connection's broker knows (its metadata image, read under the cluster's lock), by id."""
    with conn.cluster.sched.lock:
        names = tuple(conn.node.image.topics)
    return {topic_id(conn.cluster.cluster_id, name): name for name in names}
