"""The 8.0 export format, checked on paper: no Zabbix 8.0 runs here (Debian has none), so the 8.0 file is held
to Zabbix 8.0's own import rules (ui/include/classes/import/validators/C80XmlValidator.php in its 8.0 source) for
every key and constant it uses, and to the converters that carry a 7.0 file to 8.0 (C70, C72 and
C74ImportConverter: they change clock and top-hosts widgets, maps, host inventory and the version only), so
it must equal the 7.0 file that a real Zabbix 7.0 imports in test_zabbix_templates, version aside."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from exporter.catalog import zabbix
from exporter.catalog.model import load_catalog

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "zabbix"

# Constant names 8.0 accepts (CXmlConstantName), where our file uses a constant.
ITEM_TYPES = {"ZABBIX_PASSIVE", "TRAP", "SIMPLE", "INTERNAL", "ZABBIX_ACTIVE", "EXTERNAL", "ODBC", "IPMI", "SSH",
              "TELNET", "CALCULATED", "JMX", "SNMP_TRAP", "DEPENDENT", "HTTP_AGENT", "SNMP_AGENT", "SCRIPT", "BROWSER"}
DRULE_TYPES = ITEM_TYPES - {"CALCULATED", "SNMP_TRAP"} | {"NESTED"}
VALUE_TYPES = {"FLOAT", "CHAR", "LOG", "UNSIGNED", "TEXT", "BINARY"}
STEP_TYPES = {"MULTIPLIER", "RTRIM", "LTRIM", "TRIM", "REGEX", "BOOL_TO_DECIMAL", "OCTAL_TO_DECIMAL", "HEX_TO_DECIMAL",
              "SIMPLE_CHANGE", "CHANGE_PER_SECOND", "XMLPATH", "JSONPATH", "IN_RANGE", "MATCHES_REGEX",
              "NOT_MATCHES_REGEX", "CHECK_JSON_ERROR", "CHECK_XML_ERROR", "CHECK_REGEX_ERROR", "CHECK_NOT_SUPPORTED",
              "DISCARD_UNCHANGED", "DISCARD_UNCHANGED_HEARTBEAT", "JAVASCRIPT", "PROMETHEUS_PATTERN",
              "PROMETHEUS_TO_JSON", "CSV_TO_JSON", "STR_REPLACE", "XML_TO_JSON", "SNMP_WALK_VALUE",
              "SNMP_WALK_TO_JSON", "SNMP_GET_VALUE"}
# steps whose parameters 8.0 reads (it drops the others' parameters)
STEPS_WITH_PARAMETERS = STEP_TYPES - {"BOOL_TO_DECIMAL", "OCTAL_TO_DECIMAL", "HEX_TO_DECIMAL", "SIMPLE_CHANGE",
                                      "CHANGE_PER_SECOND", "DISCARD_UNCHANGED", "XML_TO_JSON"}
PRIORITIES = {"NOT_CLASSIFIED", "INFO", "WARNING", "AVERAGE", "HIGH", "DISASTER"}
YES_NO = {"YES", "NO"}
WIDGET_FIELD_TYPES = {"INTEGER", "STRING", "HOST", "ITEM", "ITEM_PROTOTYPE", "GRAPH", "GRAPH_PROTOTYPE", "MAP",
                      "SERVICE", "SLA", "USER", "ACTION", "MEDIA_TYPE"}

# A rule: {key: spec}; a key starting with "!" is required. A spec is None (a string), a set (a constant from it),
# a dict (an object), a one-element list (an indexed array of that spec), or When (a key 8.0 reads only when
# another key of the same object has one of some values, and drops silently otherwise: a loss unless empty).


class When:
    def __init__(self, key: str, values: set[str], spec: Any = None) -> None:
        self.key, self.values, self.spec = key, values, spec


# what 8.0 assumes for a key left out, before it reads the keys that depend on it
DEFAULTS = {"type": "ZABBIX_PASSIVE", "value_type": "UNSIGNED", "evaltype": "AND_OR"}


TAGS = [{"!tag": None, "value": None}]
PREPROCESSING = [{"!type": STEP_TYPES, "parameters": When("type", STEPS_WITH_PARAMETERS, [None]),
                  "error_handler": None, "error_handler_params": None}]
CREDENTIALS = {"SIMPLE", "ODBC", "SSH", "TELNET", "JMX"}
NUMERIC = {"FLOAT", "UNSIGNED"}
TRIGGER = {"uuid": None, "!expression": None, "recovery_mode": None, "recovery_expression": None,
           "correlation_mode": None, "correlation_tag": None, "!name": None, "event_name": None, "opdata": None,
           "url_name": None, "url": None, "status": {"ENABLED", "DISABLED"}, "priority": PRIORITIES,
           "description": None, "type": {"SINGLE", "MULTIPLE"}, "manual_close": YES_NO,
           "dependencies": [{"!name": None, "!expression": None, "recovery_expression": None}], "tags": TAGS}
GRAPH = {"uuid": None, "!name": None, "width": None, "height": None, "yaxismin": None, "yaxismax": None,
         "show_work_period": YES_NO, "show_triggers": YES_NO, "type": {"NORMAL", "STACKED", "PIE", "EXPLODED"},
         "show_legend": YES_NO, "show_3d": YES_NO, "percent_left": None, "percent_right": None,
         "!graph_items": [{"sortorder": None, "drawtype": None, "color": None, "yaxisside": {"LEFT", "RIGHT"},
                           "calc_fnc": {"MIN", "AVG", "MAX", "ALL", "LAST"}, "type": {"SIMPLE", "GRAPH_SUM"},
                           "!item": {"!host": None, "!key": None}}]}


def _item(types: set[str]) -> dict[str, Any]:
    return {"uuid": None, "!name": None, "type": types, "!key": None, "delay": None, "history": None,
            "value_type": VALUE_TYPES, "trends": When("value_type", NUMERIC), "status": {"ENABLED", "DISABLED"},
            "units": When("value_type", NUMERIC), "params": When("type", {"ODBC", "SSH", "TELNET", "CALCULATED",
                                                                          "SCRIPT", "BROWSER"}),
            "username": When("type", CREDENTIALS), "password": When("type", CREDENTIALS), "description": None,
            "valuemap": When("value_type", {"FLOAT", "CHAR", "UNSIGNED"}, {"!name": None}),
            "preprocessing": PREPROCESSING, "jmx_endpoint": When("type", {"JMX"}), "tags": TAGS}


ITEM = {**_item(ITEM_TYPES), "inventory_link": None, "triggers": [TRIGGER]}
ITEM_PROTOTYPE = {**_item(ITEM_TYPES), "discover": {"DISCOVER", "NO_DISCOVER"},
                  "trigger_prototypes": [{**TRIGGER, "discover": {"DISCOVER", "NO_DISCOVER"}}]}
DISCOVERY_RULE = {**{k: v for k, v in _item(DRULE_TYPES).items() if k not in ("value_type", "trends", "units",
                                                                              "valuemap", "tags")},
                  "filter": {"evaltype": {"AND_OR", "AND", "OR", "FORMULA"},
                             "formula": When("evaltype", {"FORMULA"}),
                             "conditions": [{"!macro": None, "value": None,
                                             "operator": {"MATCHES_REGEX", "NOT_MATCHES_REGEX", "EXISTS",
                                                          "NOT_EXISTS"},
                                             "formulaid": None}]},
                  "lifetime_type": {"DELETE_AFTER", "DELETE_NEVER", "DELETE_IMMEDIATELY"}, "lifetime": None,
                  "item_prototypes": [ITEM_PROTOTYPE], "graph_prototypes": [{**GRAPH, "discover": None}]}
WIDGET = {"!type": None, "name": None, "x": None, "y": None, "width": None, "height": None, "hide_header": YES_NO,
          "fields": [{"!type": WIDGET_FIELD_TYPES, "!name": None, "!value": object}]}
TEMPLATE = {"!uuid": None, "!template": None, "name": None, "description": None, "wizard_ready": YES_NO,
            "readme": None, "vendor": {"!name": None, "!version": None}, "templates": [{"!name": None}],
            "!groups": [{"!name": None}], "items": [ITEM], "discovery_rules": [DISCOVERY_RULE], "tags": TAGS,
            "macros": [{"!macro": None, "type": {"TEXT", "SECRET_TEXT", "VAULT"}, "value": None, "description": None}],
            "dashboards": [{"!uuid": None, "!name": None, "display_period": None, "auto_start": YES_NO,
                            "pages": [{"name": None, "display_period": None, "widgets": [WIDGET]}]}],
            "valuemaps": [{"!uuid": None, "!name": None,
                           "!mappings": [{"type": None, "value": None, "!newvalue": None}]}]}
EXPORT = {"!version": {"8.0"}, "template_groups": [{"!uuid": None, "!name": None}], "templates": [TEMPLATE],
          "triggers": [TRIGGER], "graphs": [GRAPH]}


def problems(node: Any, spec: Any, where: str) -> list[str]:
    """Where node breaks the 8.0 rule spec: unknown or missing keys, constants 8.0 does not know, values it
    would drop."""
    if spec is object:
        return []
    if spec is None:
        return [] if isinstance(node, (str, int, float)) else [f"{where}: a string expected"]
    if isinstance(spec, set):
        return [] if node in spec else [f"{where}: {node!r} is not one of 8.0's {sorted(spec)}"]
    if isinstance(spec, list):
        if not isinstance(node, list):
            return [f"{where}: a list expected"]
        return [p for i, x in enumerate(node) for p in problems(x, spec[0], f"{where}[{i}]")]
    if not isinstance(node, dict):
        return [f"{where}: an object expected"]
    known = {k.lstrip("!"): v for k, v in spec.items()}
    out = [f"{where}: {k[1:]} is required" for k in spec if k.startswith("!") and k[1:] not in node]
    for key, value in node.items():
        if key not in known:
            out.append(f"{where}.{key}: 8.0 has no such key here")
            continue
        rule = known[key]
        if isinstance(rule, When):
            decided_by = node.get(rule.key, DEFAULTS[rule.key])
            if decided_by not in rule.values:
                if value in ("", [""]):             # nothing lost: Zabbix's own exports carry these
                    continue
                out.append(f"{where}.{key}: 8.0 drops it when {rule.key} is {decided_by!r}")
                continue
            rule = rule.spec
        out += problems(value, rule, f"{where}.{key}")
    return out


def _load(version: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((TEMPLATES / f"kafka-4x-{version}.yaml").read_text(encoding="utf-8"))
    return doc


def test_the_80_file_keeps_to_zabbix_80s_import_rules():
    doc = _load("8.0")
    assert list(doc) == ["zabbix_export"]
    assert problems(doc["zabbix_export"], EXPORT, "zabbix_export") == []


def test_the_rules_check_finds_what_80_would_refuse_or_drop():
    """The check can fail: each kind of fault it looks for, planted in a copy of the 8.0 file, is named."""
    doc = _load("8.0")["zabbix_export"]
    bad = copy.deepcopy(doc)
    template = bad["templates"][0]
    item = next(i for i in template["items"] if i["type"] == "JMX" and i.get("units"))
    item["snmp_community"] = "public"                           # gone since 6.0
    item["value_type"] = "TEXT"                                 # then units and trends are dropped
    del template["groups"]
    rule = template["discovery_rules"][0]
    rule["item_prototypes"][0]["trigger_prototypes"] = [{"name": "x", "expression": "1", "priority": "SEVERE"}]
    found = problems(bad, EXPORT, "zabbix_export")
    assert "zabbix_export.templates[0]: groups is required" in found
    assert any(p.endswith(".snmp_community: 8.0 has no such key here") for p in found)
    assert any(p.endswith(".units: 8.0 drops it when value_type is 'TEXT'") for p in found)
    assert any("'SEVERE' is not one of 8.0's" in p for p in found)


def test_the_80_file_is_the_70_file_that_zabbix_converts_to_80():
    """Zabbix's own 7.0 -> 8.0 converters touch clock and top-hosts widgets, maps and hosts only: our 7.0 file
    has none of them, so its 8.0 form is the same objects under version 8.0."""
    old, new = _load("7.0")["zabbix_export"], _load("8.0")["zabbix_export"]
    assert "maps" not in old and "hosts" not in old
    widgets = {w["type"] for t in old["templates"] for d in t.get("dashboards", []) for p in d["pages"]
               for w in p["widgets"]}
    assert widgets == {"graph", "graphprototype"}
    assert {**old, "version": "8.0"} == new


def test_every_export_format_is_generated_and_an_unknown_one_is_refused():
    catalog = load_catalog()
    assert zabbix.VERSIONS == ("6.0", "7.0", "8.0")
    for version in zabbix.VERSIONS:
        assert (TEMPLATES / f"kafka-4x-{version}.yaml").read_text(encoding="utf-8") == \
            zabbix.serialize(zabbix.render(catalog, version))
    try:
        zabbix.render(catalog, "7.4")
    except ValueError as e:
        assert "use one of 6.0, 7.0, 8.0" in str(e)
    else:
        raise AssertionError("7.4 is not an export format of ours")
