"""Kafka's default partitioner, reimplemented: it must agree with the Java client (and so with aiokafka)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.partitioning import Partitioner, group_key, murmur2, partition_for_key

PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafka(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)
    assert 0 <= murmur2(data) < 2**32


@pytest.mark.parametrize("length", range(9))
def test_murmur2_every_tail_length(length: int) -> None:
    data = bytes(range(200, 200 + length))
    assert murmur2(data) == aiokafka_murmur2(data)


@pytest.mark.parametrize(
    ("key", "partition"),
    # org.apache.kafka.clients.producer.Partitioner with 1000 partitions (kafka-python's Java compatibility test)
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_for_key_matches_the_java_client(key: bytes, partition: int) -> None:
    assert partition_for_key(key, 1000) == partition


@PROPERTY
@given(st.binary(max_size=120), st.integers(1, 64))
def test_partition_for_key_equals_aiokafka_default_partitioner(key: bytes, num_partitions: int) -> None:
    partitions = list(range(num_partitions))
    assert partition_for_key(key, num_partitions) == DefaultPartitioner()(key, partitions, partitions)


@PROPERTY
@given(st.text(max_size=30), st.text(max_size=60), st.integers(1, 48))
def test_partitioner_keys_by_service_and_endpoint(service: str, endpoint: str, num_partitions: int) -> None:
    partitioner = Partitioner(num_partitions)
    expected = DefaultPartitioner()(f"{service}|{endpoint}".encode(), list(range(num_partitions)), [])
    assert partitioner.partition(service, endpoint) == expected
    assert partitioner.partition(service, endpoint) == expected  # the cached answer is the same


def test_group_key() -> None:
    assert group_key("factory-api", "/api/public/factory/templates/:slug") == \
        "factory-api|/api/public/factory/templates/:slug"


def test_endpoints_spread_over_partitions() -> None:
    partitioner = Partitioner(8)
    used = {partitioner.partition("svc", f"/api/e{i}") for i in range(200)}
    assert used == set(range(8))


def test_partitioner_needs_a_partition() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Partitioner(0)
    assert Partitioner(1).partition("a", "b") == 0
