"""Table values of any size as changelog messages under a limit: pieces, a header, and the old pieces dropped after
the new header — so any prefix of the writes (a worker killed between two) reads back the old value or the new."""

from __future__ import annotations

from typing import Any

import faust
import pytest

from agents import table_values
from agents.partition_driver import PartitionDriver, PartitionState, checkpoint_key
from agents.settings import KafkaSettings, table_value_max_bytes
from agents.table_values import TableValueError, get, is_chunk_key, items_with_prefix, pop, put

LIMIT = 100


class Changelog(dict[bytes, bytes]):
    """A table that records its writes in order, as the changelog receives them (None: a delete)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, bytes | None]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        assert len(value) <= LIMIT, "no changelog message over the limit"
        self.writes.append((key, value))
        super().__setitem__(key, value)

    def pop(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            self.writes.append((key, None))
        return super().pop(key, default)


def replayed(writes: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    table: dict[bytes, bytes] = {}
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


@pytest.mark.parametrize("size", [0, 1, LIMIT, LIMIT + 1, 5 * LIMIT, 5 * LIMIT + 7])
def test_values_of_any_size_read_back(size: int) -> None:
    table = Changelog()
    data = bytes(range(256)) * (size // 256 + 1)
    put(table, b"3/checkpoint", data[:size], LIMIT)
    assert get(table, b"3/checkpoint") == data[:size]
    pieces = [key for key in table if is_chunk_key(key)]
    assert len(pieces) == (0 if size <= LIMIT else -(-size // LIMIT))
    assert all(key.startswith(b"3/chunk/") for key in pieces)


def pieces_of(table: dict[bytes, bytes]) -> int:
    return sum(is_chunk_key(key) for key in table)


def test_rewrites_keep_the_current_and_the_replaced_pieces_only() -> None:
    table = Changelog()
    sizes = [450, 1000, 30, 620, 620, 0]
    for i, size in enumerate(sizes):
        put(table, b"1/checkpoint", b"x" * size, LIMIT)
        assert get(table, b"1/checkpoint") == b"x" * size
        now = max(1, -(-size // LIMIT))  # once in pieces, a key stays in pieces (a small value is one)
        before = max(1, -(-sizes[i - 1] // LIMIT)) if i else 0
        assert pieces_of(table) == now + before
    pop(table, b"1/checkpoint")
    assert table == {}


def test_a_local_store_ahead_of_its_changelog_still_reads_the_replayed_header() -> None:
    """RocksDB after a crash: the store applied a write the changelog never got; replaying the changelog gives the
    key its previous header back — whose pieces the store must still hold."""
    table = Changelog()
    put(table, b"0/checkpoint", b"a" * 250, LIMIT)
    put(table, b"0/checkpoint", b"b" * 330, LIMIT)
    durable = len(table.writes)
    put(table, b"0/checkpoint", b"c" * 410, LIMIT)  # applied locally, never sent
    local = dict(table)
    for key, value in table.writes[:durable]:  # the replay, from an offset before the last durable header
        if key == b"0/checkpoint":
            local[key] = value  # type: ignore[assignment]
    assert get(local, b"0/checkpoint") == b"b" * 330


def test_every_prefix_of_the_writes_reads_the_old_value_or_the_new() -> None:
    table = Changelog()
    put(table, b"0/checkpoint", b"a" * 250, LIMIT)
    before = len(table.writes)
    put(table, b"0/checkpoint", b"b" * 430, LIMIT)
    put(table, b"0/checkpoint", b"c" * 40, LIMIT)
    put(table, b"0/checkpoint", b"d" * 230, LIMIT)
    seen = set()
    for cut in range(before, len(table.writes) + 1):
        value = get(replayed(table.writes[:cut]), b"0/checkpoint")
        assert value in {b"a" * 250, b"b" * 430, b"c" * 40, b"d" * 230}
        seen.add(value)
    assert len(seen) == 4


def test_prefix_scan_joins_pieces_and_skips_them() -> None:
    table = Changelog()
    put(table, b"2/closed/60000", b"[" + b"1," * 200 + b"1]", LIMIT)
    put(table, b"2/closed/120000", b"[2]", LIMIT)
    put(table, b"20/closed/60000", b"[3]", LIMIT)
    found = dict(items_with_prefix(table, b"2/closed/"))
    assert found == {b"2/closed/60000": b"[" + b"1," * 200 + b"1]", b"2/closed/120000": b"[2]"}


def test_a_header_without_its_pieces_is_an_error_not_a_wrong_value() -> None:
    table = Changelog()
    put(table, b"0/checkpoint", b"z" * 300, LIMIT)
    table.pop(table_values.chunk_key(b"0/checkpoint", 1, 1))
    with pytest.raises(TableValueError, match="misses pieces"):
        get(table, b"0/checkpoint")
    assert list(items_with_prefix(table, b"0/")) == []  # left out (and logged) by a scan


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAILWATCH_TABLE_VALUE_MAX_BYTES", raising=False)
    assert table_value_max_bytes() == 512 * 1024
    monkeypatch.setenv("TAILWATCH_TABLE_VALUE_MAX_BYTES", "65536")
    assert table_value_max_bytes() == 65536
    monkeypatch.setenv("TAILWATCH_TABLE_VALUE_MAX_BYTES", "10")
    assert table_value_max_bytes() == 4096
    monkeypatch.setenv("TAILWATCH_TABLE_VALUE_MAX_BYTES", "lots")
    assert table_value_max_bytes() == 512 * 1024


class _Operator:
    def __init__(self) -> None:
        self.applied_offset = -1

    def snapshot(self) -> dict[str, Any]:
        return {"offset": self.applied_offset}


def test_keys_the_operator_let_go_are_deleted_only_after_the_checkpoint_that_no_longer_needs_them() -> None:
    """A closed pane evicted by a step stays in the table until the next checkpoint is stored: a restore from the
    checkpoint before it (a crash, a rebalance) still finds every pane its windows read."""
    class Driver(PartitionDriver[_Operator]):
        def new_operator(self, partition: int) -> _Operator:
            return _Operator()

        def restore(self, partition: int, operator: _Operator, checkpoint: dict[str, Any]) -> None:
            operator.applied_offset = checkpoint["offset"]

        async def apply(self, partition: int, state: PartitionState[_Operator], offset: int, value: bytes | None,
                        published: int | None) -> None:
            state.operator.applied_offset = offset

    table = Changelog()
    driver = Driver(faust.App("t-drops"), KafkaSettings("127.0.0.1:9", "t", 1, 1), "t.logs", table, 1.0)
    state = driver.state(0)
    closed = driver.closed_key(0, 60_000)
    driver.store(closed, b"[1]")
    driver.checkpoint(0, state)
    state.operator.applied_offset = 7
    driver.drop_after_checkpoint(0, closed)
    assert closed in table, "still there for a restore from the checkpoint before"
    driver.checkpoint(0, state)
    assert closed not in table
    written = [key for key, _value in table.writes]
    assert written.index(closed, 1) > [i for i, key in enumerate(written) if key == checkpoint_key(0)][-1], \
        "deleted after the checkpoint was stored"
