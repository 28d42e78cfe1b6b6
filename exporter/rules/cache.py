"""What a first evaluation of the rules learned per attribute, so later collections skip the regexes."""
from __future__ import annotations

from typing import Any, NamedTuple

from exporter.rules.model import MetricType

NO_RULE = -1


class CacheEntry(NamedTuple):
    """The rules' answer for one attribute. Ints and strings only: the garbage collector stops tracking such
    tuples, and a large cluster has millions."""

    retry: tuple[int, ...]       # the value-reading rules before the match: tried again with each new value
    rule: int                    # the cached rule that matched, or NO_RULE
    name: str
    labels: tuple[tuple[str, str], ...]
    help: str                    # "" when the rule has no help (the default help names the bean)
    object_name: str
    type: MetricType


UNMATCHED = CacheEntry((), NO_RULE, "", (), "", "", MetricType.UNTYPED)
"""No rule matches the attribute, whatever its value."""

Key = tuple[Any, ...]


class RuleCache:
    """Cached matches of one target's attributes. Evicting: `old` from the last collection is read,
    what this collection uses is copied to `new`, and `new` replaces `old` at the end of it."""

    def __init__(self, evicting: bool = True) -> None:
        self.old: dict[Key, CacheEntry] = {}
        self.new: dict[Key, CacheEntry] = {} if evicting else self.old
        self.evicting = evicting

    def end_collection(self) -> None:
        if self.evicting:
            self.old, self.new = self.new, {}
