"""Seeded fuzzing of every input the exporter parses: a bad input is a clear error or a counted skip,
never a crash and never a half-built config."""
from __future__ import annotations

import math
import random
from importlib import resources
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import DaemonConfig, load_config
from exporter.exposition import TargetSeries, assemble
from exporter.rules import RuleError, RuleSet
from exporter.sample import Collection, Sample
from exporter.sources.jolokia import JolokiaSource
from kafka_common.yamlconf import ConfigError

CONFIG = """\
cluster: prod
collection: {interval: 15s, timeout: 5s}
include: ["kafka.*:*"]
exclude: ["kafka.log:*"]
prometheus: {listen: "127.0.0.1:9555"}
targets:
  - name: c1
    role: controller
    node_id: 1001
    jmx: {url: "service:jmx:rmi:///jndi/rmi://h:9999/jmxrmi"}
  - name: b1
    role: broker
    node_id: 1
    jolokia: {url: "http://h:8778/jolokia/"}
    labels: {rack: a}
    interval: 30s
"""

WEIRD_SCALARS = ["", "~", "null", "-1", "0", "1e400", "NaN", ".inf", "true", "[", "{", "'", '"', "*", "&a", "*a",
                 "!!python/object:os.system", "- x", "a: b", "\t", "999999999999999999999999", "0x1F", "15x",
                 "service:jmx:", "http://", "127.0.0.1:99999", "😀", "\\u0000"]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines)) if lines else 0
        op = rng.randrange(6)
        if not lines:
            lines = [rng.choice(WEIRD_SCALARS)]
        elif op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2 and ":" in lines[i]:
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {rng.choice(WEIRD_SCALARS)}"
        elif op == 3:
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + rng.choice(WEIRD_SCALARS) + lines[i][cut:]
        elif op == 4:
            lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        else:
            lines = lines[:i]
    return "\n".join(lines) + "\n"


def test_config_loader_fuzz_gives_a_whole_config_or_a_located_error():
    rng = random.Random(20261125)
    outcomes = {"config": 0, "error": 0}
    for _ in range(600):
        text = mutate(CONFIG, rng)
        try:
            cfg = load_config(text, "fuzz.yml")
        except ConfigError as e:
            assert e.problems, text
            assert all(p.startswith("fuzz.yml:") for p in e.problems), (text, e.problems)
            outcomes["error"] += 1
            continue
        assert isinstance(cfg, DaemonConfig)
        assert all(t.source.kind in ("jmx", "jolokia") and t.interval_s > 0 for t in cfg.targets), text
        outcomes["config"] += 1
    # Both branches must be exercised, or the fuzzer tests nothing.
    assert outcomes["config"] > 20 and outcomes["error"] > 100, outcomes


@pytest.mark.slow
def test_rules_loader_fuzz_gives_a_ruleset_or_a_located_error():
    text = resources.files("exporter.rulesets").joinpath("kafka-4x.yml").read_text()
    rng = random.Random(7)
    outcomes = {"rules": 0, "error": 0}
    probe = Sample("kafka.server", (("type", "ReplicaManager"), ("name", "LeaderCount")), (), "Value", 3, 0.0)
    for _ in range(400):
        mutated = mutate(text, rng)
        try:
            rs = RuleSet.from_yaml(mutated, "fuzz-rules.yml")
        except ConfigError as e:
            assert all(p.startswith("fuzz-rules.yml:") for p in e.problems), e.problems
            outcomes["error"] += 1
            continue
        rs.match(probe)
        outcomes["rules"] += 1
    assert outcomes["rules"] > 20 and outcomes["error"] > 20, outcomes


def test_scenario_loader_fuzz_gives_a_scenario_or_a_located_error():
    from broker.scenario import Scenario, bundled_scenario, load_scenario
    rng = random.Random(20261201)
    outcomes = {"scenario": 0, "error": 0}
    for name in ("demo.yaml", "rehearsal.yaml"):
        text = bundled_scenario(name)
        for _ in range(300):
            mutated = mutate(text, rng)
            try:
                scenario = load_scenario(mutated, "fuzz-scenario.yaml")
            except ConfigError as e:
                assert e.problems and all(p.startswith("fuzz-scenario.yaml:") for p in e.problems), (mutated, e.problems)
                outcomes["error"] += 1
                continue
            assert isinstance(scenario, Scenario) and scenario.brokers >= 1 and scenario.controllers >= 1, mutated
            outcomes["scenario"] += 1
    assert outcomes["scenario"] > 50 and outcomes["error"] > 100, outcomes


def test_catalog_loader_fuzz_gives_a_catalog_or_a_located_error(tmp_path):
    from exporter.catalog.model import CATALOG_PATH, Catalog, load_catalog
    rng = random.Random(11)
    text = CATALOG_PATH.read_text()
    outcomes = {"catalog": 0, "error": 0}
    path = tmp_path / "fuzz-catalog.yaml"
    for _ in range(60):
        path.write_text(mutate(text, rng))
        try:
            catalog = load_catalog(path)
        except ConfigError as e:
            assert e.problems and all(p.startswith(f"{path}:") for p in e.problems), e.problems
            outcomes["error"] += 1
            continue
        assert isinstance(catalog, Catalog)
        outcomes["catalog"] += 1
    assert outcomes["catalog"] > 5 and outcomes["error"] > 5, outcomes


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 10**400, -(10**400), 3.5])
    if kind == 3:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308])
    if kind == 4:
        return rng.choice(["", "ERROR: java.lang.UnsupportedOperationException", "12", "kafka.server:type=x", "😀"])
    if kind == 5:
        return rng.choice(["kafka.server:type=ReplicaManager,name=LeaderCount", "not an object name", ":", "d:k=v,,"])
    if kind == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["status", "value", "error", "Value", "Count", "kafka.server:type=X,name=Y", "k", "",
                        "a:b=c"]): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def jolokia_answer(rng: random.Random) -> Any:
    beans = {rng.choice(["kafka.server:type=ReplicaManager,name=LeaderCount", "kafka.controller:type=KafkaController,"
                         "name=ActiveBrokerCount", "bad", "d:k=v", "d:"]): random_json(rng, 1) for _ in range(3)}
    return rng.choice([
        {"status": 200, "value": beans},
        {"status": 200, "value": random_json(rng)},
        {"status": rng.choice([404, 500, "200", None]), "error": random_json(rng), "error_type": random_json(rng)},
        random_json(rng),
    ])


def test_jolokia_answers_fuzz_are_parsed_or_counted_and_every_value_renders():
    source = JolokiaSource("fuzz", "http://127.0.0.1:1/jolokia/", includes=["kafka.*:*", "kafka.server:type=X,name=Y"])
    rules = RuleSet.from_yaml(resources.files("exporter.rulesets").joinpath("kafka-4x.yml").read_text())
    default = RuleSet.from_yaml("{}\n")
    rng = random.Random(4)
    seen = {"samples": 0, "skipped": 0, "matched": 0, "refused": 0}
    for _ in range(2000):
        collection = source.parse([jolokia_answer(rng) for _ in range(rng.randint(0, 3))])
        assert isinstance(collection, Collection)
        for s in collection.samples:
            assert isinstance(s.value, (int, float, str, bool)), s
        seen["samples"] += len(collection.samples)
        seen["skipped"] += sum(collection.skipped.values())
        for rs in (rules, default):
            try:
                matched = rs.apply(collection.samples)
            except RuleError as e:           # a negative counter fails the collection, as in jmx_exporter
                assert "is negative" in str(e)
                seen["refused"] += 1
                continue
            for m in matched:
                assert isinstance(m.value, float)
                seen["matched"] += 1
    assert min(seen["samples"], seen["skipped"], seen["matched"]) > 100 and seen["refused"] >= 1, seen


@pytest.mark.parametrize("raw", [10**400, -(10**400), 2**1024, float("nan"), float("inf"), -float("inf"), 1e308,
                                 True, "12", "NaN", "", "x" * 10_000])
def test_extreme_jmx_values_give_a_number_or_are_left_out(raw):
    s = Sample("kafka.server", (("type", "ReplicaManager"), ("name", "LeaderCount")), (), "Value", raw, 0.0)
    for rs in (RuleSet.from_yaml("{}\n"),
               RuleSet.from_yaml("rules:\n  - pattern: 'kafka.server<type=(.+), name=(.+)><>Value'\n"
                                 "    name: kafka_server_$1_$2\n    valueFactor: 0.001\n")):
        m = rs.match(s)
        if isinstance(raw, str):
            assert m is None
            continue
        assert m is not None and isinstance(m.value, float)
        if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > 1e308:
            assert math.isinf(m.value) and (m.value > 0) == (raw > 0)
        series = TargetSeries({"node": "b1"})
        text = b"".join(assemble([series.render([m])])).decode()
        [family] = text_string_to_metric_families(text)
        [parsed] = family.samples
        assert parsed.value == m.value or (math.isnan(parsed.value) and math.isnan(m.value))
