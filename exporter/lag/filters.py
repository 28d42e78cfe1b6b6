"""Which groups and topics a lag collection reads (kept apart from the reader: the daemon builds
them without loading librdkafka)."""
from __future__ import annotations

import re


class Filter:
    """allow / deny regular expressions, matched against the whole name (as kafka_exporter does)."""

    def __init__(self, allow: str = ".*", deny: str | None = None) -> None:
        self.allow = re.compile(allow)
        self.deny = re.compile(deny) if deny else None

    def __call__(self, name: str) -> bool:
        return bool(self.allow.fullmatch(name)) and not (self.deny and self.deny.fullmatch(name))
