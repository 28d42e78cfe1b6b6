"""KRaft: the Raft client every node runs for the __cluster_metadata log.

Pull-based, as KafkaRaftClient: followers and observers fetch from the leader; a voter that
hears nothing from the leader for controller.quorum.fetch.timeout.ms starts an election
(epoch + 1, votes, randomized election timeout from controller.quorum.election.timeout.ms);
the leader commits an offset once a majority of voters has fetched past it (and an entry of its
own epoch is included); a leader that no majority fetched from for 1.5 fetch timeouts resigns.
Brokers are observers: they fetch, never vote.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from broker.log import Batch, Log
from broker.mbeans.kafka_metrics import SampledStat
from broker.mbeans.registry import MBeanRegistry
from broker.metadata import LeaderChangeMessage, MetadataRecord
from broker.net import RequestFailed
from broker.node import Node
from broker.sched import Timer

FETCH_MAX_WAIT_MS = 500.0     # KafkaRaftClient's fetch long-poll
OBSERVER_SESSION_TIMEOUT_MS = 300_000.0   # LeaderState forgets an observer that stopped fetching
RECORD_BYTES = 64


@dataclass(frozen=True, slots=True)
class VoteRequest:
    epoch: int
    candidate_id: int
    last_epoch: int
    end_offset: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    epoch: int
    granted: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    epoch: int
    leader_id: int


@dataclass(frozen=True, slots=True)
class RaftFetchRequest:
    epoch: int
    replica_id: int
    fetch_offset: int
    last_fetched_epoch: int


@dataclass(frozen=True, slots=True)
class RaftFetchResponse:
    epoch: int
    leader_id: int
    error: str = "NONE"           # NONE, FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER
    batches: tuple[Batch, ...] = ()
    high_watermark: int = -1
    diverging: tuple[int, int] | None = None


def directory_id(node_id: int) -> str:
    """A Kafka-style base64 Uuid for a voter's metadata log directory; zero Uuid for none."""
    if node_id < 0:
        return "AAAAAAAAAAAAAAAAAAAAAA"
    return base64.urlsafe_b64encode(hashlib.md5(f"log-dir-{node_id}".encode()).digest()).decode().rstrip("=")


# what goes over a node's raft channel (raft-channel-metrics)
RAFT_REQUESTS = (VoteRequest, BeginQuorumEpochRequest, RaftFetchRequest)


class QuorumState:
    UNATTACHED, VOTED, PROSPECTIVE, CANDIDATE, LEADER, FOLLOWER, RESIGNED = (
        "unattached", "voted", "prospective", "candidate", "leader", "follower", "resigned")


@dataclass
class QuorumStore:
    """What a node keeps on disk for raft: the log and the quorum-state file."""
    log: Log
    epoch: int = 0
    voted_for: int = -1


class RaftClient:
    """One node's raft client for one incarnation; `voters` maps node.id -> node name."""

    def __init__(self, node: Node, node_id: int, voters: dict[int, str], config, store: QuorumStore,
                 mbeans: MBeanRegistry, on_commit: Callable[[list[Batch]], None],
                 on_leader_change: Callable[[], None]) -> None:
        self.node = node
        self.node_id = node_id
        self.voters = voters
        self.is_voter = node_id in voters
        self.cfg = config
        self.store = store
        self.log = store.log
        # who applies committed batches: the node's own handler, and a combined node's broker after it
        self.commit_listeners = [on_commit]
        self.on_leader_change = on_leader_change
        self._register_metrics(mbeans)

    @property
    def epoch(self) -> int:
        return self.store.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.store.epoch = value

    @property
    def voted_for(self) -> int:
        return self.store.voted_for

    @voted_for.setter
    def voted_for(self, value: int) -> None:
        self.store.voted_for = value

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self.state = QuorumState.UNATTACHED
        self.leader_id = -1
        self.high_watermark = -1
        self.applied_offset = -1
        self._fetching = False
        self._last_fetch_ok = self.node.now()
        self._election_timer: Timer | None = None
        self._observer_target = 0
        # a follower that has fetched from its leader since it began following refuses pre-votes
        # (Kafka's FollowerState); one back from a lost pre-vote has not
        self._fetched_from_leader = False
        self._observer_lost = False          # an observer whose fetches time out asks the voters in turn
        # KafkaRaftMetrics: an election is timed from becoming prospective, restarted on becoming a
        # candidate, recorded on becoming leader or follower; observers never campaign
        self._election_start_ms: float | None = None
        self._votes: set[int] = set()
        # leader state
        self._voter_offsets: dict[int, int] = {}
        self._observer_last_fetch: dict[int, float] = {}
        self._voter_last_fetch: dict[int, float] = {}
        self._epoch_start_offset = 0
        self._held: list[tuple[RaftFetchRequest, Callable]] = []
        self._append_times: list[tuple[int, float]] = []
        if self.is_voter:
            self._reset_election_timer()
        self.node.every(self.cfg["controller.quorum.fetch.timeout.ms"] / 4, self._check_timeouts)
        self._fetch_soon(0)

    # -- metrics ----------------------------------------------------------------------------------
    def _register_metrics(self, mbeans: MBeanRegistry) -> None:
        bean = self._bean = mbeans.kafka_metrics("raft-metrics")
        now = self.node.now()
        if self.is_voter:
            bean.add_value("number-of-voters", lambda: len(self.voters))
        bean.add_value("current-leader", lambda: self.leader_id)
        bean.add_value("current-vote", lambda: self.voted_for)
        bean.add_value("current-vote-directory-id", lambda: directory_id(self.voted_for))
        bean.add_value("current-epoch", lambda: self.epoch)
        bean.add_value("current-state", self.metrics_state)
        bean.add_value("high-watermark", lambda: self.high_watermark)
        bean.add_value("log-end-offset", lambda: self.log.end_offset)
        bean.add_value("log-end-epoch", lambda: self.log.last_epoch)
        bean.add_value("number-unknown-voter-connections", lambda: 0)
        self._commit_latency = (SampledStat("avg", now), SampledStat("max", now))
        bean.add_stat("commit-latency-avg", self._commit_latency[0])
        bean.add_stat("commit-latency-max", self._commit_latency[1])
        self._election_latency = (SampledStat("avg", now), SampledStat("max", now))
        bean.add_stat("election-latency-avg", self._election_latency[0])
        bean.add_stat("election-latency-max", self._election_latency[1])
        self._fetch_rate = SampledStat("rate", now)
        self._append_rate = SampledStat("rate", now)
        self._idle = SampledStat("avg", now)
        bean.add_stat("fetch-records-rate", self._fetch_rate)
        bean.add_stat("append-records-rate", self._append_rate)
        bean.add_stat("poll-idle-ratio-avg", self._idle)
        self._log_bean_tags = {"topic": "__cluster_metadata", "partition": "0"}
        for name, read in (("Size", lambda: self.log.size), ("LogEndOffset", lambda: self.log.end_offset),
                           ("LogStartOffset", lambda: self.log.start_offset),
                           ("NumLogSegments", lambda: self.log.num_segments)):
            mbeans.gauge("kafka.log", "Log", name, read, self._log_bean_tags, "java.lang.Long" if name != "NumLogSegments" else "java.lang.Integer")
        kafka = getattr(self.node, "kafka", None)
        if kafka is not None and kafka.retention_size_percent:
            # the metadata log's retention is by snapshots: its LogConfig has no retention.bytes, the gauge stays 0
            mbeans.gauge("kafka.log", "Log", "RetentionSizeInPercent", lambda: 0, self._log_bean_tags, "java.lang.Integer")

    def metrics_state(self) -> str:
        """current-state as Kafka 4.x's KafkaRaftMetrics names it: a vote granted shows as
        unattached-voted (or prospective-voted), a resigned leader as unattached."""
        if self.state == QuorumState.FOLLOWER and not self.is_voter:
            return "observer"
        if self.state == QuorumState.VOTED:
            return "unattached-voted"
        if self.state == QuorumState.PROSPECTIVE and self.voted_for != -1:
            return "prospective-voted"
        if self.state == QuorumState.RESIGNED:
            return "unattached"
        return self.state

    def _record_election_latency(self) -> None:
        if self._election_start_ms is not None:
            now = self.node.now()
            for stat in self._election_latency:
                stat.record(now - self._election_start_ms, now)
            self._election_start_ms = None

    # -- state transitions --------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.state == QuorumState.LEADER

    def leader_name(self) -> str | None:
        return self.voters.get(self.leader_id)

    def _set_epoch(self, epoch: int) -> None:
        if epoch > self.epoch:
            self.epoch = epoch
            self.voted_for = -1

    def _leader_metrics_off(self) -> None:
        for name in ("number-of-observers", "uncommitted-voter-change"):
            self._bean.remove(name)

    def _observers(self) -> int:
        now = self.node.now()
        return sum(1 for t in self._observer_last_fetch.values() if now - t < OBSERVER_SESSION_TIMEOUT_MS)

    def _become_unattached(self, epoch: int) -> None:
        was_leader = self.is_leader
        if was_leader or self.state == QuorumState.RESIGNED:
            self._leader_metrics_off()
        self._set_epoch(epoch)
        self.state = QuorumState.UNATTACHED
        changed = self.leader_id != -1
        self.leader_id = -1
        self._release_held()
        if self.is_voter:
            self._reset_election_timer()
        if changed or was_leader:
            self.on_leader_change()

    def _become_follower(self, epoch: int, leader_id: int) -> None:
        changed = self.leader_id != leader_id or self.epoch != epoch or self.is_leader
        was_leader = self.is_leader
        if was_leader:
            self._leader_metrics_off()
        self._set_epoch(epoch)
        self.state = QuorumState.FOLLOWER
        self.leader_id = leader_id
        self._last_fetch_ok = self.node.now()
        self._fetched_from_leader = False
        self._observer_lost = False
        if was_leader:
            self._release_held()
        if self._election_timer:
            self._election_timer.cancel()
        self._record_election_latency()
        if changed:
            self.on_leader_change()
            self._fetch_soon(0)

    def _become_prospective(self) -> None:
        """KIP-996 pre-vote: ask first, so a node that merely lost touch does not bump the epoch. A
        prospective voter keeps the leader it knew (Kafka's ProspectiveState): current-leader stays."""
        self.state = QuorumState.PROSPECTIVE
        self._votes = {self.node_id}
        self._election_start_ms = self.node.now()
        self._reset_election_timer()
        if len(self._votes) * 2 > len(self.voters):
            self._become_candidate()
            return
        self._ask_votes(pre_vote=True)

    def _ask_votes(self, pre_vote: bool) -> None:
        req = VoteRequest(self.epoch + 1 if pre_vote else self.epoch, self.node_id, self.log.last_epoch,
                          self.log.end_offset, pre_vote)
        for vid, vname in self.voters.items():
            if vid != self.node_id:
                self.node.request(vname, req, lambda r, vid=vid, ep=self.epoch, st=self.state:
                                  self._on_vote_response(vid, ep, st, r),
                                  self.cfg["controller.quorum.request.timeout.ms"])

    def _become_candidate(self) -> None:
        self._set_epoch(self.epoch + 1)
        self.state = QuorumState.CANDIDATE
        self.voted_for = self.node_id
        self._votes = {self.node_id}
        had_leader = self.leader_id != -1
        self.leader_id = -1
        self._election_start_ms = self.node.now()
        if had_leader:
            self.on_leader_change()
        self._reset_election_timer()
        if len(self._votes) * 2 > len(self.voters):
            self._become_leader()
            return
        self._ask_votes(pre_vote=False)

    def _become_leader(self) -> None:
        self.state = QuorumState.LEADER
        self.leader_id = self.node_id
        if self._election_timer:
            self._election_timer.cancel()
        now = self.node.now()
        self._voter_offsets = {vid: -1 for vid in self.voters}
        self._voter_last_fetch = {vid: now for vid in self.voters}
        self._epoch_start_offset = self.log.end_offset
        self._record_election_latency()
        self._observer_last_fetch = {}
        # LeaderState's metrics (KIP-853): only while this node leads
        self._bean.add_value("number-of-observers", self._observers)
        self._bean.add_value("uncommitted-voter-change", lambda: 0)     # the voter set never changes here
        self.append([LeaderChangeMessage(self.node_id, self.epoch)])
        req = BeginQuorumEpochRequest(self.epoch, self.node_id)
        for vid, vname in self.voters.items():
            if vid != self.node_id:
                self.node.request(vname, req, lambda r: None, self.cfg["controller.quorum.request.timeout.ms"])
        self.on_leader_change()

    def _reset_election_timer(self) -> None:
        if self._election_timer:
            self._election_timer.cancel()
        base = self.cfg["controller.quorum.election.timeout.ms"]
        self._election_timer = self.node.after(base + self.node.rng.random() * base, self._on_election_timeout)

    def _on_election_timeout(self) -> None:
        if self.state == QuorumState.PROSPECTIVE and self.leader_id not in (-1, self.node_id):
            # a lost pre-vote: back to following the leader it knew, at the same epoch
            # (KafkaRaftClient.prospectiveTransitionAfterElectionLoss)
            self._become_follower(self.epoch, self.leader_id)
        elif self.state in (QuorumState.UNATTACHED, QuorumState.VOTED, QuorumState.PROSPECTIVE,
                            QuorumState.CANDIDATE):
            self._become_prospective()

    def _check_timeouts(self) -> None:
        now = self.node.now()
        fetch_timeout = self.cfg["controller.quorum.fetch.timeout.ms"]
        if self.state == QuorumState.FOLLOWER and now - self._last_fetch_ok >= fetch_timeout:
            if self.is_voter:
                self._become_prospective()
            else:
                # an observer stays one and keeps the leader it knew; it retries the voters in turn
                # (KafkaRaftClient.pollFollowerAsObserver)
                self._observer_lost = True
        elif self.is_leader:
            # check quorum: a leader cut off from the majority steps down
            recent = sum(1 for vid, t in self._voter_last_fetch.items()
                         if vid == self.node_id or now - t < fetch_timeout * 1.5)
            if recent * 2 <= len(self.voters):
                self.state = QuorumState.RESIGNED
                self._become_unattached(self.epoch)
                return
            # a voter that has not fetched lately (e.g. just restarted) is told who leads
            req = BeginQuorumEpochRequest(self.epoch, self.node_id)
            for vid, t in self._voter_last_fetch.items():
                if vid != self.node_id and now - t >= fetch_timeout / 2:
                    self.node.request(self.voters[vid], req, lambda r: None,
                                      self.cfg["controller.quorum.request.timeout.ms"])

    # -- votes --------------------------------------------------------------------------------------
    def _has_live_leader(self) -> bool:
        if self.is_leader:
            return True
        return (self.state == QuorumState.FOLLOWER and self._fetched_from_leader and
                self.node.now() - self._last_fetch_ok < self.cfg["controller.quorum.fetch.timeout.ms"])

    def on_vote(self, req: VoteRequest, reply: Callable) -> None:
        up_to_date = (req.last_epoch, req.end_offset) >= (self.log.last_epoch, self.log.end_offset)
        if req.pre_vote:
            reply(VoteResponse(self.epoch, req.epoch > self.epoch and up_to_date and not self._has_live_leader()))
            return
        if req.epoch < self.epoch:
            reply(VoteResponse(self.epoch, False))
            return
        if req.epoch > self.epoch:
            self._become_unattached(req.epoch)
        can_vote = self.voted_for in (-1, req.candidate_id) and self.state in (QuorumState.UNATTACHED, QuorumState.VOTED)
        if up_to_date and can_vote:
            self.voted_for = req.candidate_id
            self.state = QuorumState.VOTED
            self._reset_election_timer()
            reply(VoteResponse(self.epoch, True))
        else:
            reply(VoteResponse(self.epoch, False))

    def _on_vote_response(self, voter_id: int, epoch: int, state: str, resp) -> None:
        if isinstance(resp, RequestFailed) or self.state != state or epoch != self.epoch:
            return
        if resp.epoch > self.epoch:
            self._become_unattached(resp.epoch)
            return
        if resp.granted:
            self._votes.add(voter_id)
            if len(self._votes) * 2 > len(self.voters):
                self._become_candidate() if state == QuorumState.PROSPECTIVE else self._become_leader()

    def on_begin_quorum_epoch(self, req: BeginQuorumEpochRequest, reply: Callable) -> None:
        if req.epoch >= self.epoch and not (req.epoch == self.epoch and self.is_leader):
            self._become_follower(req.epoch, req.leader_id)
        reply(None)

    # -- leader side: appends, fetches, commits -----------------------------------------------------------
    def append(self, records: list[MetadataRecord]) -> int | None:
        """Leader only: append records as one batch; returns the offset of the last one."""
        if not self.is_leader:
            return None
        now = self.node.now()
        batch = Batch(self.log.end_offset, len(records), self.epoch, RECORD_BYTES * len(records), now,
                      records=tuple(records))
        self.log.append(batch)
        self._append_rate.record(len(records), now)
        self._append_times.append((batch.next_offset, now))
        self._voter_offsets[self.node_id] = self.log.end_offset
        self._maybe_advance_hw()
        self._release_held()
        return batch.next_offset - 1

    def on_fetch(self, req: RaftFetchRequest, reply: Callable) -> None:
        if not self.is_leader:
            reply(RaftFetchResponse(self.epoch, self.leader_id, "NOT_LEADER_OR_FOLLOWER"))
            return
        if req.epoch > self.epoch:
            self._become_unattached(req.epoch)
            reply(RaftFetchResponse(self.epoch, self.leader_id, "NOT_LEADER_OR_FOLLOWER"))
            return
        if req.epoch < self.epoch:
            reply(RaftFetchResponse(self.epoch, self.leader_id, "FENCED_LEADER_EPOCH"))
            return
        if req.fetch_offset > 0 and req.last_fetched_epoch >= 0:
            epoch, end = self.log.end_offset_for_epoch(req.last_fetched_epoch)
            if epoch != req.last_fetched_epoch or end < req.fetch_offset:
                reply(RaftFetchResponse(self.epoch, self.node_id, diverging=(epoch, max(end, 0)),
                                        high_watermark=self.high_watermark))
                return
        now = self.node.now()
        if req.replica_id in self.voters:
            self._voter_offsets[req.replica_id] = req.fetch_offset
            self._voter_last_fetch[req.replica_id] = now
            self._maybe_advance_hw()
        elif req.replica_id >= 0:
            self._observer_last_fetch[req.replica_id] = now
        if req.fetch_offset < self.log.end_offset:
            self._answer(req, reply)
        else:
            self._held.append((req, reply))
            self.node.after(FETCH_MAX_WAIT_MS, lambda: self._expire_held(req))

    def _answer(self, req: RaftFetchRequest, reply: Callable) -> None:
        batches = tuple(self.log.fetch(req.fetch_offset, 8 << 20))
        self.node.disk_io.sent_file(sum(b.size for b in batches))
        reply(RaftFetchResponse(self.epoch, self.node_id, batches=batches, high_watermark=self.high_watermark))

    def _expire_held(self, req: RaftFetchRequest) -> None:
        for i, (held, reply) in enumerate(self._held):
            if held is req:
                del self._held[i]
                self._answer(held, reply) if self.is_leader else reply(
                    RaftFetchResponse(self.epoch, self.leader_id, "NOT_LEADER_OR_FOLLOWER"))
                return

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for req, reply in held:
            if self.is_leader:
                self._answer(req, reply)
            else:
                reply(RaftFetchResponse(self.epoch, self.leader_id, "NOT_LEADER_OR_FOLLOWER"))

    def _maybe_advance_hw(self) -> None:
        offsets = sorted(self._voter_offsets.values(), reverse=True)
        majority = offsets[len(self.voters) // 2]
        if majority > self._epoch_start_offset and majority > self.high_watermark:
            self.high_watermark = majority
            now = self.node.now()
            while self._append_times and self._append_times[0][0] <= majority:
                _, t = self._append_times.pop(0)
                for stat in self._commit_latency:
                    stat.record(now - t, now)
            self._apply_committed()
            self._release_held()

    # -- follower / observer side ---------------------------------------------------------------------------
    def _fetch_target(self) -> str | None:
        if self.state == QuorumState.FOLLOWER and not self._observer_lost:
            return self.voters[self.leader_id]
        if not self.is_voter:
            # an observer without a leader asks the voters in turn
            ids = sorted(self.voters)
            self._observer_target = (self._observer_target + 1) % len(ids)
            return self.voters[ids[self._observer_target]]
        return None

    def _fetch_soon(self, delay_ms: float) -> None:
        if self._fetching:
            return
        self._fetching = True
        self.node.after(delay_ms, self._send_fetch)

    def _send_fetch(self) -> None:
        target = self._fetch_target()
        if target is None:
            self._fetching = False
            self.node.after(FETCH_MAX_WAIT_MS, lambda: self._fetch_soon(0))
            return
        req = RaftFetchRequest(self.epoch, self.node_id, self.log.end_offset, self.log.last_epoch)
        self.node.request(target, req, lambda r: self._on_fetch_response(target, r),
                          FETCH_MAX_WAIT_MS + self.cfg["controller.quorum.request.timeout.ms"])

    def _on_fetch_response(self, target: str, resp) -> None:
        self._fetching = False
        if isinstance(resp, RequestFailed):
            if not self.is_voter:
                # KafkaRaftClient.pollFollowerAsObserver: while the leader cannot be reached (backing off)
                # the next fetch goes to a bootstrap voter, which names the leader it knows
                self._observer_lost = True
            self._fetch_soon(50)
            return
        if self.is_leader:
            return
        if resp.error != "NONE":
            if resp.epoch > self.epoch or (resp.leader_id >= 0 and resp.leader_id != self.leader_id and resp.epoch >= self.epoch):
                if resp.leader_id >= 0 and resp.leader_id != self.node_id:
                    self._become_follower(resp.epoch, resp.leader_id)
                else:
                    self._become_unattached(resp.epoch)
            self._fetch_soon(50 if self.state == QuorumState.FOLLOWER else FETCH_MAX_WAIT_MS)
            return
        if (resp.epoch > self.epoch or self.state != QuorumState.FOLLOWER
                or self.leader_id != resp.leader_id) and resp.epoch >= self.epoch:
            self._become_follower(resp.epoch, resp.leader_id)
        self._last_fetch_ok = self.node.now()
        self._fetched_from_leader = True
        self._observer_lost = False
        if resp.diverging is not None:
            _, end = resp.diverging
            self.log.truncate_to(min(end, self.log.end_offset))
            if self.applied_offset >= self.log.end_offset:
                raise AssertionError(f"{self.node.name}: committed metadata at {self.applied_offset} "
                                     f"was truncated to {self.log.end_offset}")
        appended = 0
        self.node.disk_io.received(sum(b.size for b in resp.batches))
        for b in resp.batches:
            if b.base_offset == self.log.end_offset:
                self.log.append(b)
                appended += b.count
        now = self.node.now()
        if appended:
            self._fetch_rate.record(appended, now)
        self._idle.record(0.0 if appended else 1.0, now)
        self.high_watermark = min(resp.high_watermark, self.log.end_offset)
        self._apply_committed()
        self._fetch_soon(0)

    def _apply_committed(self) -> None:
        if self.high_watermark - 1 <= self.applied_offset:
            return
        batches = self.log.read(self.applied_offset + 1, 1 << 62, upto=self.high_watermark)
        batches = [b for b in batches if b.next_offset - 1 > self.applied_offset]
        if batches:
            self.applied_offset = batches[-1].next_offset - 1
            for listener in list(self.commit_listeners):
                listener(batches)
