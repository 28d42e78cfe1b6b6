"""The generated Prometheus alerts: promtool accepts them, and promtool unit tests show each alert
firing on series that should fire it and staying quiet on healthy ones, on Prometheus 3 (left-open range
windows) and on 2.x alike."""
import subprocess

import pytest
import yaml
from conftest import ROOT
from prometheus_server import binary

from exporter.catalog.model import load_catalog

RULES = ROOT / "templates" / "prometheus" / "kafka-4x-alerts.yml"
C = {"cluster": "prod"}
CTL = {"cluster": "prod", "node": "controller-1001", "node_id": "1001", "role": "controller"}
BRK = {"cluster": "prod", "node": "broker-1", "node_id": "1", "role": "broker"}
G = {"cluster": "prod", "consumergroup": "billing"}
GT = {**G, "topic": "orders"}


CATALOG = load_catalog()


def metric(metric_id: str) -> str:
    """A catalog metric's Prometheus name: the cases name series by catalog id, as the alerts do."""
    name = CATALOG.metric(metric_id).prometheus
    assert name, metric_id
    return name


def group(item_id: str) -> str:
    return CATALOG.groups.item(item_id).prometheus


def sel(name, labels):
    """A series: the name (with the catalog's own labels, jvm_memory_used_bytes{area="heap"}) and these labels."""
    base, _, own = name.partition("{")
    return base + "{" + (own.rstrip("}") + "," if own else "") + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


# alert: (firing series, healthy series, eval time, labels of the alert, {{ $value }} in the summary or None)
CASES = {
    "KafkaActiveBrokersBelowMinimum": ({sel(metric("active_broker_count"), CTL): "5 5 4 4 4 4"},
                                       {sel(metric("active_broker_count"), CTL): "5x6"}, "5m", C, "4"),
    "KafkaActiveControllerCountNotOne": ({sel(metric("active_controller_count"), CTL): "1 0 0 0 0",
                                          sel(metric("active_controller_count"), {**CTL, "node": "controller-1002"}): "0x5"},
                                         {sel(metric("active_controller_count"), CTL): "1x5",
                                          sel(metric("active_controller_count"), {**CTL, "node": "controller-1002"}): "0x5"},
                                         "4m", C, "0"),
    "KafkaNoControllerData": ({sel("kafkajmx_target_up", CTL): "0x6"},
                              {sel("kafkajmx_target_up", CTL): "1x6",
                               sel(metric("active_controller_count"), CTL): "1x6"}, "5m", C, "1"),
    "KafkaFencedBrokers": ({sel(metric("fenced_broker_count"), CTL): "0 1 1 1 1"},
                           {sel(metric("fenced_broker_count"), CTL): "0x5"}, "4m", C, "1"),
    "KafkaOfflinePartitions": ({sel(metric("offline_partitions_count"), CTL): "0 3 3 3"},
                               {sel(metric("offline_partitions_count"), CTL): "0x4"}, "3m", C, "3"),
    "KafkaControllerElection": ({sel(metric("new_active_controllers_count"), CTL): "1 1 2 2"},
                                {sel(metric("new_active_controllers_count"), CTL): "1x4"}, "3m", C, None),
    "KafkaUncleanLeaderElection": ({sel(metric("unclean_leader_elections"), CTL): "0 0 1 1"},
                                   {sel(metric("unclean_leader_elections"), CTL): "0x4"}, "3m", C, None),
    "KafkaUnderReplicatedPartitions": ({sel(metric("under_replicated_partitions"), BRK): "0 2x7"},
                                       {sel(metric("under_replicated_partitions"), BRK): "0x8"}, "7m", BRK, "2"),
    "KafkaUnderMinIsrPartitions": ({sel(metric("under_min_isr_partitions"), BRK): "0 1 1 1"},
                                   {sel(metric("under_min_isr_partitions"), BRK): "0x4"}, "3m", BRK, "1"),
    "KafkaIsrShrinking": ({sel(metric("isr_shrinks"), BRK): "0 0 3 3"},
                          {sel(metric("isr_shrinks"), BRK): "4x4"}, "3m", BRK, None),
    "KafkaBrokerNotRunning": ({sel(metric("broker_state"), BRK): "3 2 2 2 2"},
                              {sel(metric("broker_state"), BRK): "3x5"}, "4m", BRK, "2"),
    # the broker's metadata stops advancing; healthy it is under a second old, and before the first load
    # Kafka reports the epoch time
    "KafkaRaftNoLeader": ({sel(metric("metadata_lag"), BRK): "300 40300 70300 130300"},
                          {sel(metric("metadata_lag"), BRK): "1.7e12 300 450 200"},
                          "3m", BRK, "130300"),
    "KafkaElectionLatencyHigh": ({sel(metric("raft_election_latency_max"), CTL): "1500 8000"},
                                 {sel(metric("raft_election_latency_max"), CTL): "1500 1600"}, "1m", CTL, "8000"),
    "KafkaMetadataErrors": ({sel(metric("metadata_error_count"), CTL): "0 0 1 1"},
                            {sel(metric("metadata_error_count"), CTL): "0x4"}, "3m", CTL, None),
    "KafkaMetadataLoadErrors": ({sel(metric("metadata_load_errors"), BRK): "0 0 1 1"},
                                {sel(metric("metadata_load_errors"), BRK): "0x4"},
                                "3m", BRK, None),
    "KafkaOfflineLogDirectories": ({sel(metric("offline_log_dirs"), BRK): "0 1"},
                                   {sel(metric("offline_log_dirs"), BRK): "0 0"}, "1m", BRK, "1"),
    "KafkaNetworkProcessorIdleLow": ({sel(metric("network_processor_idle"), BRK): "0.1x20"},
                                     {sel(metric("network_processor_idle"), BRK): "0.9x20"},
                                     "20m", BRK, "0.1"),
    "KafkaRequestHandlerIdleLow": ({sel(metric("request_handler_idle"), BRK): "0.2x20"},
                                   {sel(metric("request_handler_idle"), BRK): "0.8x20"},
                                   "20m", BRK, "0.2"),
    "KafkaStaticVotersIgnored": ({sel(metric("ignored_static_voters"), CTL): "0 1"},
                                 {sel(metric("ignored_static_voters"), CTL): "0 0"}, "1m", CTL, None),
    "KafkaRestarted": ({sel(metric("app_start_time"), BRK): "1.7e12 1.7e12 1.70000006e12 1.70000006e12"},
                       {sel(metric("app_start_time"), BRK): "1.7e12x4"}, "3m", BRK, None),
    # an upgrade: the version label changes within the window; healthy one version all along
    "KafkaVersionChanged": ({sel(metric("app_version"), {**BRK, "version": "4.1.1"}): "1 1 _ _",
                             sel(metric("app_version"), {**BRK, "version": "4.4.0"}): "_ _ 1 1"},
                            {sel(metric("app_version"), {**BRK, "version": "4.1.1"}): "1x4"},
                            "3m", {"cluster": "prod", "node": "broker-1"}, None),
    "KafkaTargetDown": ({sel("kafkajmx_target_up", BRK): "1 0x7"}, {sel("kafkajmx_target_up", BRK): "1 0 0 0 1 0 0 0"}, "7m", BRK, "0"),
    # consumer groups (the exporter's kafka: collection)
    "KafkaConsumerGroupLagSecondsHigh": ({sel(group("group_lag_seconds"), GT): "400x7"},
                                         {sel(group("group_lag_seconds"), GT): "100 400 100 400 100 400 100"},
                                         "6m", GT, "6m 40s"),
    # the heap stays above 90% of its max even after collections; healthy, collections bring it down
    "KafkaJvmHeapNearlyFull": ({sel(metric("jvm_heap_used"), BRK): "100 950 960 970 980 990 990",
                                sel(metric("jvm_heap_max"), BRK): "1000x6"},
                               {sel(metric("jvm_heap_used"), BRK): "100 950 300 960 400 950 300",
                                sel(metric("jvm_heap_max"), BRK): "1000x6"}, "6m", {**BRK, "area": "heap"}, None),
    # 15 s of every minute collecting (25%); healthy 3 s (5%)
    "KafkaJvmGcTimeHigh": ({sel(metric("jvm_gc_time"), {**BRK, "gc": "G1 Young Generation"}): "0+15x6"},
                           {sel(metric("jvm_gc_time"), {**BRK, "gc": "G1 Young Generation"}): "0+3x6"},
                           "6m", {**BRK, "gc": "G1 Young Generation"}, None),
    "KafkaOpenFileDescriptorsHigh": ({sel(metric("open_fds"), BRK): "100 900x6", sel(metric("max_fds"), BRK): "1000x6"},
                                     {sel(metric("open_fds"), BRK): "100 900 100 900x4", sel(metric("max_fds"), BRK): "1000x6"},
                                     "6m", BRK, None),
    "KafkaConsumerGroupLagGrowing": ({sel(group("group_status"), G): "0 1x16"},
                                     {sel(group("group_status"), G): "1x8 0 1x8"}, "16m", G, None),
    "KafkaConsumerGroupStalled": ({sel(group("group_status"), G): "0 2 2"},
                                  {sel(group("group_status"), G): "0 1 0"}, "2m", G, None),
    "KafkaConsumerGroupStopped": ({sel(group("group_status"), G): "0 3x6"},
                                  {sel(group("group_status"), G): "0 3 0 3 3 0 3"}, "6m", G, None),
    # it consumes 70 of 100 records/s for 16 minutes; healthy: a burst it absorbs within 9 minutes
    "KafkaConsumerGroupFallingBehind": ({sel(group("group_lag_trend"), GT): "0 30x17",
                                         sel(group("group_produce_rate"), GT): "100x18",
                                         sel(group("group_consume_rate"), GT): "70x18"},
                                        {sel(group("group_lag_trend"), GT): "0 30x8 -20x9",
                                         sel(group("group_produce_rate"), GT): "100x18",
                                         sel(group("group_consume_rate"), GT): "70x18"}, "17m", GT, None),
    # retention may reach the unread records within 30 minutes (under the hour); healthy: a dip for 2 minutes
    "KafkaConsumerGroupWillLoseRecords": ({sel(group("group_retention_margin_seconds"), GT): "7200 1800x7"},
                                          {sel(group("group_retention_margin_seconds"), GT): "7200 1800 1800 7200x5"},
                                          "7m", GT, "30m 0s"),
    # records lost once, 10 minutes ago: still a problem within the hour; healthy: the counter stays
    "KafkaConsumerGroupLostRecords": ({sel(group("group_retention_lost"), GT): "0 0 500x10"},
                                      {sel(group("group_retention_lost"), GT): "500x12"}, "11m", GT, None),
}


MAJORS = [3, 2]


@pytest.fixture(params=MAJORS, ids=lambda m: f"prometheus{m}")
def promtool(request) -> str:
    return binary("promtool", request.param)


def rules() -> dict:
    return {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}


def expand(template: str, labels: dict, value: str | None) -> str:
    out = template
    for k, v in labels.items():
        out = out.replace("{{ $labels." + k + " }}", v)
    return out.replace("{{ $value }}", value or "").replace("{{ $value | humanizeDuration }}", value or "")


def test_promtool_accepts_the_rules(promtool):
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in out.stdout


def test_every_alert_has_a_case():
    assert set(rules()) == set(CASES)


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_on_its_fault_and_not_when_healthy(alert, promtool, tmp_path):
    tool = promtool
    firing, healthy, at, labels, value = CASES[alert]
    rule = rules()[alert]
    expected = {"exp_labels": {**labels, **rule["labels"]},
                "exp_annotations": {"summary": expand(rule["annotations"]["summary"], labels, value),
                                    "description": rule["annotations"]["description"]}}
    tests = []
    for series, alerts in ((firing, [expected]), (healthy, [])):
        tests.append({"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series.items()],
                      "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": alerts}]})
    spec = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run([tool, "test", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hold_max_caps_every_for_and_range_window_for_rehearsals():
    import re

    from exporter.catalog import alerts
    from exporter.catalog.model import load_catalog
    shipped = [r for g in alerts.render(load_catalog())["groups"] for r in g["rules"]]
    fast = [r for g in alerts.render(load_catalog(), hold_max="10s", scrape_interval="5s")["groups"] for r in g["rules"]]
    seconds = {"s": 1, "m": 60, "h": 3600}

    def s(d: str) -> int:
        return int(d[:-1]) * seconds[d[-1]]
    assert [r["alert"] for r in fast] == [r["alert"] for r in shipped]
    window = r"(changes\()?[^\[\]()]*\[(\d+[smh])\]"
    for before, after in zip(shipped, fast):
        assert s(after["for"]) == min(s(before["for"]), 10)
        # a changes() window spans the restart it detects: three times the cap
        assert [min(s(w), 30 if c else 10) for c, w in re.findall(window, before["expr"])] == \
               [s(w) for _, w in re.findall(window, after["expr"])]
    assert any(s(r["for"]) > 10 for r in shipped) and any("[5m]" in r["expr"] for r in shipped)
    [restarted] = [r["expr"] for r in fast if r["alert"] == "KafkaRestarted"]
    assert restarted == "changes(kafka_server_app_info_start_time_ms[30s]) > 0"


def run_promtool(promtool, tmp_path, rule_file, tests) -> None:
    spec = {"rule_files": [str(rule_file)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "cases.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def broker_case(brokers: int, active: str, expected: int | None, fires: bool) -> dict:
    """Three controllers report ActiveBrokerCount; the exporter publishes the expected count (or, with
    None, an exporter that does not: the cluster's own most brokers of the day count)."""
    series = [{"series": sel(metric("active_broker_count"), {**CTL, "node": f"controller-{n}"}),
               "values": active} for n in (1001, 1002, 1003)]
    if expected is not None:
        series.append({"series": sel("kafkajmx_brokers_expected", C), "values": f"{expected}x8"})
    alerts = [{"exp_labels": {**C, "severity": "critical", "scope": "availability"},
               "exp_annotations": {"summary": f"Kafka prod: only {brokers - 1} active brokers",
                                   "description": rules()["KafkaActiveBrokersBelowMinimum"]["annotations"]["description"]}}]
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "7m", "alertname": "KafkaActiveBrokersBelowMinimum",
                                 "exp_alerts": alerts if fires else []}]}


@pytest.mark.parametrize("brokers", [1, 3, 5])
def test_the_shipped_broker_alert_is_quiet_on_a_healthy_cluster_of_any_size_and_fires_on_a_loss(brokers, promtool,
                                                                                                 tmp_path):
    """The rule file `generate --out` writes: a healthy cluster of 1, 3 or 5 brokers never pages (it paged a
    3-broker cluster with `< 5` baked in); one broker lost pages, with and without the exporter's count."""
    cases = []
    for expected in (brokers, None):
        cases.append(broker_case(brokers, f"{brokers}x8", expected, False))
        cases.append(broker_case(brokers, f"{brokers}x2 {brokers - 1}x6", expected, True))
    run_promtool(promtool, tmp_path, RULES, cases)


def test_generated_thresholds_are_the_ones_the_annotations_state():
    """Every macro an alert's texts name is checked by its expr or its for, filled from one value:
    `--brokers-min 3` said 'fewer than 5', KafkaTargetDown waited 2m and said 'no data for 5m'."""
    import re

    from exporter.catalog import alerts
    from exporter.catalog.model import load_catalog
    catalog = load_catalog()
    texts = {t.alert.name: (t.problem, t.alert.description or t.description) for t in catalog.triggers}
    texts.update({t.alert.name: (t.problem, t.description) for t in catalog.groups.triggers})
    for params in ({}, {"brokers_min": 3, "election_latency_max_ms": 1234.0, "lag_seconds_max": 42.0},
                   {"hold_max": "10s", "scrape_interval": "5s"}):
        values = alerts.macro_values(catalog, **{k: v for k, v in params.items() if k != "scrape_interval"})
        checked = 0
        for rule in (r for g in alerts.render(catalog, **params)["groups"] for r in g["rules"]):
            annotations = " ".join(rule["annotations"].values())
            assert "{$" not in annotations and "{brokers_min}" not in rule["expr"], rule
            for m in alerts.PLACEHOLDER.finditer(" ".join(texts[rule["alert"]])):
                macro = "{$" + m.group(1) + "}"
                if macro == alerts.CLUSTER_GROUP:
                    continue
                value = values[macro]
                assert value in annotations, (rule["alert"], macro, value)
                as_numbers = {value, f"{float(value) / 100:g}" if re.fullmatch(r"[\d.]+", value) else value,
                              f"{1000 * alerts.duration_seconds(value):g}" if re.fullmatch(r"\d+[smhd]", value) else value}
                assert rule["for"] == value or any(n in rule["expr"] for n in as_numbers), (rule["alert"], macro)
                checked += 1
        assert checked >= 10
    three = {r["alert"]: r for g in alerts.render(catalog, brokers_min=3)["groups"] for r in g["rules"]}
    assert three["KafkaActiveBrokersBelowMinimum"]["expr"].endswith(" < 3")
    assert three["KafkaTargetDown"]["for"] == "5m" and "no data for 5m" in three["KafkaTargetDown"]["annotations"]["summary"]


def test_an_alert_text_naming_a_macro_it_does_not_check_is_refused(tmp_path):
    from exporter.catalog import alerts
    from exporter.catalog.model import CATALOG_PATH, load_catalog
    text = CATALOG_PATH.read_text()
    bound = 'expr: "kafkajmx_target_up == 0", for: "{$KAFKA.NODATA.TIMEOUT}"'
    assert bound in text
    (tmp_path / "catalog.yaml").write_text(text.replace(bound, 'expr: "kafkajmx_target_up == 0", for: 2m'))
    with pytest.raises(alerts.AlertError, match=r"KafkaTargetDown: its text names \{\$KAFKA.NODATA.TIMEOUT\}"):
        alerts.render(load_catalog(tmp_path / "catalog.yaml"))


def test_no_controller_data_counts_combined_nodes_as_controllers(promtool, tmp_path):
    """Combined nodes (process.roles=broker,controller) are the controllers of their cluster: the alert fires
    when they are up and none reports ActiveControllerCount, and stays quiet while they report it."""
    nodes = [{"cluster": "prod", "node": f"combined-{i}", "node_id": str(i), "role": "combined"} for i in (1, 2, 3)]
    up = [{"series": sel("kafkajmx_target_up", n), "values": "1x6"} for n in nodes]
    reporting = [{"series": sel(metric("active_controller_count"), n), "values": f"{int(i == 0)}x6"}
                 for i, n in enumerate(nodes)]
    rule = rules()["KafkaNoControllerData"]
    fired = {"exp_labels": {**C, **rule["labels"]},
             "exp_annotations": {"summary": expand(rule["annotations"]["summary"], C, None),
                                 "description": rule["annotations"]["description"]}}
    run_promtool(promtool, tmp_path, RULES, [
        {"interval": "1m", "input_series": up,
         "alert_rule_test": [{"eval_time": "5m", "alertname": "KafkaNoControllerData", "exp_alerts": [fired]}]},
        {"interval": "1m", "input_series": up + reporting,
         "alert_rule_test": [{"eval_time": "5m", "alertname": "KafkaNoControllerData", "exp_alerts": []}]}])


def test_every_window_holds_two_samples_at_the_documented_scrape_interval(tmp_path):
    """Prometheus 3's range windows are left-open: [30s] at a 15 s scrape holds two samples, [20s] one at some
    phases (rate() and changes() then have nothing). The README's quickstart scrapes every 15 s; a rehearsal's
    rules (windows capped at 10 s) need a 5 s scrape or shorter, and are refused for the README's 15 s."""
    import re

    from exporter.catalog import alerts
    from exporter.catalog.model import CATALOG_PATH, load_catalog
    readme = (ROOT / "README.md").read_text()
    assert f"scrape_interval: {alerts.SCRAPE_INTERVAL}" in readme
    catalog = load_catalog()
    windows = [w for g in alerts.render(catalog)["groups"] for r in g["rules"] for w in alerts.RANGE.findall(r["expr"])]
    assert min(alerts.duration_seconds(w) for w in windows) >= 2 * alerts.duration_seconds(alerts.SCRAPE_INTERVAL)
    with pytest.raises(alerts.AlertError, match=re.escape("KafkaControllerElection: its window [10s] holds fewer than "
                                                          "two samples at a scrape interval of 15s")):
        alerts.render(catalog, hold_max="10s")
    alerts.render(catalog, hold_max="10s", scrape_interval="5s")
    text = CATALOG_PATH.read_text()
    (tmp_path / "catalog.yaml").write_text(text.replace("changes({metric:app_start_time}[5m])",
                                                        "changes({metric:app_start_time}[20s])"))
    with pytest.raises(alerts.AlertError, match=r"KafkaRestarted: its window \[20s\].*scrape at most every 10s"):
        alerts.render(load_catalog(tmp_path / "catalog.yaml"))


@pytest.mark.parametrize("major", MAJORS)
def test_a_window_of_one_scrape_interval_sees_no_rate_on_prometheus_3(major, tmp_path):
    """Why the windows hold two samples: at a 1m interval, increase(x[1m]) at an evaluation on a sample has two
    samples on 2.x (closed window) and one on 3 (left-open): no result. [2m] has two on both."""
    rule = tmp_path / "rule.yml"
    rule.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "One", "expr": "increase(x[1m]) > 0"}, {"alert": "Two", "expr": "increase(x[2m]) > 0"}]}]}))
    fired = {"exp_labels": {"job": "j"}}
    case = {"interval": "1m", "input_series": [{"series": 'x{job="j"}', "values": "0+1x5"}],
            "alert_rule_test": [{"eval_time": "3m", "alertname": "One", "exp_alerts": [fired] if major == 2 else []},
                                {"eval_time": "3m", "alertname": "Two", "exp_alerts": [fired]}]}
    run_promtool(binary("promtool", major), tmp_path, rule, [case])
