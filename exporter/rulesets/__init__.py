"""Rule sets shipped with the exporter."""
from __future__ import annotations

import importlib.resources

from exporter.rules import RuleSet


def builtin_rules() -> RuleSet:
    """The Kafka 4.x rules (Strimzi names)."""
    text = importlib.resources.files("exporter.rulesets").joinpath("kafka-4x.yml").read_text(encoding="utf-8")
    return RuleSet.from_yaml(text, "builtin:kafka-4x.yml")
