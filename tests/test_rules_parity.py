"""The rules engine does what jmx_exporter 1.x does, one semantic per test (collector sources:
JmxCollector.loadConfig/Receiver, JmxScraper, MatchedRule, client_java's name sanitising)."""
import math

import pytest

from exporter.exposition import sample_name
from exporter.rules import MetricType, RuleError, RuleSet, snake_case, strip_reserved_suffixes
from exporter.sample import NO_VALUE, TABULAR, Sample, flatten
from kafka_common.yamlconf import ConfigError


def bean(on: str, **attrs) -> list[Sample]:
    domain, _, rest = on.partition(":")
    props = tuple(tuple(kv.split("=", 1)) for kv in rest.split(","))
    out: list[Sample] = []
    for attr, value in attrs.items():
        flatten(out, {}, domain, props, attr, value, 0.0)
    return out


def exported(rules: str, *beans: list[Sample]) -> dict[tuple, tuple]:
    """(exposed sample name, labels) -> (value, type, help)."""
    samples = [s for b in beans for s in b]
    return {(sample_name(m.name, m.type), m.labels): (m.value, m.type, m.help)
            for m in RuleSet.from_yaml(rules).apply(samples)}


def test_an_empty_document_is_the_default_export_and_an_empty_value_exports_nothing():
    cassandra = bean("org.apache.cassandra.metrics:type=Compaction,name=CompletedTasks", Value=0.2)
    assert exported("---\n", cassandra) == exported("", cassandra) == {
        ("org_apache_cassandra_metrics_Compaction_Value", (("name", "CompletedTasks"),)):
            (0.2, MetricType.UNTYPED, "org.apache.cassandra.metrics:name=CompletedTasks,type=Compaction,attribute=Value")}
    # `value:` with nothing after it is the text "null": not a number, so no sample (and no later rule)
    assert exported("rules:\n- pattern: '.*'\n  name: foo\n  value:\n- pattern: '.*'\n  name: bar\n", cassandra) == {}
    assert exported("rules:\n- pattern: '.*'\n  name: foo\n  help:\n", cassandra)[("foo", ())][0] == 0.2


@pytest.mark.parametrize("text", ["rules:\n- labels: {}\n", "rules:\n- pattern: x\n  labels: {a: b}\n",
                                  "rules:\n- pattern: x\n  help: h\n"])
def test_labels_or_help_without_a_name_are_refused_even_when_empty(text):
    with pytest.raises(ConfigError, match="without 'name'"):
        RuleSet.from_yaml(text)


def test_client_java_cuts_reserved_suffixes_and_counters_get_total_back():
    assert strip_reserved_suffixes("a_info_total") == "a" and strip_reserved_suffixes("jobs_created") == "jobs"
    b = bean("app:type=Jobs", Done=7)
    got = exported("rules:\n- pattern: 'app<type=Jobs><>Done'\n  name: jobs_done_total\n  type: GAUGE\n", b)
    assert got == {("jobs_done", ()): (7.0, MetricType.GAUGE, "app:name=null,type=Jobs,attribute=Done")}
    got = exported("rules:\n- pattern: 'app<type=Jobs><>Done'\n  name: jobs_done_total\n  type: COUNTER\n", b)
    assert list(got) == [("jobs_done_total", ())]
    got = exported("rules:\n- pattern: 'app<type=Jobs><>Done'\n  name: version_info\n", b)
    assert list(got) == [("version", ())]


def test_infer_counter_type_from_name_for_rules_and_the_default_export():
    consumer = bean("kafka.consumer:type=consumer-node-metrics,client-id=app,node-id=node-1",
                    **{"request-total": 123, "request-rate": 2.5})
    rules = ("rules:\n- pattern: 'kafka.consumer<type=.+, client-id=(.+), node-id=(.+)><>(.+):'\n"
             "  name: kafka_consumer_$3\n  labels: {client_id: $1, node_id: $2}\n")
    labels = (("client_id", "app"), ("node_id", "node-1"))
    on = exported("inferCounterTypeFromName: true\n" + rules, consumer)
    assert on[("kafka_consumer_request_total", labels)][1] is MetricType.COUNTER
    assert on[("kafka_consumer_request_rate", labels)][1] is MetricType.UNTYPED
    off = exported(rules, consumer)
    assert off[("kafka_consumer_request", labels)][1] is MetricType.UNTYPED      # _total cut, not a counter
    default = exported("inferCounterTypeFromName: true\n", consumer)
    assert default[("kafka_consumer_consumer_node_metrics_request_total",
                    (("client_id", "app"), ("node_id", "node-1")))][1] is MetricType.COUNTER


def test_include_exclude_object_names_and_their_older_spellings():
    a, b = bean("app:type=A,name=x", V=1), bean("app:type=B,name=y", V=2)
    names = lambda text: {n for n, _ in exported(text, a, b)}
    assert names("includeObjectNames: ['app:type=A,*']\n") == {"app_A_V"}
    assert names("whitelistObjectNames: ['app:type=A,*']\n") == {"app_A_V"}
    assert names("excludeObjectNames: ['app:type=A,*']\n") == {"app_B_V"}
    assert names("blacklistObjectNames: ['app:type=A,*']\n") == {"app_B_V"}
    # the newer key wins; the older one is then not read at all (jmx_exporter's loadConfig)
    assert names("includeObjectNames: ['app:type=B,*']\nwhitelistObjectNames: ['app:type=A,*']\n") == {"app_B_V"}
    assert names("includeObjectNames: ['app:*']\nexcludeObjectNames: ['app:name=y,*']\n") == {"app_A_V"}


def test_exclude_jvm_metrics_and_object_name_attribute_filters():
    jvm = bean("java.lang:type=OperatingSystem", ProcessCpuTime=12, AvailableProcessors=2)
    app = bean("app:type=A", V=1, W=2)
    assert {n for n, _ in exported("excludeJvmMetrics: true\n", jvm, app)} == {"app_A_V", "app_A_W"}
    got = exported("excludeObjectNameAttributes:\n  'java.lang:type=OperatingSystem': [ProcessCpuTime]\n", jvm, app)
    assert {n for n, _ in got} == {"java_lang_OperatingSystem_AvailableProcessors", "app_A_V", "app_A_W"}
    got = exported("includeObjectNameAttributes:\n  'app:*': [W]\n", jvm, app)
    assert {n for n, _ in got} == {"app_A_W"}


def test_metric_customizers_turn_attributes_into_labels_and_add_metrics():
    b = bean("io.example:type=job", Value=345, Text="nightly", Other=1)
    rules = """
includeObjectNames: ['io.example:type=job']
lowercaseOutputLabelNames: true
metricCustomizers:
  - mbeanFilter: {domain: io.example, properties: {type: job}}
    attributesAsLabels: [Text]
    extraMetrics:
      - {name: isActive, value: true, description: still running}
"""
    got = exported(rules, b)
    assert got[("io_example_job_Value", (("text", "nightly"),))][0] == 345.0
    assert got[("io_example_job_isActive", (("text", "nightly"),))][0] == 1.0
    # a filter on another domain leaves the bean alone
    assert ("io_example_job_Value", ()) in exported(rules.replace("domain: io.example", "domain: other"), b)
    with pytest.raises(ConfigError, match="attributesAsLabels or extraMetrics"):
        RuleSet.from_yaml("metricCustomizers:\n  - mbeanFilter: {domain: d}\n")
    with pytest.raises(ConfigError, match="must provide value"):
        RuleSet.from_yaml("metricCustomizers:\n  - mbeanFilter: {domain: d}\n    extraMetrics: [{name: x}]\n")


def test_type_is_case_sensitive_and_a_rule_without_name_gives_its_type_to_the_default_export():
    b = bean("app:type=A", V=1)
    rs = RuleSet.from_yaml("rules:\n- pattern: '.*'\n  name: v\n  type: gauge\n")
    assert rs.apply(b)[0].type is MetricType.UNTYPED
    assert "type 'gauge' is not COUNTER or GAUGE" in rs.warnings[0] and "did you mean GAUGE" in rs.warnings[0]
    assert exported("rules:\n- pattern: '.*'\n  type: GAUGE\n", b) == {
        ("app_A_V", ()): (1.0, MetricType.GAUGE, "app:name=null,type=A,attribute=V")}


def test_patterns_have_java_defaults_no_dotall_and_ascii_classes():
    multi = bean("app:type=A", Text="line1\nline2", Carriage="a\rb", Word="é")
    rules = "rules:\n- pattern: 'app<type=A><>(Text|Carriage): (.+)'\n  name: m_$1\n  value: 1\n"
    # '.' stops at \n and at \r, as Java's does, unless the pattern asks for DOTALL itself
    assert exported(rules, multi) == {}
    assert set(exported(rules.replace("(.+)", "(?s:.+)"), multi)) == {("m_Text", ()), ("m_Carriage", ())}
    # \w is ASCII: é is no word character
    assert exported("rules:\n- pattern: 'app<type=A><>Word: \\w'\n  name: w\n  value: 1\n", multi) == {}


def test_snake_case_after_punctuation_and_runs_of_capitals():
    assert snake_case("testTCPTest") == "test_tcptest"
    assert snake_case("testTest\nTest") == "test_test\n_test"
    assert snake_case("_Test_Test") == "_test_test" and snake_case("StartTime_$1_$2") == "start_time_$1_$2"
    assert snake_case("AA") == "aa" and snake_case("test1") == "test1"


def test_a_null_attribute_is_skipped_and_nan_is_kept():
    b = [Sample("app", (("type", "A"),), (), "Null", NO_VALUE, 0.0), Sample("app", (("type", "A"),), (), "NaN", math.nan, 0.0)]
    got = exported("---\n", b)
    assert list(got) == [("app_A_NaN", ())] and math.isnan(got[("app_A_NaN", ())][0])


def test_duplicate_series_carry_the_match_string_as_objectname():
    a, b = bean("d1:type=T", attr=1), bean("d2:type=T", attr=2)
    matched = RuleSet.from_yaml("rules:\n- pattern: 'd\\d<type=T><>attr'\n  name: dup\n").apply(a + b)
    assert sorted(m.object_name for m in matched) == ["d1<type=T><>attr", "d2<type=T><>attr"]


def test_a_negative_counter_fails_the_collection():
    rs = RuleSet.from_yaml("rules:\n- pattern: '.*'\n  name: c\n  type: COUNTER\n")
    with pytest.raises(RuleError, match=r"counter c of .* is negative"):
        rs.apply(bean("app:type=A", V=-1))


def test_cached_rules_keep_their_answer_across_collections():
    rs = RuleSet.from_yaml("rules:\n- pattern: 'app<type=A><>V: 1'\n  name: first\n"
                           "- pattern: 'app<type=A><>V'\n  name: cached\n  cache: true\n")
    from exporter.rules import RuleCache
    cache = RuleCache()
    assert [m.name for m in rs.apply(bean("app:type=A", V=2), cache)] == ["cached"]
    # the value-reading first rule is tried again and now wins; then the cached answer is back
    assert [m.name for m in rs.apply(bean("app:type=A", V=1), cache)] == ["first"]
    assert [m.name for m in rs.apply(bean("app:type=A", V=3), cache)] == ["cached"]


def test_composite_and_tabular_data_are_flattened_as_the_scraper_walks_them():
    nested = {TABULAR: {"index": ["key"], "rows": [
        {"key": "1.2.3.4", "value": {TABULAR: {"index": ["key"], "rows": [{"key": "errors", "value": 338}]}}}]}}
    composite_key = {TABULAR: {"index": ["key"], "rows": [
        {"key": {"id": 1, "path": "/q1"}, "value": {"elapsed": 0, "id": 1}}]}}
    got = exported("---\n", bean("Hadoop:service=DataNode,name=Info", Counts=nested),
                   bean("exist:type=Report", Running=composite_key),
                   bean("app:name=Perf", Metrics={"ActiveSessions": 2}, Scores=[1, 2]))
    assert got[("Hadoop_DataNode_Counts", (("key", "1.2.3.4"), ("key_", "errors"), ("name", "Info")))][0] == 338.0
    assert got[("exist_Report_Running_id", (("key_id", "1"), ("key_path", "/q1")))][0] == 1.0
    assert got[("app_Perf_Metrics_ActiveSessions", ())][0] == 2.0
    assert not any("Scores" in n for n, _ in got)          # arrays are not exported


def test_jmx_exporter_never_reads_runtime_system_properties():
    props = {TABULAR: {"index": ["key"], "rows": [{"key": "x.count", "value": "3"}]}}
    rules = "rules:\n- pattern: 'java.lang<type=Runtime, key=(.+)><>SystemProperties: (.+)'\n  name: p\n  value: $2\n"
    assert exported(rules, bean("java.lang:type=Runtime", SystemProperties=props)) == {}
    assert ("p", ()) in exported(rules.replace("Runtime", "Other").replace("SystemProperties", "Props"),
                                 bean("java.lang:type=Other", Props=props))
