"""Topic ids on the Kafka protocol. The simulation names topics only, so a topic's id is derived from
the cluster and the name: the same on every broker and every call (a topic deleted and created again
keeps its id, where Kafka would give it a new one)."""
from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f6b0b52-4a2f-4f1e-9a59-2a1ab1c2d3e4")


def topic_id(cluster_id: str, topic: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{cluster_id}/{topic}")
