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
import sys
import threading
import time
from typing import Any

import requests

from broker.mbeans.names import ObjectName, ObjectNamePattern
from exporter.sample import NO_VALUE, Collection, Sample, SourceError
from exporter.sources.names import split_object_name


_DECODING = threading.Lock()


class JolokiaSource:
    def __init__(self, name: str, url: str, username: str | None = None, password: str | None = None,
                 verify: bool | str = True, includes: list[str] = (), excludes: list[str] = (),
                 timeout_ms: float = 10_000.0, session: requests.Session | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError("config", f"{name}: expected an http(s) URL for jolokia, got {url!r}")
        self.name = name
        self.url = url if url.endswith("/") else url + "/"
        self.auth = (username, password) if username else None
        self.verify = verify
        self.includes = list(includes) or ["*:*"]
        self.excludes = [ObjectNamePattern(p) for p in excludes]
        self.timeout_ms = timeout_ms
        self.session = session or requests.Session()
        self._names: dict[str, tuple] = {}

    def _request_body(self) -> list[dict[str, Any]]:
        config = {"canonicalNaming": False, "ignoreErrors": True, "serializeException": False}
        return [{"type": "read", "mbean": pattern, "config": config} for pattern in self.includes]

    def read(self) -> Collection:
        try:
            resp = self.session.post(self.url, json=self._request_body(), auth=self.auth, verify=self.verify,
                                     timeout=self.timeout_ms / 1000.0, params={"canonicalNaming": "false"})
        except requests.Timeout:
            raise SourceError("timeout", f"{self.name}: no answer from {self.url} within {self.timeout_ms:.0f} ms") from None
        except requests.exceptions.SSLError as e:
            raise SourceError("tls", f"{self.name}: TLS with {self.url} failed: {e}") from None
        except requests.ConnectionError as e:
            raise SourceError("connect", f"{self.name}: cannot connect to {self.url}: {e}") from None
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
            return self._parse(answers)

    def _parse(self, answers: list[Any]) -> Collection:
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
                    _flatten(samples, skipped, split, (), attr, v, ts)
        return Collection(samples, skipped)

    def close(self) -> None:
        self.session.close()


def _is_pattern(mbean: str) -> bool:
    return "*" in mbean or "?" in mbean


def _flatten(samples: list[Sample], skipped: dict[str, int], split: tuple, path: tuple[str, ...], attr: str,
             value: Any, ts: float) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(samples, skipped, split, path + (k,), attr, v, ts)
    elif value is None:
        samples.append(Sample(split[0], split[1], path, attr, NO_VALUE, ts))
    elif isinstance(value, (int, float, str, bool)):
        if isinstance(value, str) and value.startswith("ERROR: "):
            skipped["unreadable attribute"] = skipped.get("unreadable attribute", 0) + 1
            return
        samples.append(Sample(split[0], split[1], path, attr, value, ts))
    else:
        key = f"unsupported type {type(value).__name__}"
        skipped[key] = skipped.get(key, 0) + 1


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
