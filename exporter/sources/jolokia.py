"""The jolokia source: Jolokia's HTTP/JSON protocol, one bulk POST of read requests per collection.

Patterns are read with canonicalNaming=false, so key properties keep their registration order as
JMX clients see them. A per-request error in Jolokia's answer (an unknown MBean, a failing
attribute) is counted and reported, the rest of the answer is used. The source never sends
Jolokia proxy requests (no "target"), so a Jolokia agent cannot be used to reach other hosts.

    python -m exporter.sources.jolokia http://127.0.0.1:8778/jolokia/ 'kafka.server:*'
prints the match strings of every attribute, as jmx_exporter's rules see them.
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from exporter.sample import NO_VALUE, TABULAR, Collection, Sample, SourceError, Threads, flatten, java_value_string
from exporter.sources.names import split_object_name
from kafka_common.names import ObjectName, ObjectNamePattern

_DECODING = threading.Lock()
# the thread ids and deadlocks, asked with the collection's reads when the threads' states are wanted
THREAD_REQUESTS = [{"type": "read", "mbean": "java.lang:type=Threading", "attribute": "AllThreadIds"},
                   {"type": "exec", "mbean": "java.lang:type=Threading", "operation": "findDeadlockedThreads"},
                   {"type": "exec", "mbean": "java.lang:type=Threading", "operation": "findMonitorDeadlockedThreads"}]


class JolokiaSource:
    def __init__(self, name: str, url: str, username: str | None = None, password: str | None = None,
                 verify: bool | str = True, includes: Sequence[str] = (), excludes: Sequence[str] = (),
                 timeout_ms: float = 10_000.0, session: requests.Session | None = None, null_as_nan: bool = False) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError("config", f"{name}: expected an http(s) URL for jolokia, got {url!r}")
        self.name = name
        self.url = url if url.endswith("/") else url + "/"
        self.auth = (username, password or "") if username else None
        self.verify = verify
        self.includes = list(includes) or ["*:*"]
        self.excludes = [ObjectNamePattern(p) for p in excludes]
        self.timeout_ms = timeout_ms
        self.session = session or requests.Session()
        # Jolokia writes Java's null and NaN alike as null; jmx_exporter skips a null
        self.null = math.nan if null_as_nan else NO_VALUE
        self._names: dict[str, tuple[Any, ...]] = {}
        # (ObjectName, attribute) -> whether it is TabularData: Jolokia's JSON looks the same for
        # CompositeData and TabularData, only `list` tells them apart
        self._tabular: dict[tuple[str, str], bool] = {}
        self.threads = False                # also read the threads' states (the JVM metrics want them)

    def _request_body(self) -> list[dict[str, Any]]:
        config = {"canonicalNaming": False, "ignoreErrors": True, "serializeException": False}
        return [{"type": "read", "mbean": pattern, "config": config} for pattern in self.includes]

    def read(self) -> Collection:
        body = self._request_body()
        asked = len(body)
        if self.threads:
            body += THREAD_REQUESTS
        answers = self._post(body)
        pending: list[tuple[tuple[Any, ...], str, str, dict[str, Any], float]] = []
        with _DECODING:
            collection = self.parse(answers[:asked], pending)
        if self.threads:
            collection = collection._replace(threads=self._threads(answers[asked:]))
        if pending:
            # object values of attributes not seen before: `list` says which are TabularData
            self._learn_types(pending)
            with _DECODING:
                for split, on, attr, v, ts in pending:
                    flatten(collection.samples, collection.skipped, split[0], split[1], attr,
                            _tabular(v) if self._tabular[(on, attr)] else v, ts, self.null)
        return collection

    def _threads(self, answers: list[Any]) -> Threads | None:
        """The thread states from the ids of THREAD_REQUESTS' answers (one more request); None when
        the agent's JVM did not answer them."""
        ok = [isinstance(a, dict) and a.get("status") == 200 for a in answers]
        if len(ok) != 3 or not all(ok) or not isinstance(answers[0].get("value"), list):
            return None
        ids, deadlocked, monitor = (a.get("value") or [] for a in answers)
        try:
            [answer] = self._post([{"type": "exec", "mbean": "java.lang:type=Threading", "operation": "getThreadInfo([J,int)",
                                    "arguments": [ids, 0], "path": "*/threadState"}])
        except (SourceError, ValueError):        # the collection's reads succeeded: only the states are lost
            return None
        found = answer.get("value") if isinstance(answer, dict) and answer.get("status") == 200 else None
        if not isinstance(found, list):
            return None
        states: dict[str, int] = {}
        for state in found:
            states[str(state)] = states.get(str(state), 0) + 1
        if len(found) < len(ids):       # threads that ended in between: Jolokia's path leaves their nulls out
            states["UNKNOWN"] = len(ids) - len(found)
        return Threads(states, len(deadlocked), len(monitor))

    def _learn_types(self, pending: list[tuple[tuple[Any, ...], str, str, dict[str, Any], float]]) -> None:
        """One bulk `list` for the beans with object values: which attributes are TabularData."""
        objects = {(on, attr) for _, on, attr, _, _ in pending}
        beans = sorted({on for on, _ in objects})
        requests_ = [{"type": "list", "path": _list_path(on), "config": {"ignoreErrors": True}} for on in beans]
        try:
            listed = self._post(requests_)
        except SourceError:
            listed = []
        if len(self._tabular) > 100_000:
            self._tabular.clear()
        for on, answer in zip(beans, listed):
            attrs = answer.get("value", {}).get("attr", {}) if isinstance(answer, dict) and answer.get("status") == 200 else {}
            for attr, info in attrs.items() if isinstance(attrs, dict) else ():
                if (on, attr) in objects:
                    self._tabular[(on, attr)] = isinstance(info, dict) and "TabularData" in str(info.get("type", ""))
        for key in objects:
            self._tabular.setdefault(key, False)       # not listed (an error): read as CompositeData

    def _post(self, body: list[dict[str, Any]]) -> list[Any]:
        try:
            resp = self.session.post(self.url, json=body, auth=self.auth, verify=self.verify,
                                     timeout=self.timeout_ms / 1000.0, params={"canonicalNaming": "false"})
        except requests.Timeout:
            raise SourceError("timeout", f"{self.name}: no answer from {self.url} within {self.timeout_ms:.0f} ms") from None
        except requests.exceptions.SSLError as e:
            raise SourceError("tls", f"{self.name}: TLS with {self.url} failed: {e}") from None
        except requests.ConnectionError as e:
            raise SourceError("connect", f"{self.name}: cannot connect to {self.url}: {e}") from None
        except requests.RequestException as e:
            # the JVM went away mid-answer (a killed broker): ChunkedEncodingError and the like
            raise SourceError("connect", f"{self.name}: the answer from {self.url} broke off: {e}") from None
        if resp.status_code in (401, 403):
            raise SourceError("auth", f"{self.name}: {self.url} answered {resp.status_code}: check the Jolokia user and password")
        if resp.status_code != 200:
            raise SourceError("http", f"{self.name}: {self.url} answered HTTP {resp.status_code}")
        # Decoding holds the GIL whatever we do; one target at a time keeps one decoded answer in
        # memory instead of one per target.
        with _DECODING:
            try:
                answers = json.loads(resp.content)
            except ValueError:
                raise SourceError("protocol", f"{self.name}: {self.url} did not answer JSON (is it a Jolokia agent?)") from None
            if isinstance(answers, dict):
                answers = [answers]
            if not isinstance(answers, list):
                raise SourceError("protocol", f"{self.name}: unexpected Jolokia answer of type {type(answers).__name__}")
            return answers

    def parse(self, answers: list[Any], pending: list[Any] | None = None) -> Collection:
        """The samples of an answer. Object values whose type is not known yet go to `pending` (to
        be flattened once `list` has told TabularData from CompositeData); without it, such values
        are read as CompositeData."""
        ts = time.time() * 1000.0
        samples: list[Sample] = []
        skipped: dict[str, int] = {}
        known, self._names = self._names, {}        # names of beans gone since the last read are dropped
        for pattern, answer in zip(self.includes, answers):
            if not isinstance(answer, dict):
                skipped["malformed Jolokia answer"] = skipped.get("malformed Jolokia answer", 0) + 1
                continue
            if answer.get("status") != 200:
                reason = f"{answer.get('error_type', 'error')}: {answer.get('error', 'no message')}"
                key = f"request {pattern!r} failed: {reason}"
                skipped[key] = skipped.get(key, 0) + 1
                continue
            value = answer.get("value")
            if not isinstance(value, dict):
                skipped["malformed Jolokia answer"] = skipped.get("malformed Jolokia answer", 0) + 1
                continue
            beans = value if _is_pattern(pattern) else {pattern: value}
            for on, attrs in beans.items():
                if not isinstance(attrs, dict):
                    continue
                try:
                    split = known.get(on) or split_object_name(on)
                    self._names[sys.intern(on)] = split      # the same text as the rules' object names
                except ValueError:
                    skipped["unparsable ObjectName"] = skipped.get("unparsable ObjectName", 0) + 1
                    continue
                if self.excludes and any(p.matches(ObjectName(*split)) for p in self.excludes):
                    continue
                for attr, v in attrs.items():
                    if isinstance(v, str) and v.startswith("ERROR: "):
                        skipped["unreadable attribute"] = skipped.get("unreadable attribute", 0) + 1
                    elif isinstance(v, dict) and pending is not None and (on, attr) not in self._tabular:
                        pending.append((split, on, attr, v, ts))
                    elif isinstance(v, dict) and self._tabular.get((on, attr)):
                        flatten(samples, skipped, split[0], split[1], attr, _tabular(v), ts, self.null)
                    else:
                        flatten(samples, skipped, split[0], split[1], attr, v, ts, self.null)
        return Collection(samples, skipped)

    def close(self) -> None:
        self.session.close()


def _is_pattern(mbean: str) -> bool:
    return "*" in mbean or "?" in mbean


def _list_path(object_name: str) -> str:
    """A `list` request's path: domain/properties, with Jolokia's escapes for '!' and '/'."""
    domain, _, props = object_name.partition(":")
    return f"{_list_escape(domain)}/{_list_escape(props)}"


def _list_escape(text: str) -> str:
    return text.replace("!", "!!").replace("/", "!/")


def _tabular(value: dict[str, Any]) -> dict[str, Any]:
    """Jolokia's JSON of a TabularData back in the dump's shape. Jolokia writes it one of three
    ways: {indexNames, values} for composite keys; an MXBean map {key: value}; otherwise rows
    nested under their simple index values. A row nested under its own index column's value is
    told apart from an MXBean map by that column."""
    if set(value) == {"indexNames", "values"} and isinstance(value["values"], list):
        return {TABULAR: {"index": list(value["indexNames"]), "rows": value["values"]}}
    for depth in (1, 2, 3):
        found = _nested_rows(value, depth)
        if found is not None:
            return {TABULAR: {"index": found[0], "rows": found[1]}}
    return {TABULAR: {"index": ["key"], "rows": [{"key": k, "value": v} for k, v in value.items()]}}


def _nested_rows(value: dict[str, Any], depth: int) -> tuple[list[str], list[dict[str, Any]]] | None:
    """Rows `depth` levels down, each nested under its index columns' values, or None."""
    leaves: list[tuple[list[str], dict[str, Any]]] = [([], value)]
    for _ in range(depth):
        nxt: list[tuple[list[str], Any]] = []
        for keys, node in leaves:
            if not isinstance(node, dict) or not node:
                return None
            nxt.extend((keys + [k], v) for k, v in node.items())
        leaves = nxt
    if not leaves or not all(isinstance(row, dict) for _, row in leaves):
        return None
    index: list[str] = []
    for level in range(depth):
        column = next((c for c in leaves[0][1]
                       if all(c in row and java_value_string(row[c]) == keys[level] for keys, row in leaves)), None)
        if column is None or column in index:
            return None
        index.append(column)
    return index, [row for _, row in leaves]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m exporter.sources.jolokia URL [PATTERN ...]", file=sys.stderr)
        return 2
    source = JolokiaSource("cli", argv[0], includes=argv[1:])
    try:
        collection = source.read()
    except SourceError as e:
        print(e, file=sys.stderr)
        return 1
    for s in collection.samples:
        props = ", ".join(f"{k}={v}" for k, v in s.props)
        print(f"{s.domain}<{props}><{', '.join(s.path)}>{s.attr}: {s.value}")
    for reason, n in collection.skipped.items():
        print(f"# skipped {n}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
