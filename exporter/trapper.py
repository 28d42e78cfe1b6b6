"""The Zabbix side of the exporter: catalog items pushed as trapper values, with the JMX template's
keys, one Zabbix host per Kafka node.

Values wait in a bounded spool and leave in batches (zabbix_utils Sender, 250 per connection by
default), oldest first, with the clock of their collection. When Zabbix is unreachable they stay
spooled and go out once it answers again; past the bound the oldest are dropped and counted.
Values the server refuses are counted and the rest delivered. Zabbix answers a batch with counts
only, so the keys of a batch it refused part of are sent alone from then on until each is known:
a refused one is named in a warning (once an hour) with the likely reason, and stays alone. A batch
refused whole names its hosts that never took a value (not provisioned, misnamed, or not yet in the
server's configuration cache); its keys are not sent one by one (thousands of values at start-up).
Discovery (LLD) goes to each host before the values of what it discovers: topics to the brokers,
and per-bean items (each broker's registration state on the controllers, ...) to their role.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from zabbix_utils import ItemValue, Sender

from exporter.catalog.keys import GROUP_DISCOVERY, TOPIC_DISCOVERY, bean_discovery_key, jmx_key
from exporter.catalog.model import Catalog, registered_on
from exporter.clock import SYSTEM, Clock
from exporter.collector import Target
from exporter.config import DEFAULT_HOST_NAME
from exporter.lag.families import LOST
from exporter.lag.model import Snapshot
from exporter.lag.trends import Trends
from exporter.sample import Collection, Sample
from exporter.zabbix_tls import psk_socket_wrapper
from kafka_common.names import ObjectName

log = logging.getLogger("kafka_jmx.zabbix")
BACKOFF_S = (1.0, 30.0)
LLD_PREFIX = "kafka.discovery."
WARN_EVERY_S = 3600.0           # a refused key (or an unknown host) is named once per hour
# values sent alone (to learn which keys Zabbix refuses) per send cycle at most: each is a connection of
# its own, and the rest of the spool must not wait behind them (beyond it they go in batches again)
ALONE_PER_CYCLE = 50


@dataclass(frozen=True)
class Discovery:
    """A trapper discovery rule: the values of one ObjectName property on a role's hosts."""
    key: str            # the rule's item key
    prop: str           # topic, broker, ...
    role: str           # broker | controller | both

    @property
    def macro(self) -> str:
        return "{#JMX" + self.prop.upper() + "}"


TOPICS = Discovery(TOPIC_DISCOVERY, "topic", "broker")


class TrapperSink:
    def __init__(self, server: str, port: int, catalog: Catalog, cluster: str, host_name: str = DEFAULT_HOST_NAME,
                 batch_size: int = 250, spool_limit: int = 100_000, send_interval_s: float = 1.0,
                 lld_interval_s: float = 600.0, timeout_s: int = 10, lld_settle_s: float = 60.0,
                 psk: tuple[str, str] | None = None, topics: tuple[str, str] | None = None,
                 clock: Clock = SYSTEM) -> None:
        """topics: the (matches, not_matches) regular expressions of the hosts' {$KAFKA.TOPIC.MATCHES} and
        {$KAFKA.TOPIC.NOT_MATCHES} (default: the templates' defaults): topics the templates' discovery
        leaves out get no values, which Zabbix would refuse."""
        self.server, self.port = server, port
        self.clock = clock
        self.cluster = cluster
        self.host_name = host_name
        self.batch_size = batch_size
        self.spool_limit = spool_limit
        self.send_interval_s = send_interval_s
        self.lld_interval_s = lld_interval_s
        # Zabbix accepts values for discovered items only once its configuration cache has them
        # (CacheUpdateFrequency, 60 s by default): a new topic's values wait that long
        self.lld_settle_s = lld_settle_s
        self._first_seen: dict[tuple[str, str, str], float] = {}      # (host, rule key, value)
        wrapper = psk_socket_wrapper(*psk) if psk else None      # (identity, hex key)
        self.sender = Sender(server=server, port=port, chunk_size=batch_size, timeout=timeout_s, socket_wrapper=wrapper)
        # (canonical ObjectName, attribute) -> (key, value type, role); discovered beans by their name
        # without the discovered property: (base, property, attribute) -> (discovery, value type)
        self._items: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._discovered: dict[tuple[str, str, str], tuple[Discovery, str]] = {}
        # key -> what the JMX template stores for NaN (a kafka-metrics Avg/Max without samples), the same here
        self._nan = {m.key: m.zabbix.nan for m in catalog.metrics if m.zabbix.nan is not None}
        self.groups = catalog.groups
        matches, not_matches = topics or (catalog.macro("{$KAFKA.TOPIC.MATCHES}").value,
                                          catalog.macro("{$KAFKA.TOPIC.NOT_MATCHES}").value)
        # searched, not matched whole, as Zabbix's LLD filter does
        self._topic_in = re.compile(matches).search
        self._topic_out = re.compile(not_matches).search if not_matches else (lambda _: None)
        self.discoveries = [TOPICS]
        self._jvm_discovered: dict[tuple[str, str, str], tuple[Discovery, str, str]] = {}
        for m in catalog.metrics:
            if m.discovers:
                d = Discovery(bean_discovery_key(m.id), m.discovers, m.role)
                self.discoveries.append(d)
                self._discovered[(m.base, m.discovers, m.attribute)] = (d, m.zabbix.value_type)
                if m.jvm:
                    self._jvm_discovered[(ObjectName.parse(m.base).canonical, m.discovers, m.attribute)] = \
                        (d, m.zabbix.value_type, m.base)
                continue
            self._items[(m.mbean, m.attribute)] = (m.key, m.zabbix.value_type, m.role)
            if m.lld == "topic":
                self._discovered[(m.mbean, "topic", m.attribute)] = (TOPICS, m.zabbix.value_type)
        self._spool: deque[ItemValue] = deque()
        self._lock = threading.Lock()
        self._lld_sent: dict[tuple[str, str], tuple[frozenset[str], float]] = {}     # (host, rule key)
        self.sent = 0
        self.refused = 0
        self.dropped = 0
        self.skipped_nan = 0
        self.last_error = ""
        # (host, key) of batches Zabbix refused part of, sent alone until known; those refused alone
        self._suspects: set[tuple[str, str]] = set()
        self._refusing: set[tuple[str, str]] = set()
        self._hosts_known: set[str] = set()          # hosts Zabbix took a value for
        self._alone_left = ALONE_PER_CYCLE
        self._warned: dict[tuple[str, ...], float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zabbix-sender", daemon=True)

    def host_for(self, target: Target) -> str:
        return self.host_name.format(node=target.name, cluster=self.cluster, role=target.role, node_id=target.node_id)

    # -- from the collection threads ------------------------------------------------------------------------
    def offer(self, target: Target, collection: Collection) -> None:
        host = self.host_for(target)
        values: list[ItemValue] = []
        found_values: dict[Discovery, set[str]] = {d: set() for d in self.discoveries
                                                   if registered_on(d.role, target.role)}
        now = self.clock.monotonic()
        for s in collection.samples:
            attr = s.attr
            if s.path:
                if s.key_props >= 0:
                    continue        # a TabularData row: no item has one
                attr = ".".join((s.attr, *s.path))      # CompositeData, as the Java gateway's keys name it
            on = s.object_name
            found = self._items.get((on, attr))
            if found is not None:
                key, vtype, role = found
                if not registered_on(role, target.role):
                    continue        # e.g. request metrics a controller has too: not in its template
            elif s.props:
                prop, value = s.props[-1]
                base = on[: on.rfind(f",{prop}=")]
                discovered = self._discovered.get((base, prop, attr))
                if discovered is None and s.domain == "java.lang":
                    # a JVM names its beans in its own order (java.lang:name=G1 Young Generation,type=...)
                    discovered, prop, value, base = self._jvm_discovery(s, attr)
                if discovered is None or discovered[0] not in found_values:
                    continue
                d, vtype = discovered
                if d.prop == "topic" and (not self._topic_in(value) or self._topic_out(value)):
                    continue
                found_values[d].add(value)
                # Zabbix takes values of a discovered item only once its configuration cache has it
                if now - self._first_seen.setdefault((host, d.key, value), now) < self.lld_settle_s:
                    continue
                key = jmx_key(f"{base},{prop}={value}", attr)
            else:
                continue
            text = _format(s.value, vtype)
            if text is None and isinstance(s.value, float) and math.isnan(s.value):
                text = self._nan.get(key)
            if text is None:
                self.skipped_nan += 1
                continue
            ms = int(s.timestamp_ms)
            values.append(ItemValue(host, key, text, ms // 1000, (ms % 1000) * 1_000_000))
        clock = values[0].clock if values else int(self.clock.time())
        for d, found_here in found_values.items():
            self._maybe_discover(host, d, found_here, clock)
        self.enqueue(values)

    def _jvm_discovery(self, s: Sample, attr: str) -> tuple[tuple[Discovery, str] | None, str, str, str]:
        """(discovery and value type, property, value, the catalog's base ObjectName) of a JVM bean whatever
        the order of its properties; (None, ...) when no JVM item discovers it."""
        props = s.bean_props
        for i, (prop, value) in enumerate(props):
            rest = ObjectName(s.domain, props[:i] + props[i + 1:]).canonical
            hit = self._jvm_discovered.get((rest, prop, attr))
            if hit is not None:
                return (hit[0], hit[1]), prop, value, hit[2]
        return None, "", "", ""

    def _maybe_discover(self, host: str, d: Discovery, found: set[str], clock: int) -> None:
        self._send_lld(host, d.key, [{d.macro: v} for v in sorted(found)], clock)

    def _send_lld(self, host: str, key: str, rows: list[dict[str, str]], clock: int) -> None:
        """Discovery data, sent when it changed or every lld_interval_s."""
        found = frozenset(json.dumps(r, sort_keys=True) for r in rows)
        known = self._lld_sent.get((host, key))
        now = self.clock.monotonic()
        if known is not None and known[0] == found and now - known[1] < self.lld_interval_s:
            return
        self._lld_sent[(host, key)] = (found, now)
        self.enqueue([ItemValue(host, key, json.dumps({"data": rows}), clock)])

    def offer_groups(self, snap: Snapshot, verdicts: dict[str, int], trends: Trends | None = None) -> None:
        """A consumer-group collection, to the cluster's host: discovery of groups and of group x topic
        pairs, then their values (each new item's once Zabbix can have it in its configuration cache)."""
        host = self.host_name.format(node="cluster", cluster=self.cluster, role="cluster", node_id="")
        clock = int(snap.taken_at)
        ns = int((snap.taken_at - clock) * 1e9)
        now = self.clock.monotonic()
        items = {i.id: i for i in self.groups.items}
        trend_items = [i for i in self.groups.items if i.per == "group_topic"]
        values: list[ItemValue] = []
        group_rows, pair_rows = [], []

        def put(item_id: str, rule: str, discovered: str, value: object, *names: str) -> None:
            item = items.get(item_id)
            if item is None:
                return
            if now - self._first_seen.setdefault((host, rule, discovered), now) < self.lld_settle_s:
                return
            text = _format(value, item.value_type)
            if text is not None:
                values.append(ItemValue(host, item.key_for(*names), text, clock, ns))

        for gid, g in sorted(snap.groups.items()):
            group_rows.append({"{#GROUP}": gid})
            for item_id, value in (("group_members", g.members), ("group_state", g.state), ("group_type", g.type),
                                   ("group_status", verdicts.get(gid, 0))):
                if value is not None:
                    put(item_id, GROUP_DISCOVERY["group"], gid, value, gid)
            for topic in sorted({t for t, _ in g.committed}):
                pair_rows.append({"{#GROUP}": gid, "{#TOPIC}": topic})
                tps = [tp for tp in g.committed if tp[0] == topic]
                pair = f"{gid}\x1f{topic}"
                put("group_offset", GROUP_DISCOVERY["group_topic"], pair, sum(g.committed[tp] for tp in tps), gid, topic)
                lags = [lag for tp in tps if (lag := snap.lag(gid, tp)) is not None]
                if lags:
                    put("group_lag", GROUP_DISCOVERY["group_topic"], pair, sum(lags), gid, topic)
                seconds = [s for tp in tps if (s := snap.lag_seconds(gid, tp)) is not None]
                if seconds:
                    put("group_lag_seconds", GROUP_DISCOVERY["group_topic"], pair, max(seconds), gid, topic)
                if g.members is not None:           # a group its coordinator could not describe: unknown
                    put("group_assigned", GROUP_DISCOVERY["group_topic"], pair, g.assigned.get(topic, 0), gid, topic)
                trend = trends.by_group_topic.get((gid, topic)) if trends else None
                if trends is not None and trend is not None:
                    # the catalog's items of these values name the series that serve them
                    measured = {**trend.series(), LOST[0] + "_total": trends.lost.get((gid, topic), 0)}
                    for item in trend_items:
                        if (found := measured.get(item.prometheus)) is not None:
                            put(item.id, GROUP_DISCOVERY["group_topic"], pair, found, gid, topic)
        self._send_lld(host, GROUP_DISCOVERY["group"], group_rows, clock)
        self._send_lld(host, GROUP_DISCOVERY["group_topic"], pair_rows, clock)
        self.enqueue(values)

    def pending(self) -> list[ItemValue]:
        """The values waiting to be sent, oldest first."""
        with self._lock:
            return list(self._spool)

    def enqueue(self, values: list[ItemValue]) -> None:
        """Values as Zabbix takes them, after those already waiting (the oldest go beyond spool_limit)."""
        if not values:
            return
        with self._lock:
            self._spool.extend(values)
            excess = len(self._spool) - self.spool_limit
            for _ in range(max(0, excess)):
                self._spool.popleft()
            if excess > 0:
                self.dropped += excess
        self._wake.set()

    # -- the sender thread -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + flush_timeout_s
        while self.spooled and time.monotonic() < deadline and not self.last_error:
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=flush_timeout_s)

    @property
    def spooled(self) -> int:
        return len(self._spool)

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff if backoff else self.send_interval_s)
            self._wake.clear()
            self._alone_left = ALONE_PER_CYCLE
            try:
                while self.flush_once():
                    pass
                backoff = 0.0
            except Exception as e:      # zabbix_utils raises its own errors besides OSError: all keep the spool
                self.last_error = f"cannot deliver to Zabbix {self.server}:{self.port}: {e}"
                if backoff == 0.0:
                    log.warning("%s; keeping %d values spooled", self.last_error, self.spooled)
                backoff = min(BACKOFF_S[1], backoff * 2 if backoff else BACKOFF_S[0])

    def flush_once(self) -> bool:
        """Send the oldest batch; True when a batch went out. Raises when Zabbix is unreachable
        (the batch stays spooled)."""
        with self._lock:
            # discovery and suspect keys go alone, so their own answer says whether Zabbix took them
            if self._spool and self._alone(self._spool[0]):
                batch = [self._spool[0]]
            else:
                batch = list(itertools.takewhile(lambda v: not self._alone(v),
                                                 itertools.islice(self._spool, self.batch_size)))
        if not batch:
            return False
        response = self.sender.send(batch)
        with self._lock:
            for _ in batch:
                self._spool.popleft()
            if not batch[0].key.startswith(LLD_PREFIX):
                self._learn(batch, response.failed)
            elif response.failed:
                # not taken (a host the server's configuration cache does not know yet): sent again
                # with the next collection, and what it discovers waits for it as if new
                host, key = batch[0].host, batch[0].key
                self._lld_sent.pop((host, key), None)
                for k in list(self._first_seen):       # a snapshot: collections add to it meanwhile
                    if k[:2] == (host, key):
                        self._first_seen.pop(k, None)
        self.last_error = ""
        self.sent += response.processed
        if response.failed:
            self.refused += response.failed
        return True

    def _alone(self, v: ItemValue) -> bool:
        if v.key.startswith(LLD_PREFIX):
            return True
        return self._alone_left > 0 and ((v.host, v.key) in self._suspects or (v.host, v.key) in self._refusing)

    def _learn(self, batch: list[ItemValue], failed: int) -> None:
        """What a batch's answer tells about its keys (under the lock). A batch refused whole names its
        hosts that never took a value (unknown hosts, or hosts the server's configuration cache does
        not have yet) instead of sending every key alone; one refused in part has its keys sent alone."""
        hosts = {v.host for v in batch}
        if len(batch) == 1:
            self._alone_left -= 1
        if not failed:
            self._hosts_known.update(hosts)
            for v in batch:
                self._suspects.discard((v.host, v.key))
                self._refusing.discard((v.host, v.key))
            return
        unknown = hosts - self._hosts_known
        if failed == len(batch) and unknown:
            for host in sorted(unknown):
                self._warn(("host", host),
                           f"Zabbix refused every value for host {host!r}: no host of that name takes trapper values. "
                           "Did you create it with `kafka-jmx zabbix provision`, or does zabbix.host_name (now "
                           f"{self.host_name!r}) match your hosts' names? (A host created in the last minute is known "
                           "once the server's configuration cache reloads: CacheUpdateFrequency)")
            return
        if len(batch) > 1:
            log.debug("Zabbix refused %d of %d values; their keys go alone until the refused ones are known",
                      failed, len(batch))
            self._suspects.update((v.host, v.key) for v in batch)
            return
        v = batch[0]
        self._suspects.discard((v.host, v.key))
        self._refusing.add((v.host, v.key))
        self._warn(("item", v.host, v.key),
                   f"Zabbix refused {v.host}:{v.key} = {v.value!r}: host {v.host!r} has no enabled trapper item with "
                   "this key (not in its template, or not discovered yet), or the value does not fit the item's "
                   "type of information")

    def _warn(self, what: tuple[str, ...], message: str) -> None:
        now = self.clock.monotonic()
        last = self._warned.get(what)
        if last is None or now - last >= WARN_EVERY_S:
            self._warned[what] = now
            log.warning("%s", message)

    # -- its own metrics ----------------------------------------------------------------------------------------
    def collect(self) -> Iterable[Metric]:
        spool = GaugeMetricFamily("kafkajmx_zabbix_spool_values", "Values waiting for delivery to Zabbix.")
        spool.add_metric([], float(self.spooled))
        yield spool
        for name, doc, value in (("kafkajmx_zabbix_sent_values", "Values Zabbix accepted.", self.sent),
                                 ("kafkajmx_zabbix_refused_values", "Values Zabbix refused.", self.refused),
                                 ("kafkajmx_zabbix_dropped_values", "Spooled values dropped past the spool bound.",
                                  self.dropped)):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], float(value))
            yield c
        up = GaugeMetricFamily("kafkajmx_zabbix_up", "1 when the last delivery attempt reached Zabbix.")
        up.add_metric([], 0.0 if self.last_error else 1.0)
        yield up


def _format(value: object, value_type: str) -> str | None:
    """The text Zabbix parses for the item's value type; None for values it cannot store (NaN)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        if value_type == "UNSIGNED":
            return str(int(value)) if value >= 0 else None
        if value_type in ("CHAR", "TEXT"):
            return str(value)
        return repr(float(value))
    return str(value)
