"""ObjectName text -> (domain, key properties in order), shared by the sources."""
from __future__ import annotations

from broker.mbeans.names import ObjectName


def split_object_name(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    name = ObjectName.parse(text)
    return name.domain, name.props
