"""What the embedded brokers answer on the Kafka protocol: each API's requests become the simulation's
own (broker/protocol.py), so they take the paths the built-in clients take, and the answers become
the API's response of the version the client asked for.

Advertised (and nothing else): the APIs and versions below, chosen so current clients (librdkafka
2.x, kafka-python, Kafka's Java clients) negotiate a version whose fields the simulation has:
topic names, not topic ids (Fetch stops at 12, Produce at 11, Metadata at 12)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kio.index import load_response_schema
from kio.records.readers import read_batch

from broker.config import KafkaConfigError
from broker.log import Batch
from broker.net import RequestFailed
from broker.protocol import (
    CreateTopicsRequest,
    DescribeClusterRequest,
    FetchPartition,
    FetchRequest,
    FindCoordinatorRequest,
    InitProducerIdRequest,
    ListOffsetsRequest,
    MetadataRequest,
    ProduceRequest,
)
from broker.structs import Record, TopicPartition
from broker.wire import admin, groups, share
from broker.wire.build import build
from broker.wire.compression import uncompressed
from broker.wire.records import wire_batches
from broker.wire.replies import NO_RESPONSE, answer_pending, failed
from broker.wire.topic_ids import topic_id, topics_by_id
from kafka_common.record_batches import HEADER, record_deltas

API_VERSIONS, METADATA, PRODUCE, FETCH, LIST_OFFSETS, FIND_COORDINATOR, INIT_PRODUCER_ID = 18, 3, 0, 1, 2, 10, 22
CREATE_TOPICS, DESCRIBE_CLUSTER = 19, 60
# api key -> (min, max) version
SUPPORTED: dict[int, tuple[int, int]] = {
    PRODUCE: (3, 11), FETCH: (4, 12), LIST_OFFSETS: (1, 8), METADATA: (0, 12), FIND_COORDINATOR: (0, 4),
    API_VERSIONS: (0, 4), INIT_PRODUCER_ID: (0, 4), CREATE_TOPICS: (2, 7),
    DESCRIBE_CLUSTER: (0, 1),
}
INTERNAL_TOPICS = {"__consumer_offsets", "__transaction_state", "__share_group_state"}


def _served(conn: Any) -> dict[int, tuple[int, int]]:
    """The APIs this connection's broker serves: the share group APIs only where share groups are on, as its
    Kafka line has them."""
    if not share.enabled(conn):
        return {k: v for k, v in SUPPORTED.items() if k not in share.SUPPORTED}
    return {**SUPPORTED, **share.line_caps(conn)}


def supported(conn: Any, api_key: int, version: int) -> bool:
    lo_hi = _served(conn).get(api_key)
    return lo_hi is not None and lo_hi[0] <= version <= lo_hi[1]


def _api_keys(conn: Any) -> list[dict[str, int]]:
    return [{"api_key": k, "min_version": lo, "max_version": hi} for k, (lo, hi) in sorted(_served(conn).items())]


def unsupported_api_versions(conn: Any) -> Any:
    """ApiVersions v0 with UNSUPPORTED_VERSION and the list: the client retries with a version it finds there."""
    return build(load_response_schema(API_VERSIONS, 0), {"error_code": "UNSUPPORTED_VERSION",
                                                         "api_keys": _api_keys(conn)})


def handle(conn: Any, header: Any, request: Any) -> Any:
    api_key, version = int(header.request_api_key), int(header.request_api_version)
    conn.client_id = header.client_id or "client"
    schema = load_response_schema(api_key, version)
    return HANDLERS[api_key](conn, request, lambda values: build(schema, {"throttle_time": 0, **values}))


def _api_versions(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    return respond({"error_code": "NONE", "api_keys": _api_keys(conn)})


def _metadata(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    by_id = topics_by_id(conn)
    known = tuple(by_id.values())
    # v10+ may name a topic by its id alone (a consumer of KIP-848 learns its assignment by topic ids)
    unknown_ids = [] if request.topics is None else \
        [t.topic_id for t in request.topics if t.name is None and getattr(t, "topic_id", None) not in by_id]
    names = known if request.topics is None or (not request.topics and request.__version__ == 0) \
        else tuple(t.name if t.name is not None else by_id[t.topic_id] for t in request.topics
                   if t.name is not None or getattr(t, "topic_id", None) in by_id)
    auto = bool(getattr(request, "allow_auto_topic_creation", True))
    response = conn.call(MetadataRequest(names, auto), 30_000.0)
    if isinstance(response, RequestFailed):
        return failed(response)
    addresses = conn.addresses()
    brokers = [{"node_id": b, "host": addresses[b][0], "port": addresses[b][1]}
               for b in sorted(response.brokers) if b in addresses]
    topics = []
    for name in names:
        if name in response.errors:
            topics.append({"error_code": response.errors[name], "name": name, "topic_id": uuid.UUID(int=0),
                           "partitions": ()})
            continue
        partitions = [{"error_code": "NONE" if p.leader >= 0 else "LEADER_NOT_AVAILABLE", "partition_index": i,
                       "leader_id": p.leader, "leader_epoch": p.leader_epoch, "replica_nodes": p.replicas,
                       "isr_nodes": p.isr, "offline_replicas": tuple(r for r in p.replicas if r not in response.brokers)}
                      for i, p in enumerate(response.topics.get(name, ()))]
        topics.append({"error_code": "NONE", "name": name, "topic_id": topic_id(conn.cluster.cluster_id, name),
                       "is_internal": name in INTERNAL_TOPICS, "partitions": partitions})
    topics.extend({"error_code": "UNKNOWN_TOPIC_ID", "name": None, "topic_id": tid, "partitions": ()}
                  for tid in unknown_ids)
    # a KRaft broker names a live broker as the controller: clients send it their admin requests
    return respond({"brokers": brokers, "cluster_id": conn.cluster.cluster_id,
                    "controller_id": min(response.brokers, default=-1), "topics": topics})


def _to_batches(records: bytes | None, wall_base_ms: float) -> tuple[list[Batch], str]:
    """A produce request's record batches as the simulation's; an error name when it cannot read them."""
    out: list[Batch] = []
    data, offset = memoryview(records or b""), 0
    while offset < len(data):
        try:
            plain, size = uncompressed(data, offset)
        except ValueError:
            return [], "UNSUPPORTED_COMPRESSION_TYPE"
        view = memoryview(plain)
        batch, _ = read_batch(view, 0)
        times = _record_timestamps(view, int(batch.base_timestamp), len(batch.records))
        recs = tuple(Record(r.key, r.value, t - wall_base_ms) for r, t in zip(batch.records, times))
        out.append(Batch(-1, len(recs), -1, size, 0.0, int(batch.producer_id), int(batch.base_sequence), recs))
        offset += size
    return out, "NONE"


def _record_timestamps(batch: memoryview, base_timestamp: int, count: int) -> list[int]:
    """Each record's timestamp in epoch ms (kio's read_record rounds them to seconds)."""
    return [base_timestamp + delta for _, delta in record_deltas(batch, count, HEADER)]


def _produce(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    node = conn.node
    batches: list[tuple[TopicPartition, Batch]] = []
    refused: dict[TopicPartition, str] = {}
    for topic in request.topic_data:
        for p in topic.partition_data:
            tp = TopicPartition(topic.name, int(p.index))
            decoded, error = _to_batches(p.records, node.wall_base_ms)
            if error != "NONE":
                refused[tp] = error
            batches.extend((tp, b) for b in decoded)
    acks, timeout_ms = int(request.acks), request.timeout.total_seconds() * 1000.0
    internal = ProduceRequest(acks, tuple(batches), timeout_ms)
    if acks == 0:
        conn.send(internal, timeout_ms)
        return NO_RESPONSE
    response = conn.call(internal, timeout_ms + 1_000.0)
    if isinstance(response, RequestFailed):
        return failed(response)
    results: dict[str, list[dict]] = {}
    for tp, r in response.results.items():
        results.setdefault(tp.topic, []).append({"index": tp.partition, "error_code": r.error, "base_offset": r.base_offset,
                                                 "log_append_time": None, "log_start_offset": -1,
                                                 "record_errors": (), "error_message": None})
    for tp, error in refused.items():
        results.setdefault(tp.topic, []).append({"index": tp.partition, "error_code": error, "base_offset": -1,
                                                 "log_append_time": None, "log_start_offset": -1,
                                                 "record_errors": (), "error_message": None})
    return respond({"responses": [{"name": t, "partition_responses": ps} for t, ps in results.items()]})


def _list_offsets(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    asked = [(t.name, int(p.partition_index), int(p.timestamp)) for t in request.topics for p in t.partitions]
    # a timestamp (epoch ms) becomes the log's own clock; -1 latest, -2 earliest, -3 max timestamp, -4 earliest local
    base = conn.node.wall_base_ms
    calls = [(ListOffsetsRequest(TopicPartition(t, p), ts if ts < 0 else ts - base), None) for t, p, ts in asked]
    answers = iter(conn.gather(calls, 30_000.0))
    topics: dict[str, list[dict]] = {}
    for t, p, _ts in asked:
        r = next(answers)
        if isinstance(r, RequestFailed):
            return failed(r)
        found = -1 if r.timestamp is None else round(r.timestamp + base)
        topics.setdefault(t, []).append({"partition_index": p, "error_code": r.error, "offset": r.offset,
                                         "timestamp": found, "leader_epoch": -1})
    return respond({"topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]})


def _fetch(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    partitions = {TopicPartition(t.topic, int(p.partition)):
                  FetchPartition(int(p.fetch_offset), current_leader_epoch=int(getattr(p, "current_leader_epoch", -1)))
                  for t in request.topics for p in t.partitions}
    max_wait_ms = request.max_wait.total_seconds() * 1000.0
    response = conn.call(FetchRequest(-1, partitions, max_wait_ms, int(request.max_bytes)), max_wait_ms + 30_000.0)
    if isinstance(response, RequestFailed):
        return failed(response)
    wall_base = conn.node.wall_base_ms
    topics: dict[str, list[dict]] = {}
    for tp in partitions:
        d = response.partitions.get(tp)
        if d is None:
            continue
        topics.setdefault(tp.topic, []).append({
            "partition_index": tp.partition, "error_code": d.error, "high_watermark": d.high_watermark,
            "last_stable_offset": d.high_watermark, "log_start_offset": d.log_start_offset, "aborted_transactions": None,
            "preferred_read_replica": -1, "records": wire_batches(d.batches, wall_base)})
    return respond({"error_code": "NONE", "session_id": 0,
                    "responses": [{"topic": t, "partitions": ps} for t, ps in topics.items()]})


def _find_coordinator(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    keys = list(getattr(request, "coordinator_keys", ()) or ()) or [request.key]
    addresses, found = conn.addresses(), []
    for key, r in zip(keys, conn.gather([(FindCoordinatorRequest(key), None) for key in keys], 30_000.0)):
        if isinstance(r, RequestFailed):
            return failed(r)
        host, port = addresses.get(r.node_id, ("", -1))
        found.append({"key": key, "node_id": r.node_id, "host": host, "port": port, "error_code": r.error,
                      "error_message": None})
    if hasattr(request, "coordinator_keys"):
        return respond({"coordinators": found})
    return respond({k: v for k, v in found[0].items() if k != "key"})


def _init_producer_id(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(InitProducerIdRequest(request.transactional_id), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    return respond({"error_code": r.error, "producer_id": r.producer_id, "producer_epoch": r.producer_epoch})


def _create_topics(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    """Forwarded by the broker to the active controller, as Kafka's ForwardingManager does. Topic
    configs are checked as the scenario's are; explicit replica assignments are not simulated."""
    cfg, results, calls = conn.node.cfg, [], []
    for t in request.topics:
        partitions = int(t.num_partitions) if int(t.num_partitions) != -1 else cfg["num.partitions"]
        rf = int(t.replication_factor) if int(t.replication_factor) != -1 else cfg["default.replication.factor"]
        entry = {"name": t.name, "topic_id": topic_id(conn.cluster.cluster_id, t.name), "error_message": None,
                 "num_partitions": partitions, "replication_factor": rf, "configs": None}
        try:
            configs = cfg.with_overrides({c.name: c.value for c in t.configs}, f"topic {t.name!r}")
            topic_configs = tuple(sorted((c.name, configs[c.name]) for c in t.configs))
        except KafkaConfigError as e:
            results.append({**entry, "error_code": "INVALID_CONFIG", "error_message": str(e)})
            continue
        if (request.__version__ >= 1 and request.validate_only) or t.assignments:
            results.append({**entry, "error_code": "INVALID_REQUEST",
                            "error_message": "validate_only and replica assignments are not simulated"})
            continue
        calls.append((CreateTopicsRequest(t.name, partitions, rf, topic_configs), None))
        results.append(entry)
    undelivered = answer_pending(conn, results, calls, request.timeout.total_seconds() * 1000.0 + 5_000.0,
                                 lambda entry, r: entry.update(error_code=r.error, error_message=r.message or None))
    return undelivered or respond({"topics": results})


def _describe_cluster(conn: Any, request: Any, respond: Callable[[dict], Any]) -> Any:
    r = conn.call(DescribeClusterRequest(), 30_000.0)
    if isinstance(r, RequestFailed):
        return failed(r)
    addresses = conn.addresses()
    return respond({"error_code": r.error, "error_message": None, "endpoint_type": 1,
                    "cluster_id": conn.cluster.cluster_id, "controller_id": r.controller_id,
                    "brokers": [{"broker_id": b, "host": addresses[b][0], "port": addresses[b][1], "rack": None}
                                for b in sorted(r.brokers) if b in addresses]})


HANDLERS: dict[int, Callable[[Any, Any, Callable[[dict], Any]], Any]] = {
    API_VERSIONS: _api_versions, METADATA: _metadata, PRODUCE: _produce, LIST_OFFSETS: _list_offsets,
    FETCH: _fetch, FIND_COORDINATOR: _find_coordinator, INIT_PRODUCER_ID: _init_producer_id,
    CREATE_TOPICS: _create_topics, DESCRIBE_CLUSTER: _describe_cluster,
}


for _module in (groups, admin, share):
    SUPPORTED.update(_module.SUPPORTED)
    HANDLERS.update(_module.HANDLERS)
