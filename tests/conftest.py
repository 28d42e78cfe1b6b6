from __future__ import annotations

import pytest

from broker.cluster import Cluster

KC = "kafka.controller:type=KafkaController,name="
RM = "kafka.server:type=ReplicaManager,name="


def make_cluster(brokers: int = 5, controllers: int = 3, seed: int = 7, config: dict | None = None,
                 topics: tuple = (("orders", 12, 3, 2),)) -> Cluster:
    """A started cluster (virtual clock) with every broker unfenced and the topics created."""
    c = Cluster(brokers=brokers, controllers=controllers, seed=seed, config=config)
    c.start()
    assert c.run_until(c.ready, 30_000), "cluster did not become ready"
    for name, partitions, rf, min_isr in topics:
        c.create_topic(name, partitions, rf, min_isr)
    assert c.run_until(lambda: all(c.topic_exists(t[0]) for t in topics), 10_000)
    return c


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster()
