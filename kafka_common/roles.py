"""The roles a Kafka 4.x node runs (process.roles): one vocabulary for the simulator, the real-Kafka engine,
the exporter's targets, the catalog's templates and provisioning."""
from __future__ import annotations

BROKER, CONTROLLER, COMBINED = "broker", "controller", "combined"
ROLES = (BROKER, CONTROLLER, COMBINED)
# process.roles of each: a combined node is one JVM with both
PROCESS_ROLES = {BROKER: "broker", CONTROLLER: "controller", COMBINED: "broker,controller"}


def is_broker(role: str) -> bool:
    """The node serves clients and holds replicas."""
    return role in (BROKER, COMBINED)


def is_controller(role: str) -> bool:
    """The node is a KRaft voter that can become the active controller."""
    return role in (CONTROLLER, COMBINED)


def parts(role: str) -> tuple[str, ...]:
    """The single roles a node's role holds: (broker,), (controller,) or (broker, controller)."""
    return ((BROKER,) if is_broker(role) else ()) + ((CONTROLLER,) if is_controller(role) else ())
