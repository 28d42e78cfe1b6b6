"""The rules engine against jmx_exporter's semantics and the peers' rule tables (reference/peers.md)."""
import math

import pytest
from conftest import make_cluster

from exporter.exposition import sample_name
from exporter.rules import MetricType, RuleSet, translate_java_regex
from exporter.sample import Sample, java_double
from kafka_common.yamlconf import ConfigError
from kafka_jmx.embedded import EmbeddedSource


def s(on: str, attr: str, value, path=()):
    domain, _, rest = on.partition(":")
    props = tuple(tuple(kv.split("=", 1)) for kv in rest.split(","))
    return Sample(domain, props, tuple(path), attr, value, 0.0)


def one(rules: str, sample):
    return RuleSet.from_yaml(rules).match(sample)


def test_match_string_keeps_registration_order_and_is_unanchored():
    rules = """
rules:
  - pattern: 'type=Log, name=Size, topic=(.+), partition=(.+)><>Value: (\\d+)'
    name: size_$1_$2_$3
"""
    m = one(rules, s("kafka.log:type=Log,name=Size,topic=orders,partition=3", "Value", 1234))
    assert m.name == "size_orders_3_1234" and m.value == 1234.0
    # sorted keys would read name=Size, partition=3, topic=orders: no match
    assert one(rules, s("kafka.log:name=Size,partition=3,topic=orders,type=Log", "Value", 1)) is None


def test_first_match_wins_and_unmatched_attributes_are_dropped():
    rules = """
rules:
  - pattern: 'kafka.server<type=ReplicaManager, name=(.+)><>Value'
    name: first_$1
  - pattern: '.*'
    name: second
"""
    rs = RuleSet.from_yaml(rules)
    assert rs.match(s("kafka.server:type=ReplicaManager,name=LeaderCount", "Value", 3)).name == "first_LeaderCount"
    assert rs.match(s("kafka.server:type=Other,name=X", "Value", 3)).name == "second"
    assert RuleSet.from_yaml("rules:\n  - pattern: nothing\n    name: x\n").match(s("a:type=b", "Value", 1)) is None


def test_default_names_labels_lowercase_and_sanitizing():
    m = one("rules:\n  - {}\n", s("kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions", "Value", 0))
    assert (m.name, m.labels, m.value, m.type) == ("kafka_server_ReplicaManager_Value",
                                                   (("name", "UnderReplicatedPartitions"),), 0.0, MetricType.UNTYPED)
    m = one("lowercaseOutputName: true\nlowercaseOutputLabelNames: true\nrules:\n  - {}\n",
            s("java.lang:type=Memory", "HeapMemoryUsage", 5, path=("used",)))
    assert m.name == "java_lang_memory_heapmemoryusage_used" and m.labels == ()
    m = one("rules:\n  - pattern: '(.*)'\n    name: 'a.b--c$$x'\n", s("d:type=t", "Value", 1))
    assert m.name == "a_b_c_x"


def test_labels_are_sorted_and_empty_ones_dropped():
    rules = """
rules:
  - pattern: 'kafka.(\\w+)<type=(.+), name=(.+), (.+)=(.+)><>Value'
    name: kafka_$1_$2_$3
    labels: {zeta: "$5", "$4": "$5", alpha: "x", empty: ""}
"""
    m = one(rules, s("kafka.cluster:type=Partition,name=UnderMinIsr,topic=t", "Value", 1))
    assert m.labels == (("alpha", "x"), ("topic", "t"), ("zeta", "t"))


def test_value_factor_booleans_strings_and_value_overrides():
    rules = "rules:\n  - pattern: 'x<type=t><>(\\w+)'\n    name: v_$1\n    valueFactor: 0.001\n"
    assert one(rules, s("x:type=t", "ms", 1500)).value == pytest.approx(1.5)
    assert one(rules, s("x:type=t", "flag", True)).value == 1.0              # booleans ignore valueFactor
    assert one(rules, s("x:type=t", "text", "leader")) is None            # non-numeric: dropped
    state = """
rules:
  - pattern: 'kafka.server<type=raft-metrics><>(current-state): (.+)'
    name: kafka_server_raftmetrics_$1
    value: 1
    labels: {"$1": "$2"}
"""
    m = one(state, s("kafka.server:type=raft-metrics", "current-state", "leader"))
    assert (m.name, m.labels, m.value) == ("kafka_server_raftmetrics_current_state", (("current_state", "leader"),), 1.0)


def test_java_value_strings_in_the_match_string():
    assert java_double(1.0) == "1.0" and java_double(1e7) == "1.0E7" and java_double(1.5e-5) == "1.5E-5"
    assert java_double(math.nan) == "NaN"
    m = one("rules:\n  - pattern: 'x<type=t><>v: (.+)'\n    name: 'n'\n    labels: {raw: '$1'}\n",
            s("x:type=t", "v", 2.0))
    assert m.labels == (("raw", "2.0"),)


def test_multi_digit_group_references():
    pattern = "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)"
    m = one(f"rules:\n  - pattern: 'x<type={pattern}><>v'\n    name: 'n_$10_$11_$1'\n", s("x:type=abcdefghijk", "v", 1))
    assert m.name == "n_j_k_a"


def test_java_regex_translation():
    assert translate_java_regex(r"(?<topic>\w+)") == r"(?P<topic>\w+)"
    assert translate_java_regex(r"\Qa.b\E") == r"a\.b"
    assert translate_java_regex(r"\p{Alpha}+") == "[a-zA-Z]+"
    rs = RuleSet.from_yaml("rules:\n  - pattern: 'x<type=(?<t>\\p{Alpha}++)><>v'\n    name: 'n_${t}'\n")
    assert rs.match(s("x:type=abc", "v", 1)).name == "n_abc"         # possessive quantifier kept


@pytest.mark.parametrize("text,expected", [
    ("rules:\n  - pattern: 'x<\\p{IsLatin}>'\n    name: n\n", "<rules>:2: rules[0].pattern: rule 0: cannot use pattern"),
    ("rules:\n  - pattern: '(unclosed'\n    name: n\n", "rules[0].pattern: rule 0: cannot use pattern '(unclosed'"),
    ("rules:\n  - labels: {a: b}\n", "rule 0: 'labels' or 'help' given without 'name'"),
    ("rules:\n  - pattern: 'x'\n    nmae: n\n", "rules[0].nmae: unknown rule key 'nmae'"),
    ("rules:\n  - pattern: '(x)'\n    name: n_$2\n", "rule 0: $2 used but the pattern has 1 groups"),
    ("lowercaseOutputName: yes please\n", "lowercaseOutputName: expected true or false"),
    ("rules: [\n", "not valid YAML"),
])
def test_bad_rules_are_rejected_with_line_and_rule(text, expected):
    with pytest.raises(ConfigError) as e:
        RuleSet.from_yaml(text)
    assert expected in str(e.value)


def test_cached_rules_match_once_and_follow_the_value():
    rs = RuleSet.from_yaml("rules:\n  - pattern: 'x<type=t><>v'\n    name: n\n    cache: true\n")
    assert rs.match(s("x:type=t", "v", 1)).value == 1.0
    assert rs.match(s("x:type=t", "v", 7)).value == 7.0


# -- the peers' configs, rebuilt from the rule tables of reference/peers.md ------------------------------------
STRIMZI = r"""
lowercaseOutputName: true
rules:
  - pattern: 'kafka.server<type=(.+), name=(.+), clientId=(.+), topic=(.+), partition=(.*)><>Value'
    name: kafka_server_$1_$2
    type: GAUGE
    labels: {clientId: "$3", topic: "$4", partition: "$5"}
  - pattern: 'kafka.server<type=(.+), name=(.+), clientId=(.+), brokerHost=(.+), brokerPort=(.+)><>Value'
    name: kafka_server_$1_$2
    type: GAUGE
    labels: {clientId: "$3", broker: "$4:$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)Percent\w*><>MeanRate'
    name: kafka_$1_$2_$3_percent
    type: GAUGE
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)Percent\w*><>Value'
    name: kafka_$1_$2_$3_percent
    type: GAUGE
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)Percent\w*, (.+)=(.+)><>Value'
    name: kafka_$1_$2_$3_percent
    type: GAUGE
    labels: {"$4": "$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)PerSec\w*, (.+)=(.+), (.+)=(.+)><>Count'
    name: kafka_$1_$2_$3_total
    type: COUNTER
    labels: {"$4": "$5", "$6": "$7"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)PerSec\w*, (.+)=(.+)><>Count'
    name: kafka_$1_$2_$3_total
    type: COUNTER
    labels: {"$4": "$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)PerSec\w*><>Count'
    name: kafka_$1_$2_$3_total
    type: COUNTER
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+), (.+)=(.+), (.+)=(.+)><>Value'
    name: kafka_$1_$2_$3
    type: GAUGE
    labels: {"$4": "$5", "$6": "$7"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+), (.+)=(.+)><>Value'
    name: kafka_$1_$2_$3
    type: GAUGE
    labels: {"$4": "$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)><>Value'
    name: kafka_$1_$2_$3
    type: GAUGE
  - pattern: 'kafka.server<type=raft-metrics><>(current-state): (.+)'
    name: kafka_server_raftmetrics_$1
    value: 1
    type: UNTYPED
    labels: {"$1": "$2"}
  - pattern: 'kafka.server<type=raft-metrics><>(.+-total|.+-max):'
    name: kafka_server_raftmetrics_$1
    type: COUNTER
  - pattern: 'kafka.server<type=raft-metrics><>(.+):'
    name: kafka_server_raftmetrics_$1
    type: GAUGE
  - pattern: 'kafka.server<type=broker-metadata-metrics><>(.+):'
    name: kafka_server_brokermetadatametrics_$1
    type: GAUGE
"""
KRAFT_EXAMPLE = r"""
lowercaseOutputName: true
rules:
  - pattern: 'kafka.coordinator.(\w+)<type=(.+), name=(.+)><>Value'
    name: kafka_coordinator_$1_$2_$3
    type: GAUGE
  - pattern: 'kafka.server<type=raft-metrics><>current-state: ([a-z]+)'
    name: kafka_server_raft_metrics_current_state_info
    type: GAUGE
    value: 1
    labels: {state: "$1"}
  - pattern: 'kafka.server<type=(.+)><>([a-z-]+)-total'
    name: kafka_server_$1_$2_total
    type: COUNTER
  - pattern: 'kafka.server<type=(.+)><>([a-z-]+)'
    name: kafka_server_$1_$2
    type: GAUGE
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)PerSec\w*, (.+)=(.+)><>Count'
    name: kafka_$1_$2_$3_total
    type: COUNTER
    labels: {"$4": "$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)PerSec\w*><>Count'
    name: kafka_$1_$2_$3_total
    type: COUNTER
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+), (.+)=(.+), (.+)=(.+)><>Value'
    name: kafka_$1_$2_$3
    type: GAUGE
    labels: {"$4": "$5", "$6": "$7"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)><>Value'
    name: kafka_$1_$2_$3
    type: GAUGE
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)Percent\w*><>Value'
    name: kafka_$1_$2_$3_percent
    type: GAUGE
"""
CONFLUENT = r"""
lowercaseOutputName: true
lowercaseOutputLabelNames: true
blacklistObjectNames: ["kafka.server:type=app-info,id=*"]
rules:
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+), topic=(.+), partition=(.+)><>Value'
    name: kafka_$1_$2_$3
    cache: true
    labels: {topic: "$4", partition: "$5"}
  - pattern: 'kafka.server<type=raft-metrics><>(.+):(.*)'
    name: kafka_server_raft_metrics_$1
    cache: true
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+), (.+)=(.+)><>Count'
    name: kafka_$1_$2_$3
    cache: true
    labels: {"$4": "$5"}
  - pattern: 'kafka.(\w+)<type=(.+), name=(.+)><>(Count|Value)'
    name: kafka_$1_$2_$3
    cache: true
"""


@pytest.fixture(scope="module")
def cluster_samples():
    c = make_cluster()
    p = c.producer("p")
    for i in range(20):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "g", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(15_000)
    return [smp for n, node in c.servers.items() for smp in EmbeddedSource(n, node).read().samples]


def names_of(rules_text, samples):
    rs = RuleSet.from_yaml(rules_text, "peer.yml")
    out: dict[str, set] = {}
    for m in rs.apply(samples):
        # what a dashboard queries: the exposed sample name (a counter's carries _total)
        out.setdefault(sample_name(m.name, m.type), set()).add(m.labels)
    return out


@pytest.mark.slow
def test_strimzi_rules_give_the_names_strimzi_dashboards_query(cluster_samples):
    names = names_of(STRIMZI, cluster_samples)
    for expected in ("kafka_server_replicamanager_leadercount", "kafka_server_replicamanager_partitioncount",
                     "kafka_server_replicamanager_underreplicatedpartitions",
                     "kafka_controller_kafkacontroller_activecontrollercount",
                     "kafka_controller_kafkacontroller_offlinepartitionscount",
                     "kafka_controller_controllerstats_uncleanleaderelections_total",
                     "kafka_cluster_partition_atminisr", "kafka_cluster_partition_underminisr",
                     "kafka_server_brokertopicmetrics_bytesin_total", "kafka_server_brokertopicmetrics_bytesout_total",
                     "kafka_server_brokertopicmetrics_messagesin_total",
                     "kafka_server_brokertopicmetrics_totalproducerequests_total",
                     "kafka_server_brokertopicmetrics_failedproducerequests_total",
                     "kafka_network_socketserver_networkprocessoravgidle_percent",
                     "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent", "kafka_log_log_size",
                     "kafka_cluster_partition_replicascount", "kafka_server_raftmetrics_current_leader",
                     "kafka_server_raftmetrics_current_epoch", "kafka_server_raftmetrics_commit_latency_avg",
                     "kafka_server_raftmetrics_high_watermark", "kafka_server_raftmetrics_append_records_rate"):
        assert expected in names, expected
    states = {dict(labels)["current_state"] for labels in names["kafka_server_raftmetrics_current_state"]}
    assert states == {"leader", "follower", "observer"}
    assert (("partition", "0"), ("topic", "orders")) in names["kafka_log_log_size"]


@pytest.mark.slow
def test_jmx_exporter_kraft_example_names(cluster_samples):
    names = names_of(KRAFT_EXAMPLE, cluster_samples)
    # the example names it ..._current_state_info; jmx_exporter 1.x (client_java) cuts the _info
    assert "kafka_server_raft_metrics_current_state" in names
    assert "kafka_server_raft_metrics_current_state_info" not in names
    assert "kafka_coordinator_group_groupmetadatamanager_numgroups" in names
    # the Percent rules come after the generic Value rule: shadowed, as in the real file
    assert "kafka_network_socketserver_networkprocessoravgidlepercent" in names
    assert "kafka_network_socketserver_networkprocessoravgidle_percent" not in names


def test_confluent_style_names(cluster_samples):
    names = names_of(CONFLUENT, cluster_samples)
    assert "kafka_server_brokertopicmetrics_bytesinpersec" in names
    assert "kafka_controller_kafkacontroller_activebrokercount" in names
    assert "kafka_server_raft_metrics_current_leader" in names


@pytest.mark.slow
def test_builtin_rules_cover_the_strimzi_names_and_more(cluster_samples):
    from exporter.rulesets import builtin_rules
    rs = builtin_rules()
    names = {}
    for m in rs.apply(cluster_samples):
        names.setdefault(sample_name(m.name, m.type), set()).add(m.labels)
    strimzi = names_of(STRIMZI, cluster_samples)
    # Strimzi types raft's *-max latencies COUNTER (exposed with _total); a maximum is a gauge here
    assert set(strimzi) - set(names) == {"kafka_server_raftmetrics_election_latency_max_total",
                                         "kafka_server_raftmetrics_commit_latency_max_total"}
    assert {"kafka_server_raftmetrics_election_latency_max", "kafka_server_raftmetrics_commit_latency_max"} <= set(names)
    assert "kafka_coordinator_group_groupmetadatamanager_numgroups" in names
    assert "kafka_server_groupcoordinatormetrics_offset_commit_count_total" in names
    assert "jvm_memory_used_bytes" not in names          # the embedded source has no java.lang beans
