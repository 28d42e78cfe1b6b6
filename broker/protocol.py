"""Requests and responses between simulated processes, named after Kafka's APIs."""
from __future__ import annotations

from dataclasses import dataclass, field

from broker.log import Batch
from broker.structs import TopicPartition


# -- broker <-> controller ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BrokerRegistrationRequest:
    broker_id: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class BrokerRegistrationResponse:
    error: str = "NONE"
    broker_epoch: int = -1


@dataclass(frozen=True, slots=True)
class BrokerHeartbeatRequest:
    broker_id: int
    broker_epoch: int
    metadata_offset: int
    offline_log_dirs: tuple[str, ...] = ()
    # Kafka's controller finds these itself from each replica's directory in the metadata
    # (PartitionRecord.directories); the simulation's metadata does not track directories
    offline_replicas: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class BrokerHeartbeatResponse:
    error: str = "NONE"
    is_fenced: bool = True
    is_caught_up: bool = False


@dataclass(frozen=True, slots=True)
class AlterPartitionRequest:
    broker_id: int
    broker_epoch: int
    tp: TopicPartition
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionResponse:
    error: str = "NONE"


@dataclass(frozen=True, slots=True)
class CreateTopicsRequest:
    name: str
    partitions: int
    replication_factor: int
    configs: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class CreateTopicsResponse:
    error: str = "NONE"
    message: str = ""


@dataclass(frozen=True, slots=True)
class DescribeConfigsRequest:
    resource_type: str                           # "topic" or "broker"
    name: str                                    # the topic, or the broker id ("" for cluster defaults)
    keys: tuple[str, ...] | None = None          # None: every setting


@dataclass(frozen=True, slots=True)
class DescribeConfigsResponse:
    error: str = "NONE"
    message: str = ""
    entries: tuple = ()                          # broker.config.ConfigEntry


@dataclass(frozen=True, slots=True)
class DeleteTopicsRequest:
    name: str


@dataclass(frozen=True, slots=True)
class DeleteTopicsResponse:
    error: str = "NONE"
    message: str = ""


# -- client/follower <-> broker -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProduceRequest:
    acks: int                                    # 0, 1 or -1 (all)
    batches: tuple[tuple[TopicPartition, Batch], ...]
    timeout_ms: float


@dataclass(frozen=True, slots=True)
class PartitionProduceResult:
    error: str = "NONE"
    base_offset: int = -1


@dataclass(frozen=True, slots=True)
class ProduceResponse:
    results: dict[TopicPartition, PartitionProduceResult]


@dataclass(frozen=True, slots=True)
class FetchPartition:
    fetch_offset: int
    last_fetched_epoch: int = -1
    current_leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class FetchRequest:
    replica_id: int                              # -1 for consumers
    partitions: dict[TopicPartition, FetchPartition]
    max_wait_ms: float
    max_bytes: int
    session_id: int = 0                          # an incremental fetch session (KIP-227); 0: none
    session_epoch: int = -1                      # 0 opens one, -1 fetches without one


@dataclass(frozen=True, slots=True)
class FetchPartitionData:
    error: str = "NONE"
    high_watermark: int = -1
    batches: tuple[Batch, ...] = ()
    diverging: tuple[int, int] | None = None     # (epoch, end offset) to truncate to
    log_start_offset: int = -1


@dataclass(frozen=True, slots=True)
class FetchResponse:
    partitions: dict[TopicPartition, FetchPartitionData]
    error: str = "NONE"                          # the session's (FETCH_SESSION_ID_NOT_FOUND...)
    session_id: int = 0


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    topics: tuple[str, ...]
    auto_create: bool = False


@dataclass(frozen=True, slots=True)
class MetadataResponse:
    brokers: dict[int, str]
    topics: dict[str, tuple[PartitionMetadata, ...]]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListOffsetsRequest:
    tp: TopicPartition
    # -1 latest, -2 earliest, -3 the record with the largest timestamp, -4 earliest local;
    # >= 0: the first offset whose record was written at or after it (the log's own milliseconds)
    timestamp: float


@dataclass(frozen=True, slots=True)
class ListOffsetsResponse:
    error: str = "NONE"
    offset: int = -1
    timestamp: float | None = None               # the found record's, for a timestamp lookup


# -- group coordination ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FindCoordinatorRequest:
    group_id: str


@dataclass(frozen=True, slots=True)
class FindCoordinatorResponse:
    error: str = "NONE"
    node_id: int = -1
    node: str = ""


@dataclass(frozen=True, slots=True)
class JoinGroupRequest:
    group_id: str
    member_id: str
    client: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[str, ...]
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JoinGroupResponse:
    error: str = "NONE"
    generation: int = -1
    protocol: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[tuple[str, tuple[str, ...]], ...] = ()   # for the leader: (member, topics)


@dataclass(frozen=True, slots=True)
class SyncGroupRequest:
    group_id: str
    member_id: str
    generation: int
    assignments: tuple[tuple[str, tuple[TopicPartition, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class SyncGroupResponse:
    error: str = "NONE"
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    generation: int


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    error: str = "NONE"


@dataclass(frozen=True, slots=True)
class LeaveGroupRequest:
    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True)
class LeaveGroupResponse:
    error: str = "NONE"


@dataclass(frozen=True, slots=True)
class OffsetCommitRequest:
    group_id: str
    member_id: str
    generation: int
    offsets: tuple[tuple[TopicPartition, int], ...]


@dataclass(frozen=True, slots=True)
class OffsetCommitResponse:
    error: str = "NONE"
    unknown: tuple[TopicPartition, ...] = ()     # refused: their topic does not exist (UNKNOWN_TOPIC_OR_PARTITION)


@dataclass(frozen=True, slots=True)
class OffsetFetchRequest:
    group_id: str
    partitions: tuple[TopicPartition, ...] | None     # None: every committed partition


@dataclass(frozen=True, slots=True)
class OffsetFetchResponse:
    error: str = "NONE"
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListGroupsRequest:
    states: tuple[str, ...] = ()                 # empty: every state


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = "classic"                 # classic | consumer (KIP-848)


@dataclass(frozen=True, slots=True)
class ListGroupsResponse:
    error: str = "NONE"
    groups: tuple[ListedGroup, ...] = ()


@dataclass(frozen=True, slots=True)
class DescribeGroupsRequest:
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    client_id: str
    topics: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    error: str = "NONE"
    state: str = "Dead"
    protocol_type: str = ""
    protocol: str = ""
    members: tuple[MemberDescription, ...] = ()


@dataclass(frozen=True, slots=True)
class DescribeGroupsResponse:
    groups: tuple[GroupDescription, ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupHeartbeatRequest:
    """KIP-848's one request of a member: join (epoch 0), stay (its epoch), leave (-1, -2 for a static member)."""
    group_id: str
    member_id: str
    member_epoch: int
    client: str = ""
    rebalance_timeout_ms: int = -1                          # -1: unchanged
    topics: tuple[str, ...] | None = None                   # None: unchanged since the last heartbeat
    assignor: str | None = None                             # None: unchanged, or the broker's default
    owned: tuple[TopicPartition, ...] | None = None         # None: unchanged


@dataclass(frozen=True, slots=True)
class ConsumerGroupHeartbeatResponse:
    error: str = "NONE"
    member_id: str = ""
    member_epoch: int = -1
    heartbeat_interval_ms: int = 0
    assignment: tuple[TopicPartition, ...] | None = None    # None: unchanged
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescribeRequest:
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsumerMemberDescription:
    member_id: str
    client_id: str
    member_epoch: int
    topics: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]
    target: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescription:
    group_id: str
    error: str = "NONE"
    state: str = "Dead"
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ""
    members: tuple[ConsumerMemberDescription, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescribeResponse:
    groups: tuple[ConsumerGroupDescription, ...]


@dataclass(frozen=True, slots=True)
class InitProducerIdRequest:
    transactional_id: str | None = None


@dataclass(frozen=True, slots=True)
class InitProducerIdResponse:
    error: str = "NONE"
    producer_id: int = -1
    producer_epoch: int = -1


@dataclass(frozen=True, slots=True)
class DescribeClusterRequest:
    pass


@dataclass(frozen=True, slots=True)
class DescribeClusterResponse:
    brokers: dict[int, str]                      # the live (unfenced) brokers: node id -> name
    controller_id: int                           # what a KRaft broker names: a live broker
    error: str = "NONE"


@dataclass(frozen=True, slots=True)
class ShareGroupHeartbeatRequest:
    """KIP-932's one request of a share group member: join (epoch 0), stay (its epoch), leave (-1)."""
    group_id: str
    member_id: str
    member_epoch: int
    client: str = ""
    topics: tuple[str, ...] | None = None                   # None: unchanged since the last heartbeat


@dataclass(frozen=True, slots=True)
class ShareGroupHeartbeatResponse:
    error: str = "NONE"
    member_id: str = ""
    member_epoch: int = -1
    heartbeat_interval_ms: int = 0
    assignment: tuple[TopicPartition, ...] | None = None    # None: unchanged
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ShareGroupDescribeRequest:
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShareMemberDescription:
    member_id: str
    client_id: str
    member_epoch: int
    topics: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class ShareGroupDescription:
    group_id: str
    error: str = "NONE"
    state: str = "Dead"
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ""
    members: tuple[ShareMemberDescription, ...] = ()
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ShareGroupDescribeResponse:
    groups: tuple[ShareGroupDescription, ...]


@dataclass(frozen=True, slots=True)
class ShareAck:
    """An acknowledgement batch: offsets first..last, one acknowledge type each (one type: the whole range)."""
    first: int
    last: int
    types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ShareFetchRequest:
    """ShareFetch on a share session: epoch 0 opens one, -1 closes it; acknowledgements ride along."""
    group_id: str
    member_id: str
    session_epoch: int
    partitions: tuple[TopicPartition, ...] = ()             # added to the session
    forgotten: tuple[TopicPartition, ...] = ()
    acks: dict[TopicPartition, tuple[ShareAck, ...]] = field(default_factory=dict)
    max_wait_ms: float = 0.0
    min_bytes: int = 1
    max_bytes: int = 52_428_800
    max_records: int = 500


@dataclass(frozen=True, slots=True)
class ShareAcknowledgeRequest:
    """ShareAcknowledge: acknowledgements alone, on an open share session (-1: and close it)."""
    group_id: str
    member_id: str
    session_epoch: int
    acks: dict[TopicPartition, tuple[ShareAck, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SharePartitionData:
    error: str = "NONE"
    ack_error: str = "NONE"
    batches: tuple[Batch, ...] = ()
    acquired: tuple[tuple[int, int, int], ...] = ()         # (first offset, last offset, delivery count)
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ShareFetchResponse:
    error: str = "NONE"
    partitions: dict[TopicPartition, SharePartitionData] = field(default_factory=dict)
    lock_timeout_ms: int = 0
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ShareGroupOffsetsRequest:
    """DescribeShareGroupOffsets: topics None for every topic the group has state for."""
    groups: tuple[tuple[str, tuple[str, ...] | None], ...]


@dataclass(frozen=True, slots=True)
class SharePartitionOffset:
    start_offset: int
    leader_epoch: int
    lag: int                                                # -1 where the version does not say


@dataclass(frozen=True, slots=True)
class ShareGroupOffsets:
    group_id: str
    error: str = "NONE"
    partitions: dict[TopicPartition, SharePartitionOffset] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShareGroupOffsetsResponse:
    groups: tuple[ShareGroupOffsets, ...]
