"""Prometheus names as jmx_exporter 1.x and client_java make them."""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-zA-Z0-9:_]")
_UNDERSCORES = re.compile(r"__+")
_RESERVED_SUFFIXES = ("_total", "_created", "_bucket", "_info")


def safe_name(text: str) -> str:
    name = _UNDERSCORES.sub("_", _UNSAFE.sub("_", text))
    return "_" + name if name[:1].isdigit() else name


def snake_case(name: str) -> str:
    """jmx_exporter's attrNameSnakeCase: '_' before an upper-case letter that follows neither an
    upper-case letter nor '_', everything lower-cased (testTCPTest -> test_tcptest)."""
    if not name:
        return name
    out = [name[0].lower()]
    prev = name[0].isupper() or name[0] == "_"
    for c in name[1:]:
        upper = c.isupper()
        if upper and not prev:
            out.append("_")
        out.append(c.lower())
        prev = upper or c == "_"
    return "".join(out)


def strip_reserved_suffixes(name: str) -> str:
    """client_java 1.x's sanitizeMetricName: _total, _created, _bucket and _info are cut off, again
    and again; a counter gets _total back when it is exposed."""
    changed = True
    while changed:
        changed = False
        for suffix in _RESERVED_SUFFIXES:
            if name.endswith(suffix):
                name = name[:-len(suffix)]
                changed = True
    return name
