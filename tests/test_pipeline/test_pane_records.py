"""Panes read parsed dicts and decoded `PaneRecord`s alike: the same records in either shape give the same panes,
late counts included."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from pipeline.metrics import snapshot
from pipeline.pane_records import DICT_FIELDS, STRUCT_FIELDS, PaneRecord, fields_of
from pipeline.pane_store import PaneStore
from tests.test_pipeline.records import BASE_MS, d1, record

T0 = BASE_MS


def as_struct(records: list[dict[str, Any]]) -> list[PaneRecord]:
    return [msgspec.convert({**r, "d1": tuple(r["d1"])}, PaneRecord) for r in records]


BATCHES: list[list[dict[str, Any]]] = [
    [record(T0 + 1_000, status=200), record(T0 + 2_000, status=404, duration=None),
     record(T0 + 3_000, endpoint="/api/b", status=None, outcome="exception", cpu_ms=None),
     record(T0 + 4_000, d1=[d1(), d1("write", error_code="connection_failed", rows_written=3)])],
    [record(T0 + 61_000, watermark_ms=T0 + 50_000), record(T0 + 62_000, endpoint="/api/b", watermark_ms=T0 + 52_000)],
    # the watermark passed the first pane: these two are late, one is not
    [record(T0 + 5_000, watermark_ms=T0 + 65_000), record(T0 + 6_000, endpoint="/api/b", watermark_ms=T0 + 66_000),
     record(T0 + 64_000, status=500, watermark_ms=T0 + 66_000)],
]


def panes_of(batches: list[list[Any]]) -> tuple[list[bytes], int]:
    store, late = PaneStore(), 0
    for batch in batches:
        late += store.add(batch)
    return [orjson.dumps(snapshot(e)) for e in store.close_all()], late


def test_dicts_and_structs_give_the_same_panes_and_late_counts() -> None:
    dict_batches = [[{"watermark_ms": None, **r} for r in batch] for batch in BATCHES]
    from_dicts = panes_of(dict_batches)
    from_structs = panes_of([as_struct(batch) for batch in dict_batches])
    assert from_dicts == from_structs
    assert from_dicts[1] == 2


@pytest.mark.parametrize(("records", "fields"), [([record(T0)], DICT_FIELDS), (as_struct([record(T0)]), STRUCT_FIELDS),
                                                 ([], DICT_FIELDS)])
def test_fields_follow_the_shape_of_the_records(records: list[Any], fields: object) -> None:
    assert fields_of(records) is fields
