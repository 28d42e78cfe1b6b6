"""Topic administration inside the simulation (virtual clock): DeleteTopics through the controller,
DescribeConfigs from a broker, ListOffsets by timestamp."""
from conftest import make_cluster

from broker.net import RequestFailed
from broker.node import Node
from broker.protocol import DeleteTopicsRequest, DescribeConfigsRequest, ListOffsetsRequest
from broker.structs import TopicPartition

BTM = "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders"


def ask(cluster, dst: str, request, run_ms: float = 2_000.0):
    box = []
    client = cluster.clients.get("tester")
    if client is None:
        client = cluster.clients["tester"] = Node("tester", cluster.sched, cluster.net, cluster.rng("tester"))
        client.start()
    client.request(dst, request, box.append, 5_000.0)
    assert cluster.run_until(lambda: bool(box), run_ms)
    assert not isinstance(box[0], RequestFailed), box[0]
    return box[0]


def committed(cluster, group: str) -> dict:
    for b in cluster.brokers.values():
        if b.alive and group in b.coordinator.groups and b.coordinator.owns(group) == "NONE":
            return dict(b.coordinator.groups[group].offsets)
    return {}


def test_a_deleted_topic_leaves_every_broker_with_its_logs_gauges_and_committed_offsets():
    c = make_cluster(3, 3, topics=(("orders", 3, 3, 2), ("keep", 1, 3, 1)))
    p = c.producer("p", {"acks": "all"})
    for i in range(30):
        p.send("orders", b"v", f"k{i}".encode())
    c.consumer("c", "readers", ["orders", "keep"], {"auto.commit.interval.ms": 500, "auto.offset.reset": "earliest"})
    c.run_for(10_000)
    assert any(BTM in b.mbeans for b in c.brokers.values())
    assert any(tp.topic == "orders" for tp in committed(c, "readers"))
    reply = ask(c, "broker-1", DeleteTopicsRequest("orders"))
    assert reply.error == "NONE"
    c.run_for(2_000)
    for b in c.brokers.values():
        assert "orders" not in b.image.topics
        assert not [tp for tp in b.log_manager.disk.logs if tp.topic == "orders"]
        assert not [n for n in b.mbeans.names() if "topic=orders" in str(n)]
        assert [tp for tp in b.replica_manager.partitions if tp.topic == "keep"]
    counts = c.active_controller().image.counts()
    assert counts["GlobalTopicCount"] == 1 + ("__consumer_offsets" in c.active_controller().image.topics)
    assert not any(tp.topic == "orders" for tp in committed(c, "readers"))
    owner = next(name for name, b in c.brokers.items() if b.coordinator.owns("readers") == "NONE")
    c.kill(owner)                            # the next coordinator loads the offsets topic: tombstones hold
    c.run_for(15_000)
    assert not any(tp.topic == "orders" for tp in committed(c, "readers"))
    assert next(name for name, b in c.brokers.items() if b.alive and b.coordinator.owns("readers") == "NONE") != owner
    again = ask(c, next(n for n, b in c.brokers.items() if b.alive), DeleteTopicsRequest("orders"))
    assert again.error == "UNKNOWN_TOPIC_OR_PARTITION"


def test_describe_configs_says_where_each_value_comes_from():
    c = make_cluster(3, 3, config={"min.insync.replicas": 2}, topics=(("orders", 3, 3, 2),))
    c.create_topic("lenient", 1, 3, configs={"unclean.leader.election.enable": True})
    assert c.run_until(lambda: c.topic_exists("lenient"), 10_000)
    topic = {e.name: e for e in ask(c, "broker-1", DescribeConfigsRequest("topic", "lenient")).entries}
    assert (topic["unclean.leader.election.enable"].value, topic["unclean.leader.election.enable"].source) == ("true", 1)
    assert topic["unclean.leader.election.enable"].synonyms[1] == ("unclean.leader.election.enable", "false", 5)
    assert (topic["min.insync.replicas"].value, topic["min.insync.replicas"].source) == ("2", 4)    # the broker's
    broker = {e.name: e for e in ask(c, "broker-2", DescribeConfigsRequest("broker", "2")).entries}
    assert broker["replica.lag.time.max.ms"].value == "30000" and broker["replica.lag.time.max.ms"].read_only
    assert "acks" not in broker and "session.timeout.ms" not in broker     # client settings are not the broker's
    assert ask(c, "broker-2", DescribeConfigsRequest("broker", "1")).error == "INVALID_REQUEST"
    assert ask(c, "broker-2", DescribeConfigsRequest("topic", "nope")).error == "UNKNOWN_TOPIC_OR_PARTITION"


def test_list_offsets_finds_the_first_record_written_at_or_after_a_time():
    c = make_cluster(3, 3, topics=(("orders", 1, 3, 2),))
    p = c.producer("p", {"acks": "all", "linger.ms": 0})
    times = []
    for i in range(5):
        times.append(c.sched.now_ms())
        p.send("orders", f"v{i}".encode(), b"k", partition=0)
        c.run_for(1_000)
    tp = TopicPartition("orders", 0)
    leader_id = c.active_controller().image.partition("orders", 0).leader
    leader = next(name for name, b in c.brokers.items() if b.node_id == leader_id)
    found = ask(c, leader, ListOffsetsRequest(tp, times[2] + 1))
    assert (found.offset, found.timestamp >= times[2] + 1) == (3, True)
    assert ask(c, leader, ListOffsetsRequest(tp, times[-1] + 10_000)).offset == -1
    newest = ask(c, leader, ListOffsetsRequest(tp, -3))
    assert newest.offset == 4
    assert ask(c, leader, ListOffsetsRequest(tp, -2)).offset == 0
