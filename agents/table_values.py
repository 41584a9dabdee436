"""Table values of any size, each changelog message under Kafka's message size limit.

A table write is one changelog message, and a broker refuses a message over its `message.max.bytes` (1 MB by
default on Apache Kafka and most managed ones; the producer has its own limit too): a checkpoint holding the open
panes of thousands of endpoints, or a service stage reading a backlog whose logs partitions are hours apart, is
larger than that — and a refused write stopped the worker. A value over `TABLE_VALUE_MAX_BYTES` is written as
pieces under keys of their own (`<key's first segment>/chunk/<key>/<generation>/<index>`), then the key itself as a
small header naming the generation and the count; the pieces of the previous generation are deleted after the
header. One changelog partition keeps the order of its writes, so a restore sees either the old header with its
pieces or the new one with its pieces, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TABLE_VALUE_MAX_BYTES = 512 * 1024  # half of Kafka's default message.max.bytes: room for the key and headers
HEADER = b"\x00chunks/"  # no JSON value starts with a NUL byte


class TableValueError(Exception):
    """A header whose pieces are missing: the table was not written by this module."""


def _header(value: bytes | None) -> tuple[int, int] | None:
    if value is None or not value.startswith(HEADER):
        return None
    generation, count = value[len(HEADER):].split(b"/")
    return int(generation), int(count)


def chunk_key(key: bytes, generation: int, index: int) -> bytes:
    """A piece's key: under the key's own first segment (its partition), outside every prefix the stages scan."""
    first, _, _rest = key.partition(b"/")
    return b"%s/chunk/%s/%d/%d" % (first, key, generation, index)


def is_chunk_key(key: bytes) -> bool:
    _first, _, rest = key.partition(b"/")
    return rest.startswith(b"chunk/")


def put(table: Any, key: bytes, data: bytes, max_bytes: int = TABLE_VALUE_MAX_BYTES) -> None:
    """Store `data` under `key`: as it is when small, else as pieces and a header."""
    old = _header(table.get(key))
    if len(data) <= max_bytes:
        table[key] = data
    else:
        generation = old[0] + 1 if old is not None else 1
        pieces = [data[i:i + max_bytes] for i in range(0, len(data), max_bytes)]
        for index, piece in enumerate(pieces):
            table[chunk_key(key, generation, index)] = piece
        table[key] = HEADER + b"%d/%d" % (generation, len(pieces))
    if old is not None:
        _drop_pieces(table, key, *old)


def get(table: Any, key: bytes) -> bytes | None:
    """The value stored under `key` (its pieces joined), or None."""
    return assemble(table, key, table.get(key))


def assemble(table: Any, key: bytes, value: bytes | None) -> bytes | None:
    """`value`, read under `key`, with its pieces joined when it is a header."""
    header = _header(value)
    if header is None:
        return value
    generation, count = header
    pieces = [table.get(chunk_key(key, generation, index)) for index in range(count)]
    if any(piece is None for piece in pieces):
        raise TableValueError(f"table value {key!r} misses pieces of generation {generation}")
    return b"".join(pieces)


def pop(table: Any, key: bytes) -> None:
    """Delete `key` and its pieces (nothing when absent)."""
    old = _header(table.pop(key, None))
    if old is not None:
        _drop_pieces(table, key, *old)


def items_with_prefix(table: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of the keys starting with `prefix`, values joined from their pieces."""
    for key, value in list(table.items()):
        if key.startswith(prefix) and not is_chunk_key(key):
            joined = assemble(table, key, value)
            if joined is not None:
                yield key, joined


def _drop_pieces(table: Any, key: bytes, generation: int, count: int) -> None:
    for index in range(count):
        table.pop(chunk_key(key, generation, index), None)
