"""What panes read of a record, from either of the two shapes records come in.

- Parsed records (`replay`, `report`, rule tests) are plain dicts shaped like `schemas.record.LogRecord`.
- Records of a row batch (version 1, on topics written by older versions) decoded from the logs topic are
  `PaneRecord` structs: only the fields panes read, built by msgspec in C, not tracked by the garbage collector.

Both become columns (`pipeline.log_columns.from_records`) before they are counted. `fields_of(records)` gives the
getters for a batch's shape; every getter is a C-level item or attribute getter, so the per-record work stays in
`map`/`zip`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict

import msgspec

Number = int | float


class PaneD1Query(TypedDict):
    """A D1 query as panes read it (a dict in both shapes: queries are rare)."""

    query_type: Literal["read", "write"]
    duration_ms: Number
    rows_read: int
    rows_written: int
    error_code: NotRequired[str | None]


class PaneRecord(msgspec.Struct, gc=False):
    """The fields of a `LogRecord` that panes and rules read."""

    service: str
    endpoint: str
    event_time_ms: int
    status: int | None
    outcome: str
    duration_ms: Number | None
    cpu_ms: Number | None
    d1: tuple[PaneD1Query, ...] = ()  # a tuple: most records have none, and every empty one is the same ()
    watermark_ms: int | None = None


Records = Sequence[dict[str, Any]] | Sequence[PaneRecord]
Getter = Callable[[Any], Any]


class RecordFields(NamedTuple):
    service: Getter
    endpoint: Getter
    event_time_ms: Getter
    watermark_ms: Getter  # None when the record has no stamp
    status: Getter
    outcome: Getter
    duration_ms: Getter
    cpu_ms: Getter
    d1: Getter


DICT_FIELDS = RecordFields(
    itemgetter("service"), itemgetter("endpoint"), itemgetter("event_time_ms"), methodcaller("get", "watermark_ms"),
    itemgetter("status"), itemgetter("outcome"), itemgetter("duration_ms"), itemgetter("cpu_ms"), itemgetter("d1"))
STRUCT_FIELDS = RecordFields(
    attrgetter("service"), attrgetter("endpoint"), attrgetter("event_time_ms"), attrgetter("watermark_ms"),
    attrgetter("status"), attrgetter("outcome"), attrgetter("duration_ms"), attrgetter("cpu_ms"), attrgetter("d1"))


def fields_of(records: Records) -> RecordFields:
    """The getters for this batch's records (all of one shape)."""
    return STRUCT_FIELDS if records and type(records[0]) is PaneRecord else DICT_FIELDS
