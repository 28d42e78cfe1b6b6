"""BrokerLifecycleManager: registration with the active controller and the heartbeats that keep the
broker unfenced, reporting its metadata offset and its offline log directories."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.net import RequestFailed
from broker.protocol import BrokerHeartbeatRequest, BrokerRegistrationRequest

if TYPE_CHECKING:
    from broker.broker import BrokerNode

# KafkaServer BrokerState values (org.apache.kafka.metadata.BrokerState)
NOT_RUNNING, STARTING, RECOVERY, RUNNING = 0, 1, 2, 3


class BrokerLifecycleManager:
    def __init__(self, node: BrokerNode) -> None:
        self.node = node
        self.broker_epoch = -1
        self.fenced = True
        self._registering = False

    def register(self) -> None:
        """BrokerRegistration with the active controller, retried until it succeeds."""
        node = self.node
        if self.broker_epoch >= 0 or self._registering:
            return
        target = node.controller_name()
        if target is None:
            node.after(100.0, self.register)
            return
        self._registering = True
        node.state = RECOVERY if node.state == STARTING else node.state

        def done(resp: Any) -> None:
            self._registering = False
            if isinstance(resp, RequestFailed) or resp.error != "NONE":
                node.after(100.0, self.register)
                return
            self.broker_epoch = resp.broker_epoch
            self._heartbeat()

        node.request(target, BrokerRegistrationRequest(node.node_id, node.incarnation), done,
                     node.cfg["controller.quorum.request.timeout.ms"])

    def _heartbeat(self) -> None:
        node = self.node
        target = node.controller_name()
        interval = node.cfg["broker.heartbeat.interval.ms"]
        if target is None:
            node.after(100.0, self._heartbeat)
            return
        epoch = self.broker_epoch

        def done(resp: Any) -> None:
            if epoch != self.broker_epoch:
                return
            if isinstance(resp, RequestFailed) or resp.error in ("NOT_CONTROLLER", "REQUEST_TIMED_OUT"):
                node.after(100.0, self._heartbeat)
                return
            if resp.error == "STALE_BROKER_EPOCH":
                self.broker_epoch = -1      # the controller lost our registration: register again
                self.register()
                return
            self.fenced = resp.is_fenced
            if not resp.is_fenced:
                node.state = RUNNING
            node.after(interval, self._heartbeat)

        node.request(target, BrokerHeartbeatRequest(node.node_id, epoch, node.image.offset,
                                                    tuple(sorted(node.log_manager.offline_dirs)),
                                                    tuple(sorted(node.replica_manager.offline))),
                     done, interval)
