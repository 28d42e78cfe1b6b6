"""Where scripts/install-realkafka put the jars, by Kafka line."""
from __future__ import annotations

import os
import re
from pathlib import Path

# the Kafka lines the toolkit is tested on: the seed deck's and the newest 4.x on Maven Central;
# the exact versions are pinned in pom.xml
LINES = ("4.1", "4.4")
DEFAULT_LINE = "4.1"


class NotInstalled(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("KAFKA_JMX_CACHE", Path.home() / ".cache" / "kafka-jmx")) / "realkafka"


def line_of(version: str) -> str:
    """'4.1', '4.1.1' -> '4.1'; anything else is refused with the lines there are."""
    m = re.fullmatch(r"(\d+\.\d+)(\.\d+)?", version.strip())
    if not m or m.group(1) not in LINES:
        raise ValueError(f"no real Kafka {version!r} here (tested lines: {', '.join(LINES)})")
    line = m.group(1)
    if m.group(2) and exact_version(line) != version.strip():
        raise ValueError(f"Kafka {version} is not the pinned {exact_version(line)} (realkafka/pom.xml)")
    return line


def profile_dir(profile: str, what: str) -> Path:
    """The folder scripts/install-realkafka filled for a pom profile (its stamp says it finished)."""
    d = cache_root() / profile
    if not (d / ".stamp").is_file():
        raise NotInstalled(f"{what} is not installed: run scripts/install-realkafka (Maven)")
    return d


def lib_dir(line: str) -> Path:
    return profile_dir(f"kafka-{line}", f"real Kafka {line}")


def exact_version(line: str) -> str:
    """The pinned version of a line, read off its kafka_2.13 jar name."""
    for jar in lib_dir(line).glob("kafka_2.13-*.jar"):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    raise NotInstalled(f"real Kafka {line}: no kafka_2.13 jar in {lib_dir(line)}")


def classpath(line: str) -> str:
    return str(lib_dir(line) / "*")


def tool_jar(prefix: str, profile: str = "tools") -> Path:
    """jmx_prometheus_httpserver-*.jar, jmx_prometheus_javaagent-*.jar or jolokia-agent-jvm-*-javaagent.jar
    (profile agent-0.20: jmx_exporter 0.20.0's agent)."""
    d = cache_root() / profile
    for jar in sorted(d.glob(f"{prefix}*.jar")):
        return jar
    raise NotInstalled(f"{prefix}*.jar is not installed: run scripts/install-realkafka (Maven)")
