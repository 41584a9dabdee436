"""Table values of any size, each changelog message under Kafka's message size limit.

A table write is one changelog message, and a broker refuses a message over its `message.max.bytes` (1 MB by
default on Apache Kafka and most managed ones; the producer has its own limit too): a checkpoint holding the open
panes of thousands of endpoints, or a service stage reading a backlog whose logs partitions are hours apart, is
larger than that — and a refused write stopped the worker. A value over `TABLE_VALUE_MAX_BYTES` is written as
pieces under keys of their own (`<key's first segment>/chunk/<key>/<generation>/<index>`), then the key itself as a
small header naming the generation and the count, and the one before. One changelog partition keeps the order of
its writes, so a restore from the changelog sees either the old header with its pieces or the new one with its
pieces, never a mix. The pieces of the value a write replaces stay until the write after it: a RocksDB store that
was ahead of its changelog when the worker died (writes applied locally, never sent) is given the previous header
back by the replay of the changelog, and still holds its pieces. A key once written in pieces keeps this form (a
small value is one piece). Should a header still lack a piece, the value is unreadable: the stage logs it and goes
on without it (`TableValueError`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("tailwatch.worker")

TABLE_VALUE_MAX_BYTES = 512 * 1024  # half of Kafka's default message.max.bytes: room for the key and headers
HEADER = b"\x00chunks/"  # no JSON value starts with a NUL byte


class TableValueError(Exception):
    """A header whose pieces are missing (a local store that lost them, or a table written by something else)."""


def _header(value: bytes | None) -> tuple[int, int, int, int] | None:
    """(generation, pieces, previous generation, its pieces) of a header; None for a plain value."""
    if value is None or not value.startswith(HEADER):
        return None
    generation, count, previous, previous_count = (int(part) for part in value[len(HEADER):].split(b"/"))
    return generation, count, previous, previous_count


def chunk_key(key: bytes, generation: int, index: int) -> bytes:
    """A piece's key: under the key's own first segment (its partition), outside every prefix the stages scan."""
    first, _, _rest = key.partition(b"/")
    return b"%s/chunk/%s/%d/%d" % (first, key, generation, index)


def is_chunk_key(key: bytes) -> bool:
    _first, _, rest = key.partition(b"/")
    return rest.startswith(b"chunk/")


def put(table: Any, key: bytes, data: bytes, max_bytes: int = TABLE_VALUE_MAX_BYTES) -> None:
    """Store `data` under `key`: as it is when small (and never in pieces before), else as pieces and a header."""
    old = _header(table.get(key))
    if old is None and len(data) <= max_bytes:
        table[key] = data
        return
    generation = old[0] + 1 if old is not None else 1
    pieces = [data[i:i + max_bytes] for i in range(0, len(data), max_bytes)] or [b""]
    for index, piece in enumerate(pieces):
        table[chunk_key(key, generation, index)] = piece
    replaced = (old[0], old[1]) if old is not None else (0, 0)
    table[key] = HEADER + b"%d/%d/%d/%d" % (generation, len(pieces), *replaced)
    if old is not None:
        _drop_pieces(table, key, old[2], old[3])  # the value before the one just replaced


def get(table: Any, key: bytes) -> bytes | None:
    """The value stored under `key` (its pieces joined), or None."""
    return assemble(table, key, table.get(key))


def assemble(table: Any, key: bytes, value: bytes | None) -> bytes | None:
    """`value`, read under `key`, with its pieces joined when it is a header."""
    header = _header(value)
    if header is None:
        return value
    generation, count, _previous, _previous_count = header
    pieces = [table.get(chunk_key(key, generation, index)) for index in range(count)]
    if any(piece is None for piece in pieces):
        raise TableValueError(f"table value {key!r} misses pieces of generation {generation}")
    return b"".join(pieces)


def pop(table: Any, key: bytes) -> None:
    """Delete `key` and its pieces (nothing when absent)."""
    old = _header(table.pop(key, None))
    if old is not None:
        _drop_pieces(table, key, old[0], old[1])
        _drop_pieces(table, key, old[2], old[3])


def items_with_prefix(table: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of the keys starting with `prefix`, values joined from their pieces; an unreadable one is
    logged and left out."""
    keys = [key for key in list(table.keys()) if key.startswith(prefix) and not is_chunk_key(key)]
    for key in keys:
        try:
            joined = get(table, key)
        except TableValueError as error:
            log.error("table value unreadable, left out", extra={"fields": {"reason": str(error)}})
            continue
        if joined is not None:
            yield key, joined


def _drop_pieces(table: Any, key: bytes, generation: int, count: int) -> None:
    for index in range(count):
        table.pop(chunk_key(key, generation, index), None)
