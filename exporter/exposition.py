"""The Prometheus text exposition of the rule-made series, rendered incrementally.

prometheus_client's generate_latest builds a Sample and sorts and escapes its labels for every
series on every render: 1.8 s for 100k series, most of it repeating work for series whose name and
labels have not changed since the last collection. Here each target renders its own families
right after its collection, on its own thread; a family whose series are the same as last time
reuses its last lines up to their values (name and labels escaped once, no separate cache to
hold), and only the values are formatted again. Assembling /metrics then joins the targets'
chunks under one HELP/TYPE header per family. The output is byte for byte what generate_latest
writes for the same families (a test holds it to that).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.utils import floatToGoString

from exporter.rules import MatchedSample, MetricType

Labels = tuple[tuple[str, str], ...]


@dataclass
class FamilyChunk:
    """One target's samples of one family, as exposition lines."""

    type: MetricType
    help: str
    lines: bytes


def _label_value(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def series_line(name: str, labels: Mapping[str, str], value: float) -> bytes:
    """One exposition line, labels sorted by name as the rule-made series have them."""
    text = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{text}}} {floatToGoString(value)}\n".encode() if text else f"{name} {floatToGoString(value)}\n".encode()


def sample_name(name: str, mtype: MetricType) -> str:
    # a counter family is named without _total and its samples carry it (prometheus_client and client_java 1.x)
    if mtype is MetricType.COUNTER:
        return name if name.endswith("_total") else name + "_total"
    return name


def header(name: str, mtype: MetricType, help_: str) -> bytes:
    shown = sample_name(name, mtype)
    doc = help_.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {shown} {doc}\n# TYPE {shown} {mtype.value}\n".encode()


class TargetSeries:
    """Renders one target's matched samples into family chunks, reusing last render's line prefixes."""

    def __init__(self, constant_labels: Mapping[str, str]) -> None:
        self.constant_labels = dict(constant_labels)
        # sample name -> the label sets, lines (and MBeans, when they tell series apart) of the last
        # render, whose prefixes are reused
        self._last: dict[str, tuple[list[Labels], bytes, list[str] | None]] = {}

    def count(self, sample_name: str) -> int:
        """The series of one sample name in the last render (0 when it had none)."""
        last = self._last.get(sample_name)
        return len(last[0]) if last else 0

    def _prefix(self, sample_name: str, labels: Labels, object_name: str | None) -> str:
        # the rule's own labels win over the target's (a Kafka client rule's node_id stays)
        merged = dict(self.constant_labels)
        merged.update(labels)
        if object_name is not None:
            merged["_objectname"] = object_name
        if not merged:
            return sample_name + " "
        text = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(merged.items()))
        return f"{sample_name}{{{text}}} "

    def render(self, samples: Iterable[MatchedSample]) -> dict[str, FamilyChunk]:
        groups: dict[str, tuple[list[Any], list[MatchedSample]]] = {}
        for m in samples:
            g = groups.get(m.name)
            if g is None:
                groups[m.name] = ([m.type, m.help], [m])
            else:
                if g[0][0] is not m.type:
                    g[0][0] = MetricType.UNTYPED
                g[1].append(m)
        new: dict[str, tuple[list[Labels], bytes, list[str] | None]] = {}
        chunks = {}
        for name, ((mtype, help_), members) in groups.items():
            chunks[name] = FamilyChunk(mtype, help_, self._lines(name, mtype, members, new))
        self._last = new          # only families still present are kept
        return chunks

    def _lines(self, name: str, mtype: MetricType, members: list[MatchedSample], new: dict[str, Any]) -> bytes:
        shown = sample_name(name, mtype)
        labels = [m.labels for m in members]
        last = self._last.get(shown)
        if last is not None and last[0] == labels and (last[2] is None or last[2] == [m.object_name for m in members]):
            # the same series as last time: each line's prefix is the old line up to its value
            prefixes = [line[:line.rindex(b" ") + 1] for line in last[1].split(b"\n")[:-1]]
            beans = last[2]
        else:
            texts = [self._prefix(shown, m.labels, None) for m in members]
            beans = None
            if len(set(texts)) < len(texts):
                # jmx_exporter 1.x tells series with equal names and labels apart by their MBean
                beans = [m.object_name for m in members]
                texts = [self._prefix(shown, m.labels, bean) for m, bean in zip(members, beans)]
            prefixes = [t.encode() for t in texts]
        lines = b"".join([p + floatToGoString(m.value).encode() + b"\n" for p, m in zip(prefixes, members)])
        new[shown] = (labels, lines, beans)
        return lines


def retyped(name: str, chunk: FamilyChunk, mtype: MetricType) -> bytes:
    """The chunk's lines under another type (another target typed the family differently): only
    the sample name at the start of each line changes."""
    old, new = sample_name(name, chunk.type).encode(), sample_name(name, mtype).encode()
    return b"".join(new + line[len(old):] + b"\n" for line in chunk.lines.splitlines())


def assemble(fragments: Iterable[dict[str, FamilyChunk]], tail: bytes = b"") -> list[bytes]:
    """All targets' chunks, one HELP/TYPE per family, families sorted by name, then `tail`: the
    parts of the exposition, written out one after the other (not joined: no second copy)."""
    families: dict[str, list[FamilyChunk]] = {}
    for chunks in fragments:
        for name, chunk in chunks.items():
            families.setdefault(name, []).append(chunk)
    parts = []
    for name in sorted(families):
        members = families[name]
        mtype = members[0].type
        if any(c.type is not mtype for c in members):
            mtype = MetricType.UNTYPED
        parts.append(header(name, mtype, members[0].help))
        for chunk in members:
            parts.append(chunk.lines if chunk.type is mtype else retyped(name, chunk, mtype))
    parts.append(tail)
    return parts
