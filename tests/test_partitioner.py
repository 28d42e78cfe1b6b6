import random

import pytest

from broker.partitioner import (
    RoundRobinPartitioner,
    StickyPartitioner,
    murmur2,
    partition_for_key,
    to_positive,
)


# the vectors of Kafka's own UtilsTest.testMurmur2
@pytest.mark.parametrize("key,expected", [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
])
def test_murmur2_matches_kafka(key, expected):
    assert murmur2(key.encode()) == expected


def test_partition_is_positive_murmur2_modulo_count():
    # "foobar" hashes negative: toPositive masks the sign bit before the modulo
    assert partition_for_key(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
    assert partition_for_key(b"foobar", 7) == to_positive(-790332482) % 7
    assert partition_for_key(b"21", 1000) == (-973932308 & 0x7FFFFFFF) % 1000


def test_same_key_same_partition():
    assert len({partition_for_key(b"customer-42", 12) for _ in range(10)}) == 1


def test_partition_count_must_be_positive():
    with pytest.raises(ValueError):
        partition_for_key(b"k", 0)


def test_sticky_partitioner_moves_after_batch_size():
    p = StickyPartitioner(random.Random(1), batch_size=1000)
    first = [p.partition("t", 12, 100) for _ in range(10)]
    assert len(set(first)) == 1                    # 10 x 100 bytes stay on one partition
    picks = {p.partition("t", 12, 100) for _ in range(2000)}
    assert len(picks) > 6                          # then it moves on, over many partitions


def test_round_robin_partitioner():
    p = RoundRobinPartitioner()
    assert [p.partition("t", 3, 1) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
