"""Which partition a record belongs to: Kafka's default partitioner applied to the group key.

The group key is `service|endpoint`. Using Kafka's own murmur2 means any producer that keys messages by the
group key (the metrics topic, a user's own producer) lands them on the same partition as tailwatch does.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as `org.apache.kafka.common.utils.Utils.murmur2`, as an unsigned 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def group_key(service: str, endpoint: str) -> str:
    return f"{service}|{endpoint}"


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Kafka's default partitioner for a keyed message: `toPositive(murmur2(key)) % numPartitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class Partitioner:
    """Partition of each (service, endpoint), cached: a record pays one dict lookup."""

    def __init__(self, num_partitions: int) -> None:
        if num_partitions < 1:
            raise ValueError("num_partitions must be at least 1")
        self.num_partitions = num_partitions
        self._cache: dict[tuple[str, str], int] = {}

    def partition(self, service: str, endpoint: str) -> int:
        key = (service, endpoint)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= 262_144:
                self._cache.clear()
            found = partition_for_key(group_key(service, endpoint).encode(), self.num_partitions)
            self._cache[key] = found
        return found
