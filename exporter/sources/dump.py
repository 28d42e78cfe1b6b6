"""A source over one node of a `kafka-jmx simulate --dump` file (for checking rules offline)."""
from __future__ import annotations

import time
from typing import Any

from exporter.sample import Collection, Sample, SourceError, flatten
from exporter.sources.names import split_object_name


class DumpSource:
    def __init__(self, name: str, node: dict[str, Any]) -> None:
        self.name = name
        self.node = node

    def read(self) -> Collection:
        if not self.node.get("alive", True):
            raise SourceError("connect", f"{self.name}: the node was not running at dump time")
        ts = time.time() * 1000.0
        samples: list[Sample] = []
        skipped: dict[str, int] = {}
        for on, attrs in self.node.get("mbeans", {}).items():
            domain, props = split_object_name(on)
            for attr, value in attrs.items():
                flatten(samples, skipped, domain, props, attr, value, ts)
        return Collection(samples, skipped)

    def close(self) -> None:
        pass
