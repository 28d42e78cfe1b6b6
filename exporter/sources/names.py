"""ObjectName text -> (domain, key properties in order), shared by the sources."""
from __future__ import annotations

import sys

from exporter.sample import shared_pair
from kafka_common.names import ObjectName


def split_object_name(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    name = ObjectName.parse(text)
    return sys.intern(name.domain), tuple(shared_pair(k, v) for k, v in name.props)
