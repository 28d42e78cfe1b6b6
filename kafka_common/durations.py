"""Durations ('10s', '500ms') and sizes ('100MB', '64KiB') as written in scenarios and configs."""
from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0, None: 1000.0}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_UNIT_BYTES = {"B": 1, None: 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def parse_duration_ms(value: Any) -> float:
    """'10s', '500ms', '2m', '1h'; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 10s or 500ms, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value) * 1000.0
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration like 10s or 500ms, got {value!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_bytes(value: Any) -> float:
    """'100MB', '64KiB', '1GB'; a bare number is bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 100MB or 64KiB, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _BYTES.match(str(value))
    if not m:
        raise ValueError(f"expected a size like 100MB or 64KiB, got {value!r}")
    return float(m.group(1)) * _UNIT_BYTES[m.group(2)]
