"""The Kafka protocol's topic and configuration administration on the embedded brokers: DeleteTopics
(forwarded to the active controller, as CreateTopics) and DescribeConfigs (topics and brokers)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.protocol import DeleteTopicsRequest, DescribeConfigsRequest
from broker.wire.replies import answer_pending
from broker.wire.topic_ids import topic_id, topics_by_id

DELETE_TOPICS, DESCRIBE_CONFIGS = 20, 32
# Kafka 4.0 dropped DeleteTopics v0 and DescribeConfigs v0 (KIP-896)
SUPPORTED: dict[int, tuple[int, int]] = {DELETE_TOPICS: (1, 6), DESCRIBE_CONFIGS: (1, 4)}
TOPIC, BROKER = 2, 4                  # ConfigResource.Type
CONFIG_TYPES = {"BOOLEAN": 1, "STRING": 2, "INT": 3, "LONG": 5, "LIST": 7}


def _delete_topics(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    if request.__version__ >= 6:
        asked = [(t.name, t.topic_id) for t in request.topics]
    else:
        asked = [(name, None) for name in request.topic_names]
    by_id = topics_by_id(conn)
    results: list[dict] = []
    calls = []
    for name, tid in asked:
        if name is None and tid is not None:
            name = by_id.get(tid)
            if name is None:
                results.append({"name": None, "topic_id": tid, "error_code": "UNKNOWN_TOPIC_ID",
                                "error_message": "This server does not host this topic ID."})
                continue
        entry = {"name": name, "topic_id": topic_id(conn.cluster.cluster_id, name)}
        calls.append((DeleteTopicsRequest(name), None))
        results.append(entry)
    undelivered = answer_pending(conn, results, calls, request.timeout.total_seconds() * 1000.0 + 5_000.0,
                                 lambda entry, r: entry.update(error_code=r.error, error_message=r.message or None))
    return undelivered or respond({"responses": results})


def _describe_configs(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    synonyms = bool(getattr(request, "include_synonyms", False))
    results: list[dict] = []
    calls = []
    for res in request.resources:
        kind = int(res.resource_type)
        entry: dict[str, Any] = {"resource_type": kind, "resource_name": res.resource_name, "configs": ()}
        results.append(entry)
        if kind not in (TOPIC, BROKER):
            entry.update(error_code="INVALID_REQUEST", error_message=f"Unsupported resource type {kind}")
            continue
        keys = None if res.configuration_keys is None else tuple(res.configuration_keys)
        calls.append((DescribeConfigsRequest("topic" if kind == TOPIC else "broker", res.resource_name, keys), None))

    def fill(entry: dict, r: Any) -> None:
        entry.update(error_code=r.error, error_message=r.message or None,
                     configs=[{"name": e.name, "value": e.value, "read_only": e.read_only, "config_source": e.source,
                               "is_sensitive": False, "config_type": CONFIG_TYPES[e.config_type], "documentation": None,
                               "synonyms": [{"name": n, "value": v, "source": s} for n, v, s in e.synonyms]
                               if synonyms else ()}
                              for e in r.entries])
    return answer_pending(conn, results, calls, 30_000.0, fill) or respond({"results": results})


HANDLERS: dict[int, Callable[[Any, Any, Callable[[dict], Any]], Any]] = {
    DELETE_TOPICS: _delete_topics, DESCRIBE_CONFIGS: _describe_configs,
}
