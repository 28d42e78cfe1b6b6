"""The metrics of Kafka's network Selector (org.apache.kafka.common.network.Selector.SelectorMetrics)
on one kafka-metrics MBean: a client channel's (heartbeat-metrics, alter-partition-metrics,
raft-channel-metrics, replica-fetcher-metrics, ...) or a server network processor's
(socket-server-metrics,listener=..,networkProcessor=N).

Every connection authenticates once (PLAINTEXT counts as a successful authentication without
re-authentication); every send and every receive completes in one poll of the selector, which
waited for it since the previous poll (io-wait) and spent time moving its bytes (io-time). Rates
are Kafka's sampled rates; the *-ratio ones are time per second.
"""
from __future__ import annotations

from collections.abc import Callable

from broker.mbeans.kafka_metrics import KafkaMetricsBean, SampledStat

NS_PER_MS = 1e6
BYTES_PER_MS = 100_000.0          # what moving bytes costs the selector's thread (io-time)


class _Meter:
    """Kafka's Meter: a rate (SampledStat) and a total (CumulativeSum) of one sensor, named
    PREFIX-rate and PREFIX-total unless told otherwise."""

    def __init__(self, bean: KafkaMetricsBean, prefix: str, now_ms: float, rate_scale: float = 1.0,
                 rate_name: str | None = None) -> None:
        self.total = 0.0
        self._rate = SampledStat("rate", now_ms)
        self._scale = rate_scale
        bean.add(rate_name or f"{prefix}-rate", lambda now: self._rate.measure(now) * self._scale)
        bean.add_value(f"{prefix}-total", lambda: self.total)

    def record(self, value: float, now_ms: float) -> None:
        self.total += value
        self._rate.record(value, now_ms)


class SelectorMetrics:
    def __init__(self, bean: KafkaMetricsBean, now_ms: float, connections: Callable[[], int],
                 server: bool = False) -> None:
        self._last_poll_ms = now_ms
        meter = lambda prefix, scale=1.0, rate_name=None: _Meter(bean, prefix, now_ms, scale, rate_name)
        self.closes = meter("connection-close")
        self.creations = meter("connection-creation")
        self.auth = meter("successful-authentication")
        self.auth_no_reauth = 0.0
        bean.add_value("successful-authentication-no-reauth-total", lambda: self.auth_no_reauth)
        meter("failed-authentication")
        meter("successful-reauthentication")
        meter("failed-reauthentication")
        for kind in ("avg", "max"):
            bean.add_stat(f"reauthentication-latency-{kind}", SampledStat(kind, now_ms))
        self.network_io = meter("network-io")
        self.outgoing = meter("outgoing-byte")
        self.requests = meter("request")
        self._request_size = {kind: SampledStat(kind, now_ms) for kind in ("avg", "max")}
        for kind, stat in self._request_size.items():
            bean.add_stat(f"request-size-{kind}", stat)
        self.incoming = meter("incoming-byte")
        self.responses = meter("response")
        self.selects = meter("select")
        self._io_wait_avg = SampledStat("avg", now_ms)
        bean.add_stat("io-wait-time-ns-avg", self._io_wait_avg)
        # nanoseconds per second of waiting or working: Kafka names these rates io-wait-ratio, io-ratio
        self.io_wait = meter("io-wait-time-ns", 1.0 / 1e9, "io-wait-ratio")
        self._io_avg = SampledStat("avg", now_ms)
        bean.add_stat("io-time-ns-avg", self._io_avg)
        self.io = meter("io-time-ns", 1.0 / 1e9, "io-ratio")
        bean.add_value("connection-count", lambda: float(connections()))
        if server:
            self.expired = 0.0
            bean.add_value("expired-connections-killed-count", lambda: self.expired)

    def connected(self, now_ms: float) -> None:
        self.creations.record(1, now_ms)
        self.auth.record(1, now_ms)
        self.auth_no_reauth += 1

    def closed(self, now_ms: float) -> None:
        self.closes.record(1, now_ms)

    def _poll(self, nbytes: int, now_ms: float) -> None:
        wait_ns = max(0.0, now_ms - self._last_poll_ms) * NS_PER_MS
        io_ns = nbytes / BYTES_PER_MS * NS_PER_MS
        self._last_poll_ms = now_ms
        self.selects.record(1, now_ms)
        self.io_wait.record(wait_ns, now_ms)
        self._io_wait_avg.record(wait_ns, now_ms)
        self.io.record(io_ns, now_ms)
        self._io_avg.record(io_ns, now_ms)
        self.network_io.record(1, now_ms)

    def sent(self, nbytes: int, now_ms: float) -> None:
        self._poll(nbytes, now_ms)
        self.outgoing.record(nbytes, now_ms)
        self.requests.record(1, now_ms)
        for stat in self._request_size.values():
            stat.record(nbytes, now_ms)

    def received(self, nbytes: int, now_ms: float) -> None:
        self._poll(nbytes, now_ms)
        self.incoming.record(nbytes, now_ms)
        self.responses.record(1, now_ms)
