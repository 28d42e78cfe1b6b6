"""Kafka's error codes as exceptions, with the retriable flag producers and consumers rely on."""
from __future__ import annotations


class KafkaError(Exception):
    errno = -1
    message = "UNKNOWN_SERVER_ERROR"
    retriable = False

    def __init__(self, description: str = "") -> None:
        super().__init__(f"{self.message}: {description}" if description else self.message)
        self.description = description


def _error(name: str, errno: int, retriable: bool) -> type[KafkaError]:
    cls = type(name, (KafkaError,), {"errno": errno, "retriable": retriable,
                                     "message": _upper_snake(name.removesuffix("Error"))})
    return cls


def _upper_snake(camel: str) -> str:
    out = []
    for i, ch in enumerate(camel):
        if ch.isupper() and i and not camel[i - 1].isupper():
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


OffsetOutOfRangeError = _error("OffsetOutOfRangeError", 1, False)
UnknownTopicOrPartitionError = _error("UnknownTopicOrPartitionError", 3, True)
LeaderNotAvailableError = _error("LeaderNotAvailableError", 5, True)
NotLeaderOrFollowerError = _error("NotLeaderOrFollowerError", 6, True)
RequestFailedError = _error("RequestFailedError", 7, True)
NetworkExceptionError = _error("NetworkExceptionError", 13, True)
CoordinatorNotAvailableError = _error("CoordinatorNotAvailableError", 15, True)
NotCoordinatorError = _error("NotCoordinatorError", 16, True)
NotEnoughReplicasError = _error("NotEnoughReplicasError", 19, True)
NotEnoughReplicasAfterAppendError = _error("NotEnoughReplicasAfterAppendError", 20, True)
IllegalGenerationError = _error("IllegalGenerationError", 22, False)
UnknownMemberIdError = _error("UnknownMemberIdError", 25, False)
RebalanceInProgressError = _error("RebalanceInProgressError", 27, False)
TopicAlreadyExistsError = _error("TopicAlreadyExistsError", 36, False)
InvalidPartitionsError = _error("InvalidPartitionsError", 37, False)
InvalidReplicationFactorError = _error("InvalidReplicationFactorError", 38, False)
NotControllerError = _error("NotControllerError", 41, True)
InvalidConfigurationError = _error("InvalidConfigurationError", 40, False)
InvalidRequestError = _error("InvalidRequestError", 42, False)
FencedLeaderEpochError = _error("FencedLeaderEpochError", 74, True)
UnknownLeaderEpochError = _error("UnknownLeaderEpochError", 75, True)
StaleBrokerEpochError = _error("StaleBrokerEpochError", 77, False)
IneligibleReplicaError = _error("IneligibleReplicaError", 107, False)
DuplicateSequenceNumberError = _error("DuplicateSequenceNumberError", 34, False)


class UnknownNodeError(ValueError):
    """A fault or command named a node the cluster does not have."""
