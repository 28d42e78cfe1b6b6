"""A consumer in a group: coordinator discovery, then with group.protocol=classic JoinGroup/SyncGroup with
the leader running the assignor and heartbeats, with group.protocol=consumer (KIP-848) ConsumerGroupHeartbeat
alone (the coordinator assigns; revoked partitions are committed and let go before the next heartbeat says
so); fetches from partition leaders below the high watermark, and offset commits automatic
(auto.commit.interval.ms) or around processing.

commit="before" commits the polled position before processing (at-most-once: a crash while
processing loses the rest of the batch); commit="after" commits once the batch is processed
(at-least-once: a crash before the commit redelivers the whole batch, so the records processed
before the crash are processed twice); commit="auto" commits every auto.commit.interval.ms.
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from broker.assignors import ASSIGNORS
from broker.errors import KafkaError
from broker.net import Network, RequestFailed
from broker.node import Node
from broker.protocol import (
    ConsumerGroupHeartbeatRequest,
    FetchPartition,
    FetchRequest,
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    ListOffsetsRequest,
    MetadataRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    PartitionMetadata,
    SyncGroupRequest,
)
from broker.sched import Scheduler
from broker.structs import ConsumerRecord, TopicPartition

OnRecords = Callable[[TopicPartition, list[ConsumerRecord], int], None]


class Consumer(Node):
    role = "client"

    def __init__(self, name: str, sched: Scheduler, net: Network, rng: random.Random, config,
                 bootstrap: list[str], group_id: str, topics: tuple[str, ...], commit: str = "auto",
                 processing_ms: float = 0.0, on_records: OnRecords | None = None) -> None:
        super().__init__(name, sched, net, rng)
        if commit not in ("auto", "before", "after"):
            raise ValueError(f"commit must be auto, before or after, got {commit!r}")
        self.cfg = config
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self.commit_mode = commit
        self.processing_ms = processing_ms
        self.on_records = on_records
        self.consumed = 0                   # records handed to processing, over all incarnations
        self.processed = 0
        self.rebalances = 0
        self.out_of_range_resets = 0        # positions reset because retention deleted them (OFFSET_OUT_OF_RANGE)
        self.failure: str | None = None     # why the application stopped (auto.offset.reset=none)
        self.protocol = config["group.protocol"]
        # KIP-1082: a consumer of the new protocol names itself, once for its lifetime
        self.member_uuid = "".join(rng.choice("0123456789abcdef") for _ in range(32))

    # -- lifecycle -------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.member_id = ""
        self.generation = -1
        self.coordinator: str | None = None
        self.assignment: tuple[TopicPartition, ...] = ()
        self.positions: dict[TopicPartition, int] = {}
        # positions of the records handed to the application (poll): auto-commit never commits past them
        self.handed: dict[TopicPartition, int] = {}
        self.metadata: dict[str, tuple[PartitionMetadata, ...]] = {}
        self.brokers: dict[int, str] = {}
        self._fetching: set[int] = set()
        self._ready: deque[tuple[TopicPartition, list, int, int]] = deque()
        self._processing = False
        self._units: list[tuple[list, int]] = []
        self._unit = 0
        self._unit_token = 0
        self._handed_in_batch = 0
        self._joining = False
        self._refreshing = False
        self._resetting = False
        self._beat_token = 0
        self._find_coordinator()
        self.every(self.cfg["heartbeat.interval.ms"], self._heartbeat)
        if self.commit_mode == "auto":
            self.every(self.cfg["auto.commit.interval.ms"], lambda: self._commit(self._consumed()))

    def close(self) -> None:
        """Leave the group cleanly (the consumer's close()), then stop."""
        if self.coordinator and self.member_id:
            leave = ConsumerGroupHeartbeatRequest(self.group_id, self.member_id, -1) if self.protocol == "consumer" \
                else LeaveGroupRequest(self.group_id, self.member_id)
            self.request(self.coordinator, leave, lambda r: None, 1000.0)
        self.after(1.0, self.kill)

    # -- coordinator and membership ---------------------------------------------------------------------------------
    def _any_broker(self) -> str:
        return self.rng.choice(list(self.brokers.values()) or self.bootstrap)

    def _find_coordinator(self) -> None:
        self.coordinator = None

        def done(resp: Any) -> None:
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.after(self.cfg["retry.backoff.ms"] * 5, self._find_coordinator)
                return
            self.coordinator = resp.node
            self._join()

        self.request(self._any_broker(), FindCoordinatorRequest(self.group_id), done, self.cfg["request.timeout.ms"])

    def _lost_coordinator(self) -> None:
        if self.coordinator is not None:
            self.coordinator = None
            self._joining = False
            self.after(self.cfg["retry.backoff.ms"], self._find_coordinator)

    def _join(self) -> None:
        if self.protocol == "consumer":
            self.generation = 0
            self._schedule_beat(0.0)
            return
        if self._joining or self.coordinator is None:
            return
        self._joining = True
        if self.commit_mode == "auto" and self.positions:
            self._commit(self._consumed())
        strategy = self.cfg["partition.assignment.strategy"]
        req = JoinGroupRequest(self.group_id, self.member_id, self.name, self.cfg["session.timeout.ms"],
                               self.cfg["max.poll.interval.ms"], (strategy,), self.topics)
        coordinator = self.coordinator

        def done(resp: Any) -> None:
            if coordinator != self.coordinator:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"):
                self._lost_coordinator()
                return
            if resp.error == "COORDINATOR_LOAD_IN_PROGRESS":
                self._joining = False
                self.after(self.cfg["retry.backoff.ms"], self._join)
                return
            if resp.error == "UNKNOWN_MEMBER_ID":
                self.member_id = ""
                self._joining = False
                self._join()
                return
            if resp.error != "NONE":
                self._joining = False
                self.after(self.cfg["retry.backoff.ms"], self._join)
                return
            self.member_id, self.generation = resp.member_id, resp.generation
            if resp.leader == self.member_id:
                self._lead(resp)
            else:
                self._sync(())

        self.assignment = ()
        self.request(coordinator, req, done, self.cfg["max.poll.interval.ms"] + 5000.0)

    def _lead(self, resp: Any) -> None:
        """The group leader computes the assignment (needs partition counts) and sends it."""
        subscriptions = dict(resp.members)
        topics = sorted({t for ts in subscriptions.values() for t in ts})

        def with_metadata(meta: Any) -> None:
            if isinstance(meta, RequestFailed):
                self._joining = False
                self._join()
                return
            self._update_metadata(meta)
            counts = {t: len(self.metadata[t]) for t in topics if t in self.metadata}
            assignor = ASSIGNORS[resp.protocol]
            plan = assignor.assign(counts, subscriptions)
            self._sync(tuple((m, tuple(tps)) for m, tps in plan.items()))

        self.request(self._any_broker(), MetadataRequest(tuple(topics)), with_metadata, self.cfg["request.timeout.ms"])

    def _sync(self, assignments: tuple) -> None:
        generation = self.generation

        def done(resp: Any) -> None:
            self._joining = False
            if generation != self.generation:
                return
            if isinstance(resp, RequestFailed) or resp.error == "NOT_COORDINATOR":
                self._lost_coordinator()
                return
            if resp.error != "NONE":
                if resp.error == "UNKNOWN_MEMBER_ID":
                    self.member_id = ""
                self._join()
                return
            self.rebalances += 1
            self.assignment = resp.assignment
            self._start_consuming()

        assert self.coordinator is not None         # a JoinGroup answer came from it
        self.request(self.coordinator, SyncGroupRequest(self.group_id, self.member_id, generation, assignments),
                     done, self.cfg["max.poll.interval.ms"])

    def _heartbeat(self) -> None:
        if self.protocol == "consumer" or self.coordinator is None or self._joining or not self.member_id:
            return
        coordinator = self.coordinator

        def done(resp: Any) -> None:
            if coordinator != self.coordinator or self._joining:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"):
                self._lost_coordinator()
            elif resp.error in ("REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION"):
                self._join()
            elif resp.error == "UNKNOWN_MEMBER_ID":
                self.member_id = ""
                self._join()

        self.request(coordinator, HeartbeatRequest(self.group_id, self.member_id, self.generation), done,
                     self.cfg["request.timeout.ms"])

    # -- KIP-848: the coordinator assigns ------------------------------------------------------------------------------
    def _schedule_beat(self, delay_ms: float) -> None:
        """The next ConsumerGroupHeartbeat (one pending at a time: a later schedule replaces an earlier)."""
        token = self._beat_token = self._beat_token + 1
        self.after(delay_ms, lambda: self._beat() if token == self._beat_token else None)

    def _beat(self) -> None:
        """member epoch 0 joins with the subscription; later ones carry what the member owns."""
        if self.coordinator is None:
            return
        coordinator, joining = self.coordinator, self.generation == 0
        self.member_id = self.member_id or self.member_uuid
        req = ConsumerGroupHeartbeatRequest(
            self.group_id, self.member_id, self.generation, self.name,
            self.cfg["max.poll.interval.ms"] if joining else -1, self.topics if joining else None,
            (self.cfg["group.remote.assignor"] or None) if joining else None, tuple(sorted(self.assignment)))

        def done(resp: Any) -> None:
            if coordinator != self.coordinator:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"):
                self._lost_coordinator()
            elif resp.error in ("UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH"):
                # fenced: its partitions are someone else's now; it joins again with the same member id
                self._reconcile(())
                self.generation = 0
                self._schedule_beat(self.cfg["retry.backoff.ms"])
            elif resp.error != "NONE":
                self._schedule_beat(self.cfg["retry.backoff.ms"])
            else:
                self.generation = resp.member_epoch
                revoked = resp.assignment is not None and self._reconcile(resp.assignment)
                # having let go of partitions, it says so at once: the coordinator hands them on
                self._schedule_beat(0.0 if revoked else resp.heartbeat_interval_ms)

        self.request(coordinator, req, done, self.cfg["request.timeout.ms"])

    def _reconcile(self, assignment: tuple[TopicPartition, ...]) -> bool:
        """Take the assignment the coordinator gave; True when it let go of partitions."""
        new = tuple(sorted(assignment))
        if new == tuple(sorted(self.assignment)):
            return False
        revoked = set(self.assignment) - set(new)
        if revoked and self.commit_mode == "auto":
            self._commit({tp: off for tp, off in self._consumed().items() if tp in revoked})
        self.rebalances += 1
        self.assignment = new
        self._start_consuming()
        return bool(revoked)

    # -- positions and fetching -------------------------------------------------------------------------------------
    def _update_metadata(self, resp: Any) -> None:
        if resp.brokers:
            self.brokers = dict(resp.brokers)
        self.metadata.update(resp.topics)

    def _start_consuming(self) -> None:
        assignment = self.assignment
        self.positions = {tp: p for tp, p in self.positions.items() if tp in assignment}
        self.handed = {tp: p for tp, p in self.handed.items() if tp in assignment}
        missing = tuple(tp for tp in assignment if tp not in self.positions)
        if not missing:
            self._fetch_all()
            return

        def done(resp: Any) -> None:
            if self.assignment != assignment:
                return
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.after(self.cfg["retry.backoff.ms"], self._start_consuming)
                return
            for tp, offset in resp.offsets.items():
                if offset >= 0:
                    self.positions[tp] = offset
            self._reset_missing()

        assert self.coordinator is not None         # positions are fetched once a coordinator is known
        self.request(self.coordinator, OffsetFetchRequest(self.group_id, missing), done, self.cfg["request.timeout.ms"])

    def _reset_missing(self) -> None:
        """auto.offset.reset for partitions without a committed offset: one round at a time, and
        one retry after retry.backoff.ms for whatever is still missing."""
        policy = self.cfg["auto.offset.reset"]
        missing = [tp for tp in self.assignment if tp not in self.positions]
        if not missing:
            self._fetch_all()       # every partition resumes from its committed offset
            return
        if self._resetting:
            return
        if policy == "none":
            raise KafkaError(f"no committed offset for {missing} and auto.offset.reset=none")
        self._resetting = True
        assignment = self.assignment
        outstanding = [0]

        def round_done() -> None:
            self._resetting = False
            self._fetch_all()
            if self.assignment == assignment and any(tp not in self.positions for tp in assignment):
                self.after(self.cfg["retry.backoff.ms"], self._reset_missing)

        def after_metadata(meta: Any) -> None:
            if isinstance(meta, RequestFailed):
                round_done()
                return
            self._update_metadata(meta)
            for tp in missing:
                leader = self.metadata[tp.topic][tp.partition].leader
                if leader < 0 or leader not in self.brokers:
                    continue
                outstanding[0] += 1

                def got(resp: Any, tp: TopicPartition = tp) -> None:
                    if not isinstance(resp, RequestFailed) and resp.error == "NONE" and tp in self.assignment:
                        self.positions.setdefault(tp, resp.offset)
                    outstanding[0] -= 1
                    if outstanding[0] == 0:
                        round_done()

                self.request(self.brokers[leader], ListOffsetsRequest(tp, -2 if policy == "earliest" else -1), got,
                             self.cfg["request.timeout.ms"])
            if outstanding[0] == 0:
                round_done()

        topics = tuple(sorted({tp.topic for tp in self.assignment}))
        self.request(self._any_broker(), MetadataRequest(topics), after_metadata, self.cfg["request.timeout.ms"])

    def _fetch_all(self) -> None:
        by_leader: dict[int, dict[TopicPartition, FetchPartition]] = {}
        buffered = {tp for tp, *_ in self._ready} if self._ready else ()
        positions, busy = self.positions, self._fetching
        for tp in self.assignment:
            # a partition whose fetched records still wait for the application is not fetched again
            if tp not in positions or tp in buffered:
                continue
            parts = self.metadata.get(tp.topic)
            leader = parts[tp.partition].leader if parts else -1
            if leader < 0 or leader not in self.brokers:
                self._refresh_and_fetch()
                continue
            if leader not in busy:
                by_leader.setdefault(leader, {})[tp] = FetchPartition(positions[tp])
        for leader, fetching in by_leader.items():
            busy.add(leader)
            req = FetchRequest(-1, fetching, self.cfg["fetch.max.wait.ms"], self.cfg["fetch.max.bytes"])
            self.request(self.brokers[leader], req, lambda r, leader=leader: self._on_fetch(leader, r),
                         self.cfg["fetch.max.wait.ms"] + self.cfg["request.timeout.ms"])

    def _refresh_and_fetch(self) -> None:
        if self._refreshing:
            return
        self._refreshing = True

        def done(meta: Any) -> None:
            self._refreshing = False
            if not isinstance(meta, RequestFailed):
                self._update_metadata(meta)
            self.after(self.cfg["retry.backoff.ms"], self._fetch_all)

        topics = tuple(sorted({tp.topic for tp in self.assignment}))
        self.request(self._any_broker(), MetadataRequest(topics), done, self.cfg["request.timeout.ms"])

    def _on_fetch(self, leader: int, resp: Any) -> None:
        self._fetching.discard(leader)
        if isinstance(resp, RequestFailed):
            self._refresh_and_fetch()
            return
        stale = reset = False
        for tp, data in resp.partitions.items():
            if tp not in self.assignment or tp not in self.positions:
                continue
            if data.error == "OFFSET_OUT_OF_RANGE" and self.positions[tp] < data.log_start_offset:
                # the records at the position were deleted (retention): the fetcher resets it per
                # auto.offset.reset; with none, poll() throws OffsetOutOfRangeException and the application stops
                if self.cfg["auto.offset.reset"] == "none":
                    self.failure = (f"OffsetOutOfRangeException: fetch position {self.positions[tp]} is out of range "
                                    f"for partition {tp.topic}-{tp.partition}")
                    self.close()
                    return
                del self.positions[tp]
                self.out_of_range_resets += 1
                reset = True
                continue
            if data.error != "NONE":
                stale = True
                continue
            position = self.positions[tp]
            records: list[ConsumerRecord] = []
            count = 0
            for batch in data.batches:
                if batch.next_offset <= position:
                    continue
                skip = max(0, position - batch.base_offset)
                count += batch.count - skip
                if batch.records is not None:
                    records.extend(ConsumerRecord(tp.topic, tp.partition, batch.base_offset + i, r.key, r.value,
                                                  batch.producer_id, batch.base_sequence + i)
                                   for i, r in enumerate(batch.records) if i >= skip)
                position = batch.next_offset
            if count:
                self.positions[tp] = position
                self._ready.append((tp, records, count, position))
        if stale:
            self._refresh_and_fetch()
        if reset:
            self._reset_missing()
        self._process_next()
        self._fetch_all()

    # -- processing and commits ----------------------------------------------------------------------------------------
    def _process_next(self) -> None:
        """Start processing the next fetched batch, record by record (processing_ms each)."""
        if self._processing or not self._ready:
            return
        tp, records, count, position = self._ready.popleft()
        self._processing = True
        self.consumed += count
        self._fetch_all()           # tp has nothing buffered any more: fetch ahead while this batch is processed
        if self.commit_mode == "before":
            self._commit({tp: position})
        # bulk workload records carry no payloads: one unit, or one per record when each takes time
        self._units = [([r], 1) for r in records] or ([([], 1)] * count if self.processing_ms else [([], count)])
        self._unit = 0
        self._handed_in_batch = 0
        self._batch_end = (tp, position)
        self._batch_start = position - count
        self._process_unit()

    def _process_unit(self) -> None:
        # without a processing time the batch is handled in a loop: no recursion per record
        while self._unit < len(self._units):
            self._hand_over()
            if self.processing_ms:
                self._schedule_unit()
                return
            self._finish_unit()
        self._processing = False
        tp, position = self._batch_end
        if self.commit_mode == "after":
            self._commit({tp: position})
        self._process_next()

    def _consumed(self) -> dict[TopicPartition, int]:
        """What auto-commit commits (the Java client's allConsumed): each assigned partition's position as
        the application sees it: past what it was handed, not what was fetched ahead of it."""
        ahead = {tp for tp, *_ in self._ready}
        if self._processing:
            ahead.add(self._batch_end[0])
        return {tp: self.handed[tp] if tp in ahead else p for tp, p in self.positions.items()
                if tp not in ahead or tp in self.handed}

    def _hand_over(self) -> None:
        """The unit's records are returned to the application (poll): auto-commit may commit past them."""
        _, n = self._units[self._unit]
        self._handed_in_batch += n
        self.handed[self._batch_end[0]] = self._batch_start + self._handed_in_batch

    def _schedule_unit(self) -> None:
        _, n = self._units[self._unit]
        token = self._unit_token = self._unit_token + 1
        # per record, payloads or not; a pace change (set_processing_ms) makes the pending one moot
        self.after(self.processing_ms * n, lambda: self._unit_done() if token == self._unit_token else None)

    def set_processing_ms(self, processing_ms: float) -> None:
        """The application's pace changes (slower, or fixed): a unit being processed ends at the new pace."""
        waiting = self._processing and self._unit < len(self._units)
        self.processing_ms = processing_ms
        if waiting:
            self._unit_token += 1
            if processing_ms:
                self._schedule_unit()
            else:
                self._unit_done()

    def _unit_done(self) -> None:
        self._finish_unit()
        self._process_unit()

    def _finish_unit(self) -> None:
        recs, n = self._units[self._unit]
        self._unit += 1
        self.processed += n
        if self.on_records:
            self.on_records(self._batch_end[0], recs, n)

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets or self.coordinator is None or not self.member_id:
            return
        req = OffsetCommitRequest(self.group_id, self.member_id, self.generation, tuple(sorted(offsets.items())))
        self.request(self.coordinator, req, lambda r: None, self.cfg["request.timeout.ms"])
