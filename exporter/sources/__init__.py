"""Sources read one target's MBeans: embedded (in-process registries), jmx (real JMX/RMI through a
py4j JVM) and jolokia (HTTP). All yield exporter.sample.Collection."""
from __future__ import annotations

from typing import Protocol

from exporter.sample import Collection


class Source(Protocol):
    name: str

    def read(self) -> Collection: ...

    def close(self) -> None: ...
