"""The Zabbix sink's own timing, on a clock the test moves: values of a discovered item wait until Zabbix can
have the item, discovery is sent again after its interval, the spool is bounded and survives a refused
connection. No Zabbix is needed for what the exporter decides; tests/test_zabbix_trapper.py sends to a real one."""
import json

import pytest
from conftest import ManualClock
from jvm_support import free_port_block
from zabbix_utils.exceptions import ProcessingError

from exporter.catalog.model import load_catalog
from exporter.collector import Target
from exporter.sample import Collection, Sample
from exporter.trapper import TrapperSink

TOPIC_KEY = 'jmx["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=orders","Count"]'
BROKER = Target("broker-1", "broker", None)


def collection(clock: ManualClock, count: int) -> Collection:
    props = (("type", "BrokerTopicMetrics"), ("name", "MessagesInPerSec"))
    ms = clock.time() * 1000.0
    return Collection([Sample("kafka.server", props, (), "Count", count, ms),
                       Sample("kafka.server", props + (("topic", "orders"),), (), "Count", count, ms)], {})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_a_discovered_items_values_wait_until_zabbix_can_have_the_item(clock):
    sink = TrapperSink("127.0.0.1", 1, load_catalog(), "c", lld_settle_s=60.0, clock=clock)
    sink.offer(BROKER, collection(clock, 1))
    first = {v.key: v.value for v in sink.pending()}
    assert json.loads(first["kafka.discovery.topics"]) == {"data": [{"{#JMXTOPIC}": "orders"}]}
    assert TOPIC_KEY not in first and 'jmx["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec","Count"]' in first
    clock.advance(59.0)
    sink.offer(BROKER, collection(clock, 2))
    assert TOPIC_KEY not in {v.key for v in sink.pending()}
    clock.advance(1.0)
    sink.offer(BROKER, collection(clock, 3))
    [value] = [v for v in sink.pending() if v.key == TOPIC_KEY]
    assert value.value == "3.0" and value.clock == int(clock.time())       # the clock of its collection


def test_unchanged_discovery_is_sent_again_after_its_interval(clock):
    sink = TrapperSink("127.0.0.1", 1, load_catalog(), "c", lld_interval_s=600.0, clock=clock)

    def discoveries() -> int:
        return sum(1 for v in sink.pending() if v.key == "kafka.discovery.topics")
    sink.offer(BROKER, collection(clock, 1))
    clock.advance(599.0)
    sink.offer(BROKER, collection(clock, 2))
    assert discoveries() == 1
    clock.advance(1.0)
    sink.offer(BROKER, collection(clock, 3))
    assert discoveries() == 2


def test_the_spool_is_bounded_and_keeps_what_an_unreachable_zabbix_did_not_take(clock):
    port = free_port_block(1)               # nothing listens: the connection is refused
    sink = TrapperSink("127.0.0.1", port, load_catalog(), "c", spool_limit=5, clock=clock)
    for i in range(10):
        sink.offer(BROKER, collection(clock, i))
        clock.advance(10.0)
    assert sink.spooled == 5 and sink.dropped > 0
    assert sink.pending()[-1].key == TOPIC_KEY and sink.pending()[-1].value == "9.0"     # the oldest went
    kept = sink.pending()
    with pytest.raises(ProcessingError, match=r"Couldn.t connect"):
        sink.flush_once()
    assert sink.pending() == kept and sink.sent == 0
