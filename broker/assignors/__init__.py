"""Consumer partition assignors, run by the group leader between JoinGroup and SyncGroup."""
from broker.assignors.range import RangeAssignor
from broker.assignors.roundrobin import RoundRobinAssignor

ASSIGNORS: dict[str, type[RangeAssignor] | type[RoundRobinAssignor]] = {RangeAssignor.name: RangeAssignor, RoundRobinAssignor.name: RoundRobinAssignor}

__all__ = ["ASSIGNORS", "RangeAssignor", "RoundRobinAssignor"]
