"""ShareFetch and ShareAcknowledge on a broker (KIP-932): the SharePartitionManager of Kafka's broker.

A share consumer keeps one share session per broker it fetches from, keyed by group and member: epoch 0 opens it
(with the partitions to fetch), each later request carries the next epoch and may add or forget partitions, -1
closes it and releases what the member still holds. For each partition led here the broker keeps a
SharePartition per group (broker/share_partition.py), its state read from the share coordinator when it starts
and written back after each acknowledgement. A fetch answers at once with the records it could acquire, or waits
up to its max wait for new records (or records whose lock ran out).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broker.mbeans.yammer import INT
from broker.net import RequestFailed
from broker.protocol import ShareAck, ShareAcknowledgeRequest, ShareFetchRequest, ShareFetchResponse, SharePartitionData
from broker.share_coordinator import ReadShareStateRequest, ShareState, WriteShareStateRequest
from broker.share_partition import ACCEPT, ACQUIRED, AVAILABLE, REJECT, RELEASE, SharePartition
from broker.structs import TopicPartition
from kafka_common.names import ObjectName

if TYPE_CHECKING:
    from broker.broker import BrokerNode
    from broker.log import Batch

FINAL_EPOCH = -1
ACK_METER_TYPES = {ACCEPT: "Accept", RELEASE: "Release", REJECT: "Reject"}


@dataclass
class ShareSession:
    group_id: str
    member_id: str
    epoch: int                                              # the epoch the next request must carry
    partitions: set[TopicPartition] = field(default_factory=set)
    last_used_ms: float = 0.0


@dataclass
class _Waiting:
    session: ShareSession
    respond: Callable[[], None]
    done: bool = False


class SharePartitionManager:
    def __init__(self, broker: BrokerNode) -> None:
        self.broker = broker
        self.partitions: dict[tuple[str, TopicPartition], SharePartition] = {}
        self.starting: set[tuple[str, TopicPartition]] = set()   # reading their state from the share coordinator
        self.sessions: dict[tuple[str, str], ShareSession] = {}
        self.waiting: list[_Waiting] = []
        self._register_metrics()
        broker.every(1000.0, self._expire)

    def _register_metrics(self) -> None:
        m = self.broker.mbeans
        m.gauge("kafka.server", "ShareSessionCache", "ShareSessionsCount", lambda: len(self.sessions), java_type=INT)
        m.gauge("kafka.server", "ShareSessionCache", "SharePartitionsCount",
                lambda: sum(len(s.partitions) for s in self.sessions.values()), java_type=INT)
        self._evictions = m.meter("kafka.server", "ShareSessionCache", "ShareSessionEvictionsPerSec", "evictions")
        self._acks = {kind: m.meter("kafka.server", "ShareGroupMetrics", "RecordAcknowledgementsPerSec", "records",
                                    {"ackType": name}) for kind, name in ACK_METER_TYPES.items()}
        self._load_time = m.histogram("kafka.server", "ShareGroupMetrics", "PartitionLoadTimeMs")
        for name in ("PurgatorySize", "NumDelayedOperations"):
            m.gauge("kafka.server", "DelayedOperationPurgatory", name, lambda: len(self.waiting),
                    {"delayedOperation": "ShareFetch"}, java_type=INT)

    def _expires(self) -> Any:
        """Kafka's DelayedShareFetchMetrics come with the first share fetch that waits (none without share groups)."""
        return self.broker.mbeans.meter("kafka.server", "DelayedShareFetchMetrics", "ExpiresPerSec", "expires")

    def _lock_timeouts(self, group_id: str, tp: TopicPartition) -> Any:
        """SharePartitionMetrics of a share partition led here (they go with it)."""
        return self.broker.mbeans.meter("kafka.server", "SharePartitionMetrics", "AcquisitionLockTimeoutPerSec",
                                        "acquisition lock timeout",
                                        {"group": group_id, "topic": tp.topic, "partition": str(tp.partition)})

    # -- the API ----------------------------------------------------------------------------------------------
    def on_share_fetch(self, src: str, req: ShareFetchRequest, reply: Callable) -> None:
        self._on_request(req, reply)

    def on_share_acknowledge(self, src: str, req: ShareAcknowledgeRequest, reply: Callable) -> None:
        self._on_request(req, reply)

    def _on_request(self, req: ShareFetchRequest | ShareAcknowledgeRequest, reply: Callable) -> None:
        broker = self.broker
        if not broker.share_groups_enabled():
            reply(ShareFetchResponse("UNSUPPORTED_VERSION", message="Share groups are not enabled."))
            return
        key = (req.group_id, req.member_id)
        session = self.sessions.get(key)
        now = broker.now()
        if req.session_epoch == 0:
            if not isinstance(req, ShareFetchRequest):        # only a fetch opens a session
                reply(ShareFetchResponse("INVALID_SHARE_SESSION_EPOCH"))
                return
            if session is None and len(self.sessions) >= broker.cfg["group.share.max.share.sessions"]:
                reply(ShareFetchResponse("SHARE_SESSION_LIMIT_REACHED"))
                return
            if session is not None:
                self._release(session)
            session = self.sessions[key] = ShareSession(req.group_id, req.member_id, 1)
        elif session is None:
            reply(ShareFetchResponse("SHARE_SESSION_NOT_FOUND"))
            return
        elif req.session_epoch != FINAL_EPOCH and req.session_epoch != session.epoch:
            reply(ShareFetchResponse("INVALID_SHARE_SESSION_EPOCH"))
            return
        elif req.session_epoch != FINAL_EPOCH:
            session.epoch += 1
        session.last_used_ms = now
        if isinstance(req, ShareFetchRequest):
            session.partitions.update(req.partitions)
            session.partitions.difference_update(req.forgotten)
            for tp in session.partitions:
                broker.topic_meter("TotalShareFetchRequestsPerSec", tp.topic)
        for tp in req.acks:
            broker.topic_meter("TotalShareAcknowledgementRequestsPerSec", tp.topic)
        ack_errors = self._acknowledge(req.group_id, req.member_id, req.acks)
        out: dict[TopicPartition, SharePartitionData] = {tp: SharePartitionData(ack_error=e) for tp, e in ack_errors.items()}
        if req.session_epoch == FINAL_EPOCH:
            self._release(session)
            del self.sessions[key]
            reply(ShareFetchResponse("NONE", out, self._lock_ms()))
            return
        if not isinstance(req, ShareFetchRequest):
            reply(ShareFetchResponse("NONE", out, self._lock_ms()))
            return
        fetch_req = req
        for tp in session.partitions:
            if self._led(tp) is not None:
                self._share_partition(req.group_id, tp)

        def respond() -> None:
            got = self._acquire(session, fetch_req)
            for tp, data in out.items():
                if tp not in got:
                    got[tp] = data
                else:
                    got[tp] = SharePartitionData(got[tp].error, data.ack_error, got[tp].batches, got[tp].acquired)
            reply(ShareFetchResponse("NONE", got, self._lock_ms()))

        if req.max_wait_ms <= 0 or self._available(session):
            respond()
            return
        waiting = _Waiting(session, respond)
        self._expires()
        self.waiting.append(waiting)
        broker.after(req.max_wait_ms, lambda: self._complete(waiting, expired=True))

    def _lock_ms(self) -> int:
        return int(self.broker.cfg["group.share.record.lock.duration.ms"])

    def _complete(self, waiting: _Waiting, expired: bool = False) -> None:
        if waiting.done:
            return
        if expired:
            self._expires().mark(self.broker.now())
        waiting.done = True
        self.waiting = [w for w in self.waiting if not w.done]
        waiting.respond()

    def wake(self) -> None:
        """Something became available (new records below a high watermark, a state read, a lock ran out)."""
        for waiting in list(self.waiting):
            if not waiting.done and self._available(waiting.session):
                self._complete(waiting)

    # -- acquiring --------------------------------------------------------------------------------------------
    def _led(self, tp: TopicPartition) -> Any:
        p = self.broker.replica_manager.partitions.get(tp)
        return p if p is not None and p.is_leader else None

    def _share_partition(self, group_id: str, tp: TopicPartition) -> SharePartition | None:
        """The group's SharePartition of tp, or None while its state is read (the read is started here)."""
        sp = self.partitions.get((group_id, tp))
        if sp is None and (group_id, tp) not in self.starting:
            self._start(group_id, tp)
        return sp

    def _available(self, session: ShareSession) -> bool:
        for tp in session.partitions:
            p = self._led(tp)
            sp = self.partitions.get((session.group_id, tp))
            if p is None or sp is None:
                continue
            if sp.end_offset < p.high_watermark and len(sp.in_flight) < sp.max_in_flight:
                return True
            if any(r.state == AVAILABLE for r in sp.in_flight.values()):
                return True
        return False

    def _acquire(self, session: ShareSession, req: ShareFetchRequest) -> dict[TopicPartition, SharePartitionData]:
        now = self.broker.now()
        out: dict[TopicPartition, SharePartitionData] = {}
        budget, records_left = req.max_bytes, req.max_records
        sent: dict[str, int] = {}
        for tp in sorted(session.partitions):
            p = self._led(tp)
            if p is None:
                out[tp] = SharePartitionData("NOT_LEADER_OR_FOLLOWER")
                continue
            sp = self._share_partition(session.group_id, tp)
            if sp is None or records_left <= 0 or budget <= 0:
                continue
            ranges = sp.acquire(session.member_id, p.high_watermark, records_left, now, p.log.start_offset)
            if not ranges:
                continue
            batches: dict[int, Batch] = {}
            for first, last, _ in ranges:
                for batch in p.log.fetch(first, budget, min(last + 1, p.high_watermark)):
                    if batch.base_offset not in batches:
                        batches[batch.base_offset] = batch
                        budget -= batch.size
            records_left -= sum(last - first + 1 for first, last, _ in ranges)
            ordered = tuple(batches[b] for b in sorted(batches))
            sent[tp.topic] = sent.get(tp.topic, 0) + sum(b.size for b in ordered)
            out[tp] = SharePartitionData("NONE", "NONE", ordered, tuple(ranges))
        for topic, nbytes in sent.items():
            self.broker.topic_meter("BytesOutPerSec", topic, nbytes)
        return out

    # -- acknowledging ----------------------------------------------------------------------------------------
    def _acknowledge(self, group_id: str, member_id: str, acks: dict[TopicPartition, tuple[ShareAck, ...]]
                     ) -> dict[TopicPartition, str]:
        now = self.broker.now()
        errors: dict[TopicPartition, str] = {}
        for tp, batches in acks.items():
            sp = self.partitions.get((group_id, tp))
            if self._led(tp) is None:
                errors[tp] = "NOT_LEADER_OR_FOLLOWER"
                continue
            if sp is None:
                errors[tp] = "INVALID_RECORD_STATE"
                continue
            error = "NONE"
            for ack in batches:
                for i, offset in enumerate(range(ack.first, ack.last + 1)):
                    kind = ack.types[0] if len(ack.types) == 1 else ack.types[i]
                    result = sp.acknowledge(member_id, offset, offset, kind, now)
                    if result != "NONE":
                        error = result
                    elif kind in ACK_METER_TYPES:
                        self._acks[kind].mark(now)
            errors[tp] = error
            self._persist(group_id, tp, sp)
        return errors

    def _release(self, session: ShareSession) -> None:
        """A closed or replaced session: the member's acquired records are available to the others again."""
        for tp in session.partitions:
            sp = self.partitions.get((session.group_id, tp))
            if sp is not None and sp.release_member(session.member_id):
                self._persist(session.group_id, tp, sp)
        self.wake()

    def _expire(self) -> None:
        """Each second: locks that ran out; and sessions unused for longer than a share member's session timeout
        go, as Kafka drops a session when its client's connection closes (records held under it are released)."""
        now = self.broker.now()
        idle = self.broker.cfg["group.share.session.timeout.ms"]
        for key in [k for k, session in self.sessions.items() if now - session.last_used_ms > idle]:
            self._release(self.sessions.pop(key))
            self._evictions.mark(now)
        changed = False
        for (group_id, tp), sp in self.partitions.items():
            if sp.expire_locks(now):
                self._persist(group_id, tp, sp)
                changed = True
        if changed:
            self.wake()

    # -- the state at the share coordinator -------------------------------------------------------------------
    def _start(self, group_id: str, tp: TopicPartition) -> None:
        broker = self.broker
        target = broker.share_coordinator.coordinator_of(group_id, tp)
        if target is None:
            return
        self.starting.add((group_id, tp))
        started = broker.now()

        def read(resp: Any) -> None:
            self.starting.discard((group_id, tp))
            p = self._led(tp)
            if isinstance(resp, RequestFailed) or resp.error != "NONE" or p is None:
                return
            cfg = broker.cfg
            state: ShareState = resp.state
            fresh = state.start_offset < 0
            # share.auto.offset.reset, a group config: latest unless the group says otherwise
            start = p.high_watermark if fresh else max(state.start_offset, p.log.start_offset)
            sp = SharePartition(start, cfg["group.share.delivery.count.limit"],
                                cfg["group.share.partition.max.record.locks"],
                                float(cfg["group.share.record.lock.duration.ms"]), state.state_epoch)
            sp.restore(state.batches)
            self.partitions[(group_id, tp)] = sp
            meter = self._lock_timeouts(group_id, tp)
            sp.on_lock_timeout = lambda n: meter.mark(broker.now(), n)
            self._load_time.update(broker.now() - started, broker.now())
            if fresh:
                self._persist(group_id, tp, sp)
            self.wake()

        broker.request(target, ReadShareStateRequest(group_id, tp), read, broker.cfg["request.timeout.ms"])

    def _persist(self, group_id: str, tp: TopicPartition, sp: SharePartition) -> None:
        """WriteShareGroupState: the start offset and the in-flight records; a record acquired now is written as
        available (a new leader hands it out again)."""
        target = self.broker.share_coordinator.coordinator_of(group_id, tp)
        if target is None:
            return
        batches: list[tuple[int, int, str, int]] = []
        for offset in sorted(sp.in_flight):
            r = sp.in_flight[offset]
            kind = AVAILABLE if r.state == ACQUIRED else r.state
            if batches and batches[-1][1] == offset - 1 and batches[-1][2:] == (kind, r.delivery_count):
                batches[-1] = (batches[-1][0], offset, kind, r.delivery_count)
            else:
                batches.append((offset, offset, kind, r.delivery_count))
        state = ShareState(sp.start_offset, sp.state_epoch, tuple(batches))
        self.broker.request(target, WriteShareStateRequest(group_id, tp, state), lambda resp: None,
                            self.broker.cfg["request.timeout.ms"])

    def on_leadership(self, tp: TopicPartition, leader: bool) -> None:
        """A partition no longer led here: its share partitions go (their state is at the share coordinator)."""
        if leader:
            return
        for key in [k for k in self.partitions if k[1] == tp]:
            del self.partitions[key]
            self.broker.mbeans.unregister(ObjectName.kafka("kafka.server", "SharePartitionMetrics",
                                                           "AcquisitionLockTimeoutPerSec",
                                                           {"group": key[0], "topic": tp.topic,
                                                            "partition": str(tp.partition)}))
