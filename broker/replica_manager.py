"""ReplicaManager of one broker: the replicas it hosts, produce and fetch against them, the
purgatories of acks=all produces and long-poll fetches, ISR shrinks and expansions (AlterPartition
to the controller), and the ReplicaManager, Partition and purgatory metrics."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.mbeans.yammer import INT, LONG
from broker.metadata import PartitionState
from broker.net import RequestFailed
from broker.partition import Partition
from broker.protocol import (
    AlterPartitionRequest,
    FetchPartitionData,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    PartitionProduceResult,
    ProduceRequest,
    ProduceResponse,
)
from broker.structs import TopicPartition
from kafka_common.names import ObjectName, ObjectNamePattern

if TYPE_CHECKING:
    from broker.broker import BrokerNode

# errors that FailedProduceRequestsPerSec does not count (ReplicaManager.appendToLocalLog)
KNOWN_PRODUCE_ERRORS = {"UNKNOWN_TOPIC_OR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "MESSAGE_TOO_LARGE",
                        "RECORD_LIST_TOO_LARGE", "CORRUPT_MESSAGE", "KAFKA_STORAGE_ERROR"}


@dataclass
class _DelayedProduce:
    required: dict[TopicPartition, int]           # tp -> offset the HW must reach
    results: dict[TopicPartition, PartitionProduceResult]
    reply: Callable[[Any], None]
    done: bool = False
    expiry: Any = None                            # the timeout timer, cancelled on completion


@dataclass
class _DelayedFetch:
    req: FetchRequest
    reply: Callable[[Any], None]
    done: bool = False


class ReplicaManager:
    def __init__(self, node: BrokerNode) -> None:
        self.node = node
        self.partitions: dict[TopicPartition, Partition] = {}
        self.offline: set[TopicPartition] = set()
        self._delayed_produce: list[_DelayedProduce] = []
        self._delayed_fetch: dict[TopicPartition, list[_DelayedFetch]] = {}

    # -- metrics ---------------------------------------------------------------------------------------------
    def register_metrics(self) -> None:
        m = self.node.mbeans
        rm = ("kafka.server", "ReplicaManager")
        leaders = lambda: [p for p in self.partitions.values() if p.is_leader]
        m.gauge(*rm, "LeaderCount", lambda: len(leaders()), java_type=INT)
        m.gauge(*rm, "PartitionCount", lambda: len(self.partitions), java_type=INT)
        m.gauge(*rm, "OfflineReplicaCount", lambda: len(self.offline), java_type=INT)
        m.gauge(*rm, "UnderReplicatedPartitions",
                lambda: sum(1 for p in leaders() if len(p.isr) < len(p.replicas)), java_type=INT)
        m.gauge(*rm, "UnderMinIsrPartitionCount",
                lambda: sum(1 for p in leaders() if len(p.isr) < p.effective_min_isr), java_type=INT)
        m.gauge(*rm, "AtMinIsrPartitionCount",
                lambda: sum(1 for p in leaders() if len(p.isr) == p.effective_min_isr), java_type=INT)
        m.gauge(*rm, "ReassigningPartitions", lambda: 0, java_type=INT)
        m.gauge(*rm, "PartitionsWithLateTransactionsCount", lambda: 0, java_type=INT)
        m.gauge(*rm, "ProducerIdCount", lambda: sum(len(p.producers) for p in self.partitions.values()), java_type=INT)
        self.isr_shrinks = m.meter(*rm, "IsrShrinksPerSec", "shrinks")
        self.isr_expands = m.meter(*rm, "IsrExpandsPerSec", "expands")
        self.failed_isr_updates = m.meter(*rm, "FailedIsrUpdatesPerSec", "failedUpdates")

    def register_purgatory_metrics(self) -> None:
        m = self.node.mbeans
        for op in ("Produce", "Fetch"):
            m.gauge("kafka.server", "DelayedOperationPurgatory", "PurgatorySize", lambda op=op: self._purgatory(op),
                    {"delayedOperation": op}, java_type=INT)
            m.gauge("kafka.server", "DelayedOperationPurgatory", "NumDelayedOperations",
                    lambda op=op: self._purgatory(op, ops=True), {"delayedOperation": op}, java_type=INT)

    def _purgatory(self, op: str, ops: bool = False) -> int:
        if op == "Produce":
            live = [d for d in self._delayed_produce if not d.done]
            return len(live) if ops else sum(len(d.required) for d in live)
        watched = [d for ds in self._delayed_fetch.values() for d in ds if not d.done]
        return len({id(d) for d in watched}) if ops else len(watched)

    def _register_partition_metrics(self, tp: TopicPartition) -> None:
        m = self.node.mbeans
        tags = {"topic": tp.topic, "partition": str(tp.partition)}
        part = lambda: self.partitions.get(tp)

        def leader_only(fn: Callable[[Partition], int]) -> Callable[[], int]:
            return lambda: fn(p) if (p := part()) is not None and p.is_leader else 0

        if ObjectName.kafka("kafka.cluster", "Partition", "UnderReplicated", tags) in m:
            return
        m.gauge("kafka.cluster", "Partition", "UnderReplicated", leader_only(lambda p: int(len(p.isr) < len(p.replicas))), tags, INT)
        m.gauge("kafka.cluster", "Partition", "InSyncReplicasCount", leader_only(lambda p: len(p.isr)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "ReplicasCount", leader_only(lambda p: len(p.replicas)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "UnderMinIsr", leader_only(lambda p: int(len(p.isr) < p.effective_min_isr)), tags, INT)
        m.gauge("kafka.cluster", "Partition", "AtMinIsr", leader_only(lambda p: int(len(p.isr) == p.effective_min_isr)), tags, INT)
        # HW - last stable offset on every replica with a log: 0, as nothing here writes transactions
        m.gauge("kafka.cluster", "Partition", "LastStableOffsetLag", lambda: 0, tags, LONG)
        self.node.log_manager.register_log_metrics(tp)

    # -- partition state from the metadata log ------------------------------------------------------------------
    def apply(self, tp: TopicPartition, state: PartitionState, min_isr: int) -> None:
        """Become the leader or a follower of tp, or follow an ISR change, as the metadata image says."""
        node = self.node
        if node.node_id not in state.replicas or tp in self.offline:
            return
        part = self.partitions.get(tp)
        if part is None:
            log = node.log_manager.log_for(tp)
            if log is None:
                self.offline.add(tp)
                return
            part = Partition(tp, log, node.node_id, node.log_manager.disk.hw_checkpoint.get(tp, 0))
            self.partitions[tp] = part
            self._register_partition_metrics(tp)
        role = part.update(state.replicas, state.isr, state.leader, state.leader_epoch, state.partition_epoch,
                           min_isr, node.cfg["replica.lag.time.max.ms"], node.now())
        if role == "leader":
            node.fetcher_manager.remove(tp)
            if part.maybe_advance_hw(node.now()):
                self._on_hw_moved(tp)
            node.leadership_changed(tp, True)
        elif role == "follower":
            node.fetcher_manager.remove(tp)
            self._complete_delayed_produce(tp)
            node.leadership_changed(tp, False)
            if state.leader >= 0:
                node.fetcher_manager.add(state.leader, tp)
        elif part.is_leader:
            # ISR changed: the HW may move (shrink) and waiting acks=all requests may complete or fail
            if part.maybe_advance_hw(node.now()):
                self._on_hw_moved(tp)
            self._complete_delayed_produce(tp)

    def take_offline(self, tps: list[TopicPartition]) -> None:
        """The replicas of a failed log directory: gone from here until the process restarts."""
        for tp in tps:
            if tp in self.partitions:
                self._stop_replica(tp)
                self.offline.add(tp)
        self.node.fetcher_manager.shutdown_idle()

    def delete_topic(self, topic: str) -> None:
        """The topic was deleted: its replicas stop, their logs go from the disk and the topic's
        BrokerTopicMetrics go with them (ReplicaManager.stopPartitions with deletion)."""
        node = self.node
        disk = node.log_manager.disk
        for tp in [tp for tp in self.partitions if tp.topic == topic]:
            self._stop_replica(tp)
        for tp in [tp for tp in set(disk.logs) | self.offline if tp.topic == topic]:
            disk.logs.pop(tp, None)
            disk.dirs.pop(tp, None)
            disk.hw_checkpoint.pop(tp, None)
            self.offline.discard(tp)
        node.coordinator.on_topic_deleted(topic)
        for name in list(node.mbeans.names([ObjectNamePattern(f"kafka.server:type=BrokerTopicMetrics,topic={topic},*")])):
            node.mbeans.unregister(name)

    def _stop_replica(self, tp: TopicPartition) -> None:
        node = self.node
        part = self.partitions.pop(tp)
        node.fetcher_manager.remove(tp)
        self._complete_delayed_produce(tp)
        if part.is_leader:
            node.leadership_changed(tp, False)
        # the Partition and Log gauges go with the replica, as Kafka removes them
        gone = [ObjectNamePattern(f"kafka.{domain}:type={kind},topic={tp.topic},partition={tp.partition},*")
                for domain, kind in (("cluster", "Partition"), ("log", "Log"))]
        for name in list(node.mbeans.names(gone)):
            node.mbeans.unregister(name)

    def high_watermarks(self) -> dict[TopicPartition, int]:
        return {tp: p.high_watermark for tp, p in self.partitions.items()}

    def on_list_offsets(self, src: str, req: ListOffsetsRequest, reply: Callable) -> None:
        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            reply(ListOffsetsResponse("NOT_LEADER_OR_FOLLOWER"))
            return
        if req.timestamp in (-2, -4):         # no tiered storage: the earliest local offset is the earliest
            reply(ListOffsetsResponse("NONE", p.log.start_offset))
        elif req.timestamp == -1:
            reply(ListOffsetsResponse("NONE", p.high_watermark))
        else:
            # a consumer reads below the high watermark only, so lookups stop there too
            found = p.log.offset_for_timestamp(None if req.timestamp == -3 else req.timestamp, p.high_watermark)
            reply(ListOffsetsResponse("NONE", *(found or (-1, None))))

    # -- produce -------------------------------------------------------------------------------------------------
    def on_produce(self, src: str, req: ProduceRequest, reply: Callable) -> None:
        node = self.node
        now = node.now()
        results: dict[TopicPartition, PartitionProduceResult] = {}
        required: dict[TopicPartition, int] = {}
        marks: dict[tuple[str, str], int] = {}      # (meter, topic) -> amount, marked once per request
        appended_tps: list[TopicPartition] = []
        moved_hw: list[TopicPartition] = []

        def mark(meter: str, topic: str, n: int = 1) -> None:
            marks[(meter, topic)] = marks.get((meter, topic), 0) + n

        for tp, batch in req.batches:
            mark("TotalProduceRequestsPerSec", tp.topic)
            p = self.partitions.get(tp)
            error = "KAFKA_STORAGE_ERROR" if tp in self.offline else \
                "UNKNOWN_TOPIC_OR_PARTITION" if p is None and tp.topic not in node.image.topics else \
                "NOT_LEADER_OR_FOLLOWER" if p is None else p.check_produce(req.acks)
            if error != "NONE":
                if error not in KNOWN_PRODUCE_ERRORS:
                    mark("FailedProduceRequestsPerSec", tp.topic)
                results[tp] = PartitionProduceResult(error)
                continue
            assert p is not None
            original_end = p.duplicate_of(batch)
            if original_end is not None:
                # a retry of a batch appended before: not again, but acknowledged only once that
                # first append is replicated, as acks=all promised
                results[tp] = PartitionProduceResult("NONE", original_end - batch.count)
                if req.acks == -1:
                    required[tp] = original_end
                continue
            appended = p.append_as_leader(batch.count, batch.size, now, batch.producer_id, batch.base_sequence,
                                          batch.records)
            mark("MessagesInPerSec", tp.topic, batch.count)
            mark("BytesInPerSec", tp.topic, batch.size)
            results[tp] = PartitionProduceResult("NONE", appended.base_offset)
            if req.acks == -1:
                required[tp] = appended.next_offset
            appended_tps.append(tp)
            if p.maybe_advance_hw(now):
                moved_hw.append(tp)
        # after the whole request, so a waiting follower fetch is answered once with every partition
        self._on_hw_moved(*moved_hw)
        self._wake_fetches(*appended_tps, follower=True)
        for (meter, topic), n in marks.items():
            node.topic_meter(meter, topic, n)
        if req.acks == 0:
            # Kafka sends no response, but the request still completes and updates its request metrics
            reply(ProduceResponse(results))
            return
        self._await_replication(required, results, reply, req.timeout_ms)

    def _await_replication(self, required: dict[TopicPartition, int],
                           results: dict[TopicPartition, PartitionProduceResult],
                           reply: Callable[[Any], None], timeout_ms: float) -> None:
        """Answer once the HW of every partition reached its required offset (acks=all), or at timeout."""
        if not required:
            reply(ProduceResponse(results))
            return
        delayed = _DelayedProduce(required, results, reply)
        self._delayed_produce.append(delayed)
        for tp in list(required):
            self._complete_delayed_produce(tp)
        if not delayed.done:
            delayed.expiry = self.node.after(timeout_ms, lambda: self._expire_produce(delayed))

    def append_internal(self, tp: TopicPartition, records: tuple, done: Callable[[str], None]) -> None:
        """Append coordinator records (offset commits) to a partition led here, waiting for the ISR."""
        node = self.node
        p = self.partitions.get(tp)
        if p is None or not p.is_leader:
            done("NOT_COORDINATOR")
            return
        batch = p.append_as_leader(len(records), 80 * len(records), node.now(), -1, -1, records)
        if p.maybe_advance_hw(node.now()):
            self._on_hw_moved(tp)
        self._wake_fetches(tp, follower=True)

        def replicated(resp: ProduceResponse) -> None:
            error = resp.results.get(tp, PartitionProduceResult()).error
            done("NOT_COORDINATOR" if error == "NOT_LEADER_OR_FOLLOWER" else error)

        self._await_replication({tp: batch.next_offset}, {}, replicated, node.cfg["request.timeout.ms"])

    def _complete_delayed_produce(self, tp: TopicPartition) -> None:
        for d in self._delayed_produce:
            if d.done or tp not in d.required:
                continue
            p = self.partitions.get(tp)
            if p is None or not p.is_leader:
                d.results[tp] = PartitionProduceResult("NOT_LEADER_OR_FOLLOWER")
                del d.required[tp]
            elif p.high_watermark >= d.required[tp]:
                if len(p.isr) < p.effective_min_isr:
                    d.results[tp] = PartitionProduceResult("NOT_ENOUGH_REPLICAS_AFTER_APPEND")
                del d.required[tp]
            if not d.required:
                d.done = True
                if d.expiry is not None:
                    d.expiry.cancel()
                d.reply(ProduceResponse(d.results))
        self._delayed_produce = [d for d in self._delayed_produce if not d.done]

    def _expire_produce(self, d: _DelayedProduce) -> None:
        if d.done:
            return
        d.done = True
        mbeans = self.node.mbeans
        now = self.node.now()
        # Kafka's DelayedProduceMetrics registers its meters on the first expiration: the
        # aggregate one and one per partition whose acks were still pending
        mbeans.meter("kafka.server", "DelayedProduceMetrics", "ExpiresPerSec", "requests").mark(now)
        for tp in d.required:
            mbeans.meter("kafka.server", "DelayedProduceMetrics", "ExpiresPerSec", "requests",
                         {"topic": tp.topic, "partition": str(tp.partition)}).mark(now)
            d.results[tp] = PartitionProduceResult("REQUEST_TIMED_OUT")
        d.reply(ProduceResponse(d.results))
        self._delayed_produce = [x for x in self._delayed_produce if not x.done]

    # -- fetch (followers and consumers) --------------------------------------------------------------------------
    def on_fetch(self, src: str, req: FetchRequest, reply: Callable) -> None:
        follower = req.replica_id >= 0
        now = self.node.now()
        error, session_id = self.node.fetch_sessions.fetch(req.session_id, req.session_epoch, len(req.partitions),
                                                           follower)
        if error != "NONE":
            reply(FetchResponse({}, error))
            return
        if session_id:
            reply = _answering_in_session(reply, session_id)
        if follower:
            moved_hw = []
            for tp, fp in req.partitions.items():
                p = self.partitions.get(tp)
                if p is None or not p.is_leader or fp.current_leader_epoch != p.leader_epoch:
                    continue
                if p.diverging(fp.fetch_offset, fp.last_fetched_epoch) is not None:
                    continue
                moved, propose = p.update_follower(req.replica_id, fp.fetch_offset, now)
                if moved:
                    moved_hw.append(tp)
                if propose is not None:
                    self._alter_isr(p, propose)
            # after the whole request: a waiting consumer fetch is answered once, with every partition
            self._on_hw_moved(*moved_hw)
        resp = self._read(req)
        if any(d.batches or d.error != "NONE" or d.diverging for d in resp.partitions.values()) or req.max_wait_ms <= 0:
            reply(resp)
            return
        delayed = _DelayedFetch(req, reply)
        for tp in req.partitions:
            self._delayed_fetch.setdefault(tp, []).append(delayed)
        self.node.after(req.max_wait_ms, lambda: self._complete_fetch(delayed))

    def _read(self, req: FetchRequest) -> FetchResponse:
        follower = req.replica_id >= 0
        out: dict[TopicPartition, FetchPartitionData] = {}
        budget = req.max_bytes
        reads: dict[str, int] = {}          # partitions read per topic (TotalFetchRequestsPerSec)
        sent: dict[str, int] = {}           # bytes sent to consumers per topic (BytesOutPerSec)
        replicated = 0
        partitions, offline = self.partitions, self.offline
        for tp, fp in req.partitions.items():
            p = partitions.get(tp)
            if offline and tp in offline:
                out[tp] = FetchPartitionData("KAFKA_STORAGE_ERROR")
                continue
            # Partition.getLocalLog: the fetcher's leader epoch first, then leadership. A follower that
            # learned of a leader change before the new leader did is told UNKNOWN_LEADER_EPOCH, not
            # NOT_LEADER_OR_FOLLOWER
            if p is not None and fp.current_leader_epoch >= 0 and fp.current_leader_epoch != p.leader_epoch:
                out[tp] = FetchPartitionData("FENCED_LEADER_EPOCH" if fp.current_leader_epoch < p.leader_epoch
                                             else "UNKNOWN_LEADER_EPOCH")
                continue
            if p is None or p.leader != p.broker_id:
                out[tp] = FetchPartitionData("NOT_LEADER_OR_FOLLOWER")
                continue
            if follower:
                div = p.diverging(fp.fetch_offset, fp.last_fetched_epoch)
                if div is not None:
                    out[tp] = FetchPartitionData("NONE", p.high_watermark, diverging=div)
                    continue
            log = p.log
            if fp.fetch_offset > log.end_offset or fp.fetch_offset < log.start_offset:
                out[tp] = FetchPartitionData("OFFSET_OUT_OF_RANGE", p.high_watermark, log_start_offset=log.start_offset)
                continue
            reads[tp.topic] = reads.get(tp.topic, 0) + 1
            if budget <= 0 or fp.fetch_offset >= (log.end_offset if follower else p.high_watermark):
                out[tp] = FetchPartitionData("NONE", p.high_watermark, log_start_offset=log.start_offset)
                continue
            batches = tuple(log.fetch(fp.fetch_offset, budget, None if follower else p.high_watermark))
            nbytes = sum(b.size for b in batches)
            budget -= nbytes
            if follower:
                replicated += nbytes
            elif nbytes:
                sent[tp.topic] = sent.get(tp.topic, 0) + nbytes
            out[tp] = FetchPartitionData("NONE", p.high_watermark, batches, log_start_offset=log.start_offset)
        for topic, n in reads.items():
            self.node.topic_meter("TotalFetchRequestsPerSec", topic, n)
        for topic, n in sent.items():
            self.node.topic_meter("BytesOutPerSec", topic, n)
        if replicated:
            self.node.topic_meter("ReplicationBytesOutPerSec", None, replicated)
        return FetchResponse(out)

    def _complete_fetch(self, d: _DelayedFetch) -> None:
        if d.done:
            return
        d.done = True
        for tp in d.req.partitions:
            waiting = self._delayed_fetch.get(tp)
            if waiting:
                self._delayed_fetch[tp] = [x for x in waiting if not x.done]
        d.reply(self._read(d.req))

    def _wake_fetches(self, *tps: TopicPartition, follower: bool) -> None:
        """Answer the waiting fetches (of followers, or of consumers) that read one of tps."""
        woken: list[_DelayedFetch] = []
        for tp in tps:
            for d in self._delayed_fetch.get(tp, ()):
                if not d.done and (d.req.replica_id >= 0) == follower and d not in woken:
                    woken.append(d)
        for d in woken:
            self._complete_fetch(d)

    def _on_hw_moved(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._complete_delayed_produce(tp)
        self._wake_fetches(*tps, follower=False)
        if tps:
            self.node.share_partitions.wake()

    # -- ISR changes ------------------------------------------------------------------------------------------------
    def shrink_isrs(self) -> None:
        now = self.node.now()
        lag = self.node.cfg["replica.lag.time.max.ms"]
        for p in list(self.partitions.values()):
            new_isr = p.out_of_sync(now, lag)
            if new_isr is not None:
                self._alter_isr(p, new_isr)

    def _alter_isr(self, p: Partition, new_isr: tuple[int, ...]) -> None:
        node = self.node
        target = node.controller_name()
        epoch = node.lifecycle.broker_epoch
        if target is None or epoch < 0:
            return
        p.pending_isr = new_isr
        shrink = len(new_isr) < len(p.isr)
        req = AlterPartitionRequest(node.node_id, epoch, p.tp, p.leader_epoch, p.partition_epoch, new_isr)

        def done(resp: Any) -> None:
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                self.failed_isr_updates.mark(node.now())
                if p.pending_isr == new_isr:
                    p.pending_isr = None
                return
            (self.isr_shrinks if shrink else self.isr_expands).mark(node.now())

        node.request(target, req, done, node.cfg["controller.quorum.request.timeout.ms"])


def _answering_in_session(reply: Callable, session_id: int) -> Callable:
    return lambda resp: reply(dataclasses.replace(resp, session_id=session_id))
