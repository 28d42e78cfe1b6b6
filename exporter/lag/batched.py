"""Classic and consumer (KIP-848) groups read from the brokers that coordinate them, many groups per request,
as Kafka's own admin client does: one FindCoordinator for all of them, then per coordinator OffsetFetch (v8:
many groups), DescribeGroups and ConsumerGroupDescribe. librdkafka 2.16 sends one request per group for
each: at 10,000 groups that was 20,000 requests and 5.8 s of this process's CPU, and with both kinds in
flight together they timed out after 60 s and librdkafka aborted; batched, the same reads take 1.3-1.9 s,
0.6 s of it the offsets of 500,000 partitions (benchmarks/lag_collection.py).

A group whose coordinator did not answer, moved or is still loading is read once more, its coordinator
looked up afresh and over a new connection (a kept connection to a broker that went away fails again); one
that still cannot be read is reported as unread."""
from __future__ import annotations

from typing import NamedTuple

from kio.schema.consumer_group_describe.v0.request import ConsumerGroupDescribeRequest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup
from kio.schema.types import GroupId
from kio.static.primitive import i8

from exporter.lag.connection import BrokerConnection, Connections, KafkaProtocolError, error_name
from exporter.lag.filters import Filter
from exporter.lag.model import TopicPartition
from kafka_common.consumer_protocol import assigned_partitions

# errors after which a new lookup of the coordinator may succeed: it moved, is loading, or did not answer
RETRIABLE = {7, 14, 15, 16}        # REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
GROUP_ID_NOT_FOUND = 69
BATCH = 500                         # groups per request: bounds one answer (500 groups x 50 partitions: ~0.5 MB)


class Failure(NamedTuple):
    """A read that failed: what to report, and whether reading it afresh may succeed."""
    message: str
    retriable: bool


class Description(NamedTuple):
    state: str                          # as Kafka names it: Stable, Empty, PreparingRebalance, Assigning, ...
    members: int
    kind: str                           # classic or consumer
    owned: frozenset[TopicPartition]    # the partitions the members own


Committed = dict[TopicPartition, int]
Result = tuple[Committed, Description | Failure] | Failure


def retriable(result: Result) -> bool:
    failure = result if isinstance(result, Failure) else result[1]      # the offsets', else the describe's
    return isinstance(failure, Failure) and failure.retriable


class BatchedGroupReader:
    def __init__(self, connections: Connections, topics: Filter) -> None:
        self.connections, self.topics = connections, topics
        self._coordinators: set[tuple[str, int]] = set()        # the brokers the last read asked

    def read(self, kinds: dict[str, str]) -> dict[str, Result]:
        """kinds: group id -> its type as listed (classic, consumer; anything else is asked as both). Per group:
        (committed offsets, its description or why describing it failed), or why its offsets could not be read."""
        results = self._read_once(kinds)
        again = {gid: kinds[gid] for gid, result in results.items() if retriable(result)}
        if again:
            for address in self._coordinators:
                self.connections.drop(address)
            results.update(self._read_once(again))
        return results

    def _read_once(self, kinds: dict[str, str]) -> dict[str, Result]:
        self._coordinators = set()
        if not kinds:
            return {}
        try:
            bootstrap = self.connections.bootstrap()
        except KafkaProtocolError as e:
            return {gid: Failure(f"group {gid}: {e}", True) for gid in kinds}
        try:
            found = self.connections.to(bootstrap).call(FindCoordinatorRequest(key_type=i8(0),
                                                                                coordinator_keys=tuple(kinds)))
        except KafkaProtocolError as e:
            self.connections.drop(bootstrap)
            self._coordinators.add(bootstrap)
            return {gid: Failure(f"group {gid}: finding its coordinator: {e}", True) for gid in kinds}
        results: dict[str, Result] = {}
        by_coordinator: dict[tuple[str, int], list[str]] = {}
        for c in found.coordinators:
            gid = str(c.key)
            if c.error_code != 0:
                results[gid] = Failure(f"group {gid}: finding its coordinator: {c.error_message or error_name(c.error_code)}",
                                       int(c.error_code) in RETRIABLE)
            else:
                by_coordinator.setdefault((str(c.host), int(c.port)), []).append(gid)
        for address, ids in by_coordinator.items():
            self._coordinators.add(address)
            try:
                results.update(self._read_coordinator(self.connections.to(address), ids, kinds))
            except KafkaProtocolError as e:
                self.connections.drop(address)
                results.update({gid: Failure(f"group {gid}: {e}", True) for gid in ids})
        for gid in kinds:
            if gid not in results:
                results[gid] = Failure(f"group {gid}: no coordinator named in the answer", True)
        return results

    def _read_coordinator(self, conn: BrokerConnection, ids: list[str], kinds: dict[str, str]) -> dict[str, Result]:
        committed: dict[str, Committed | Failure] = {}
        for at in range(0, len(ids), BATCH):
            answer = conn.call(OffsetFetchRequest(groups=tuple(OffsetFetchRequestGroup(group_id=GroupId(g), topics=None)
                                                               for g in ids[at:at + BATCH]), require_stable=False))
            for g in answer.groups:
                gid = str(g.group_id)
                if g.error_code != 0:
                    committed[gid] = Failure(f"group {gid}: committed offsets: {error_name(g.error_code)}",
                                             int(g.error_code) in RETRIABLE)
                    continue
                committed[gid] = {(str(t.name), int(p.partition_index)): int(p.committed_offset)
                                  for t in g.topics if self.topics(str(t.name))
                                  for p in t.partitions if p.error_code == 0 and p.committed_offset >= 0}
        described = self._describe(conn, [gid for gid in ids if not isinstance(committed.get(gid), Failure)], kinds)
        results: dict[str, Result] = {}
        for gid in ids:
            offsets = committed.get(gid, Failure(f"group {gid}: committed offsets: not in the answer", True))
            if isinstance(offsets, Failure):
                results[gid] = offsets
            else:
                results[gid] = (offsets, described.get(gid, Failure(f"group {gid}: describe: not in the answer", True)))
        return results

    def _describe(self, conn: BrokerConnection, ids: list[str], kinds: dict[str, str]) -> dict[str, Description | Failure]:
        out: dict[str, Description | Failure] = {}
        asked = [gid for gid in ids if kinds[gid] != "classic"]
        if asked and conn.supports(ConsumerGroupDescribeRequest):
            for at in range(0, len(asked), BATCH):
                answer = conn.call(ConsumerGroupDescribeRequest(group_ids=tuple(GroupId(g) for g in asked[at:at + BATCH]),
                                                                include_authorized_operations=False))
                for d in answer.groups:
                    gid = str(d.group_id)
                    if d.error_code == 0:
                        owned = frozenset((str(tp.topic_name), int(p)) for m in d.members
                                          for tp in m.assignment.topic_partitions if self.topics(str(tp.topic_name))
                                          for p in tp.partitions)
                        out[gid] = Description(str(d.group_state), len(d.members), "consumer", owned)
                    elif kinds[gid] == "consumer" or d.error_code != GROUP_ID_NOT_FOUND:
                        out[gid] = Failure(f"group {gid}: describe: {d.error_message or error_name(d.error_code)}",
                                           int(d.error_code) in RETRIABLE)
        asked = [gid for gid in ids if gid not in out]      # classic, and those not found as consumer groups
        for at in range(0, len(asked), BATCH):
            answer = conn.call(DescribeGroupsRequest(groups=tuple(GroupId(g) for g in asked[at:at + BATCH]),
                                                     include_authorized_operations=False))
            for d in answer.groups:
                gid = str(d.group_id)
                if d.error_code != 0:
                    out[gid] = Failure(f"group {gid}: describe: {error_name(d.error_code)}", int(d.error_code) in RETRIABLE)
                    continue
                # members of other protocols (Kafka Connect's workers) assign something else than partitions
                owned = frozenset(tp for m in d.members for tp in assigned_partitions(m.member_assignment)
                                  if self.topics(tp[0])) if d.protocol_type == "consumer" else frozenset()
                out[gid] = Description(str(d.group_state), len(d.members), "classic", owned)
        return out
