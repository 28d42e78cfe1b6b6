"""kio entities of any version from plain values: one handler answers every version of an API by
giving the fields it knows; each version's class takes those it declares (the others keep their
defaults), nested entities from dicts, error codes from Kafka's names."""
from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta, i64Timedelta


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type, values: dict[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs = {f.name: _convert(hints[f.name], values[f.name]) for f in dataclasses.fields(cls) if f.name in values}
    return cls(**kwargs)


def error_code(name: str) -> ErrorCode:
    return ErrorCode[name.lower()]


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v) for v in value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        return _convert(hint, value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value) if isinstance(value, dict) else value
    if hint is ErrorCode:
        return error_code(value) if isinstance(value, str) else ErrorCode(value)
    if hint in (i32Timedelta, i64Timedelta):
        return hint.parse(datetime.timedelta(milliseconds=value)) if isinstance(value, (int, float)) else value
    return value
