"""kafka-jmx rules explain: the rule (file and line) that makes a series, and each earlier rule's verdict."""
import json
import subprocess
import sys

from conftest import ROOT, make_cluster

from exporter.rules import RuleSet
from exporter.rules.explain import explain
from exporter.rulesets import builtin_rules
from exporter.sources.dump import DumpSource

BUILTIN = (ROOT / "exporter" / "rulesets" / "kafka-4x.yml").read_text().splitlines()


def nodes_of(dump: dict) -> dict:
    return {name: DumpSource(name, node).read().samples for name, node in dump["nodes"].items()}


def test_a_series_is_traced_to_its_rule_and_line():
    dump = make_cluster(topics=()).snapshot()
    found, lines = explain(builtin_rules(), "kafka_controller_kafkacontroller_activecontrollercount", nodes_of(dump))
    assert found and lines[0].startswith("kafka_controller_kafkacontroller_activecontrollercount: 3 series on 3")
    deciding = next(line for line in lines if "it decides" in line)
    line_no = int(deciding.split(" line ")[1].split(")")[0])
    pattern = lines[lines.index(deciding) + 1].split("pattern: ", 1)[1]
    assert pattern in BUILTIN[line_no - 1], (line_no, BUILTIN[line_no - 1])         # the line the rule starts on
    earlier = [line for line in lines if "its pattern does not match" in line]
    assert len(earlier) == int(deciding.split()[1])           # every rule before it, in order
    assert any("match string: kafka.controller<type=KafkaController, name=ActiveControllerCount><>Value" in line
               for line in lines)


def test_an_unknown_name_is_not_found_and_close_names_are_offered():
    dump = make_cluster(topics=()).snapshot()
    found, lines = explain(builtin_rules(), "kafka_controller_kafkacontroller_activecontrolercount", nodes_of(dump))
    assert not found and "kafka_controller_kafkacontroller_activecontrollercount" in lines[0]


def test_an_objectname_shows_what_each_attribute_becomes_and_why_not():
    rules = RuleSet.from_yaml("rules:\n"
                              "- pattern: 'app<type=A><>State: (.*)'\n  name: app_state\n  value: $1\n"
                              "- pattern: 'app<type=A><>(\\w+)'\n  name: app_$1\n  type: GAUGE\n", "mine.yml")
    dump = {"nodes": {"n1": {"role": "broker", "node_id": 1, "mbeans": {"app:type=A": {"State": "RUNNING", "Size": 4}}}}}
    found, lines = explain(rules, "app:type=A", nodes_of(dump))
    text = "\n".join(lines)
    assert found and "app:type=A State = 'RUNNING'" in text
    assert "rule 0 (mine.yml line 2): it matches, but the value 'RUNNING' is not a number (value: '$1')" in text
    assert "rule 0 (mine.yml line 2): its pattern does not match" in text        # for Size
    assert "rule 1 (mine.yml line 5): it matches first: it decides" in text and "app_Size{} 4.0" in text
    found, lines = explain(rules, "app_Size", nodes_of(dump))
    assert found and "rule 1 (mine.yml line 5): it matches first: it decides" in "\n".join(lines)


def test_the_command_reads_a_dump_and_says_when_nothing_matches(tmp_path):
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(make_cluster(topics=()).snapshot()))
    ok = subprocess.run([sys.executable, "-m", "kafka_jmx", "rules", "explain", "kafka.controller:type=KafkaController,*",
                         "--mbeans", str(dump), "--node", "controller-1001"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "on controller-1001" in ok.stdout and "it decides" in ok.stdout, ok.stderr
    missing = subprocess.run([sys.executable, "-m", "kafka_jmx", "rules", "explain", "nope_series", "--mbeans", str(dump)],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 1 and "no series named nope_series" in missing.stdout
