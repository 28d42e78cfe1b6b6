"""The one YAML loader of scenarios, exporter configs, rules files and the catalog: safe loading only,
and every mistake reported at once with the file, the line and the field."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes from the top."""


class InputError(ValueError):
    """Bad input (a file, a setting) that the command line reports in one line and exits 2 for."""


class ConfigError(InputError):
    """Every problem found in a configuration file, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Doc:
    """A parsed YAML file: plain data plus the 1-based line of every path."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[str] = []
        try:
            root = yaml.compose(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise ConfigError([f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: "
                               f"{getattr(e, 'problem', None) or e}"]) from None
        self.data = self._plain(root, ()) if root is not None else {}

    def _plain(self, node: yaml.Node, path: KeyPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                self.lines[path + (key,)] = k.start_mark.line + 1
                out[key] = self._plain(v, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._plain(v, path + (i,)) for i, v in enumerate(node.value)]
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError as e:
            # e.g. a !!python/object tag: safe loading refuses it; name the line in the user's file
            raise ConfigError([f"{self.source}:{node.start_mark.line + 1}: not valid here: "
                               f"{getattr(e, 'problem', None) or e}"]) from None

    def where(self, path: KeyPath) -> str:
        line = self.lines.get(path)
        probe = path
        while line is None and probe:
            probe = probe[:-1]
            line = self.lines.get(probe)
        dotted = ""
        for p in path:
            dotted += f"[{p}]" if isinstance(p, int) else (f".{p}" if dotted else str(p))
        return f"{self.source}:{line or 1}: {dotted or '(top)'}"

    def fail(self, path: KeyPath, message: str) -> None:
        self.problems.append(f"{self.where(path)}: {message}")

    def mapping(self, value: Any, path: KeyPath, allowed: set[str]) -> dict[str, Any]:
        """value as a mapping whose keys are all allowed; {} (and a problem) otherwise."""
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(path + (key,), f"unknown key {key!r} (allowed: {', '.join(sorted(map(str, allowed)))})")
        return value

    def get(self, data: dict[str, Any], path: KeyPath, key: str, convert: Callable[[Any], Any], default: Any = None,
            required: bool = False) -> Any:
        """data[key] through convert (which raises ValueError or TypeError with the reason); default when absent."""
        if key not in data:
            if required:
                self.fail(path, f"missing required key {key!r}")
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as e:
            self.fail(path + (key,), str(e))
            return default

    def sequence(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, []) or []
        if not isinstance(value, list):
            self.fail((key,), "expected a list")
            return []
        return value

    def check(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
