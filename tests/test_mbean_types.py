import math
import random

import pytest

from broker.mbeans.kafka_metrics import SampledStat
from broker.mbeans.yammer import Histogram, Meter
from kafka_common.names import ObjectName, ObjectNamePattern, jmx_sanitize


def test_meter_rates_converge_to_the_mark_rate():
    m = Meter("requests", 0.0)
    for t in range(0, 600_000, 100):         # 10 events/s for 10 minutes
        m.mark(float(t))
    attrs = m.read(600_000.0)
    assert attrs["Count"] == 6000
    assert attrs["OneMinuteRate"] == pytest.approx(10.0, rel=0.02)
    assert attrs["FiveMinuteRate"] == pytest.approx(10.0, rel=0.05)
    assert attrs["MeanRate"] == pytest.approx(10.0, rel=0.01)
    assert attrs["EventType"] == "requests" and attrs["RateUnit"] == "SECONDS"


def test_meter_one_minute_rate_decays_after_events_stop():
    m = Meter("requests", 0.0)
    for t in range(0, 60_000, 100):
        m.mark(float(t))
    busy = m.read(60_000.0)["OneMinuteRate"]
    idle = m.read(240_000.0)["OneMinuteRate"]
    assert idle < busy * math.exp(-2.5)          # three minutes of silence: e^-3 of the rate
    assert m.read(240_000.0)["Count"] == 600     # the count never decays


def test_nanosecond_meter_reports_a_fraction():
    m = Meter("percent", 0.0, rate_unit="NANOSECONDS")
    for s in range(1, 601):
        m.mark(s * 1000.0, 0.25 * 1e9)           # 25% idle each second
    assert m.read(600_000.0)["OneMinuteRate"] == pytest.approx(0.25, rel=0.01)


def test_histogram_percentiles_and_lifetime_stats():
    h = Histogram(0.0, random.Random(1))
    for i in range(1, 1001):
        h.update(float(i), float(i))
    a = h.read(1000.0)
    assert a["Count"] == 1000 and a["Min"] == 1 and a["Max"] == 1000
    assert a["Mean"] == pytest.approx(500.5)
    assert a["50thPercentile"] == pytest.approx(500.5, abs=1)
    assert a["99thPercentile"] == pytest.approx(990.99, abs=1)
    assert a["StdDev"] == pytest.approx(288.82, abs=0.1)


def test_empty_histogram_reports_zeros():
    a = Histogram(0.0, random.Random(1)).read(0.0)
    assert a["Count"] == 0 and a["Max"] == 0.0 and a["99thPercentile"] == 0.0


def test_kafka_max_is_nan_after_its_samples_expire():
    stat = SampledStat("max", 0.0)
    stat.record(1500.0, 1000.0)
    assert stat.measure(2000.0) == 1500.0
    assert math.isnan(stat.measure(70_000.0))     # 2 samples x 30 s later nothing is left


def test_kafka_rate_assumes_full_windows():
    stat = SampledStat("rate", 0.0)
    for t in range(0, 10_000, 100):
        stat.record(1.0, float(t))
    # Rate.windowSize: 10 s elapsed plus the (samples - 1) full windows not yet seen = 40 s
    assert stat.measure(10_000.0) == pytest.approx(100 / 40.0, rel=0.01)


def test_object_name_keeps_registration_order_and_quotes_like_kafka():
    name = ObjectName.kafka("kafka.log", "Log", "Size", {"topic": "orders", "partition": "3"})
    assert str(name) == "kafka.log:type=Log,name=Size,topic=orders,partition=3"
    assert name.canonical == "kafka.log:name=Size,partition=3,topic=orders,type=Log"
    assert jmx_sanitize("my topic.v1-%") == "my topic.v1-%"
    assert jmx_sanitize("a:b") == '"a:b"'
    assert ObjectName.parse(str(name)) == name


@pytest.mark.parametrize("pattern,matches", [
    ("kafka.server:*", True),
    ("kafka.*:*", True),
    ("kafka.server:type=ReplicaManager,*", True),
    ("kafka.server:type=ReplicaManager,name=*", True),
    ("kafka.server:type=ReplicaManager,name=Under*", True),
    ("kafka.server:type=ReplicaManager", False),          # not a pattern: the name key is missing
    ("kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions", True),
    ("kafka.controller:*", False),
    ("*:name=UnderReplicatedPartitions,*", True),
])
def test_object_name_patterns(pattern, matches):
    name = ObjectName.kafka("kafka.server", "ReplicaManager", "UnderReplicatedPartitions")
    assert ObjectNamePattern(pattern).matches(name) is matches


def test_bad_pattern_is_rejected():
    with pytest.raises(ValueError, match="not an ObjectName pattern"):
        ObjectNamePattern("kafka.server")
