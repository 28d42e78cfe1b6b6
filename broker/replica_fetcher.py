"""ReplicaFetcherManager of one broker: one fetcher per leader (num.replica.fetchers=1) that copies
the leader's log into the follower replicas here, with Kafka's fetcher metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.mbeans.yammer import DOUBLE, INT, LONG, Gauge
from broker.net import RequestFailed
from broker.protocol import FetchPartition, FetchRequest
from broker.structs import TopicPartition
from kafka_common.names import ObjectName

if TYPE_CHECKING:
    from broker.broker import BrokerNode


class ReplicaFetcherManager:
    def __init__(self, node: BrokerNode) -> None:
        self.node = node
        self.fetchers: dict[int, set[TopicPartition]] = {}
        self._running: set[int] = set()
        self.lag: dict[TopicPartition, int] = {}
        self.sessions: dict[int, tuple[int, int]] = {}     # leader -> (session id, next epoch)

    def register_metrics(self) -> None:
        m = self.node.mbeans
        fm = ("kafka.server", "ReplicaFetcherManager")
        tags = {"clientId": "Replica"}
        m.gauge(*fm, "MaxLag", lambda: max(self.lag.values(), default=0), tags, java_type=LONG)
        m.gauge(*fm, "MinFetchRate", self._min_fetch_rate, tags, java_type=DOUBLE)
        m.gauge(*fm, "FailedPartitionsCount", lambda: 0, tags, java_type=INT)
        m.gauge(*fm, "DeadThreadCount", lambda: 0, tags, java_type=INT)

    def add(self, leader: int, tp: TopicPartition) -> None:
        self.fetchers.setdefault(leader, set()).add(tp)
        if leader not in self._running:
            self._running.add(leader)
            self.node.after(0.0, lambda: self._fetch_from(leader))
        name = _lag_bean(leader, tp)
        if name not in self.node.mbeans:
            self.node.mbeans.register(name, Gauge(lambda: self.lag.get(tp, 0), LONG))

    def remove(self, tp: TopicPartition) -> None:
        for leader, tps in self.fetchers.items():
            if tp in tps:
                tps.discard(tp)
                self.node.mbeans.unregister(_lag_bean(leader, tp))
        self.lag.pop(tp, None)

    def shutdown_idle(self) -> None:
        """AbstractFetcherManager.shutdownIdleFetcherThreads, once a metadata change is applied: a fetcher
        thread left without partitions (its leader died, leaderships moved) stops, and its metrics go with
        it: its FetcherStats and its network client's replica-fetcher-metrics."""
        for leader in [leader for leader, tps in self.fetchers.items() if not tps]:
            del self.fetchers[leader]
            self.sessions.pop(leader, None)         # left in the leader's cache, as Kafka's fetcher leaves it
            for name in ("BytesPerSec", "RequestsPerSec"):
                self.node.mbeans.unregister(ObjectName.kafka("kafka.server", "FetcherStats", name,
                                                             self._stats_tags(leader)))
            self.node.close_channel("replica-fetcher-metrics", {"broker-id": str(leader), "fetcher-id": "0"})

    def _stats_tags(self, leader: int) -> dict[str, str]:
        return {"clientId": f"ReplicaFetcherThread-0-{leader}", "brokerHost": self.node.broker_names[leader],
                "brokerPort": "9092"}

    def _stats(self, leader: int, name: str, event: str) -> Any:
        """FetcherStats meters of the fetcher thread for one leader."""
        return self.node.mbeans.meter("kafka.server", "FetcherStats", name, event, self._stats_tags(leader))

    def _min_fetch_rate(self) -> float:
        """AbstractFetcherManager MinFetchRate: the slowest fetcher thread's request rate."""
        now = self.node.now()
        rates = [self._stats(leader, "RequestsPerSec", "requests").one_minute_rate(now)
                 for leader, tps in self.fetchers.items() if tps]
        return min(rates, default=0.0)

    def _fetch_from(self, leader: int) -> None:
        node = self.node
        tps = self.fetchers.get(leader)
        if not tps:
            self._running.discard(leader)
            return
        self._stats(leader, "RequestsPerSec", "requests").mark(node.now())
        partitions = node.replica_manager.partitions
        parts = {tp: FetchPartition(partitions[tp].log.end_offset, partitions[tp].log.last_epoch,
                                    partitions[tp].leader_epoch) for tp in sorted(tps)}
        session_id, epoch = self.sessions.get(leader, (0, 0))
        req = FetchRequest(node.node_id, parts, node.cfg["replica.fetch.wait.max.ms"], node.cfg["replica.fetch.max.bytes"],
                           session_id, epoch)
        node.request(node.broker_names[leader], req, lambda r: self._on_response(leader, r),
                     node.cfg["replica.fetch.wait.max.ms"] + node.cfg["request.timeout.ms"])

    def _on_response(self, leader: int, resp: Any) -> None:
        node = self.node
        backoff = 0.0
        wrote = False
        if isinstance(resp, RequestFailed) or resp.error != "NONE":
            # a leader that restarted or evicted the session: the next fetch opens a new one
            self.sessions.pop(leader, None)
            backoff = node.cfg["replica.fetch.backoff.ms"]
        else:
            if resp.session_id:         # fetching within a session: its next epoch (1 in a new one)
                kept = self.sessions.get(leader)
                self.sessions[leader] = (resp.session_id, kept[1] + 1 if kept and kept[0] == resp.session_id else 1)
            else:                       # none given (a full cache): the next fetch asks for one again
                self.sessions.pop(leader, None)
            partitions, fetched = node.replica_manager.partitions, self.fetchers.get(leader, ())
            for tp, data in resp.partitions.items():
                p = partitions.get(tp)
                if p is None or p.leader != leader or tp not in fetched:
                    continue
                if data.error == "OFFSET_OUT_OF_RANGE" and data.log_start_offset > p.log.end_offset:
                    # AbstractFetcherThread: the leader deleted what this replica lacks; it starts over at the
                    # leader's log start offset
                    p.truncate_fully_and_start_at(data.log_start_offset)
                    continue
                if data.error != "NONE":
                    backoff = node.cfg["replica.fetch.backoff.ms"]
                    continue
                if data.diverging is not None:
                    p.truncate_to(min(data.diverging[1], p.log.end_offset))
                    continue
                appended = p.append_as_follower(data.batches, data.high_watermark)
                # the leader's log start offset, as far as this replica's high watermark (UnifiedLog refuses more)
                p.log.maybe_increment_start_offset(min(data.log_start_offset, p.high_watermark))
                if appended:
                    wrote = True
                    nbytes = sum(b.size for b in data.batches)
                    node.topic_meter("ReplicationBytesInPerSec", None, nbytes)
                    self._stats(leader, "BytesPerSec", "bytes").mark(node.now(), nbytes)
                # AbstractFetcherThread: the leader's high watermark minus the next offset to fetch
                # (an in-sync follower that is slow holds the HW back with it, so it shows little lag)
                self.lag[tp] = max(0, data.high_watermark - p.log.end_offset)
        # the fetcher thread appends what it fetched before its next fetch: a slow disk slows it down
        delay = max(backoff, node.fetch_delay_ms) + (node.disk_delay_ms if wrote else 0.0)
        node.after(delay, lambda: self._fetch_from(leader))


def _lag_bean(leader: int, tp: TopicPartition) -> ObjectName:
    return ObjectName.kafka("kafka.server", "FetcherLagMetrics", "ConsumerLag",
                            {"clientId": f"ReplicaFetcherThread-0-{leader}", "topic": tp.topic,
                             "partition": str(tp.partition)})
