"""A batch of records as columns: what panes and rules read, as numpy arrays, for vectorized aggregation.

Every batch the panes count is a `LogColumns`, whatever it came from: a columnar logs-topic message (version 2 or 3,
decoded by `pipeline.log_batches` without a per-record step), a row message of an older topic (version 1, its
`PaneRecord` structs), or the parsed dicts of a file replay or a rule test (`from_records`). So there is one
aggregation (`pipeline.pane_aggregation`), and live and replay count the same columns the same way.

Columns, one entry per record unless said otherwise:
- `endpoint`: an index into `endpoints`, the batch's dictionary of (service, endpoint) pairs;
- `event_time_ms`, `watermark_ms` (int64; `NO_MARK` where a record carries no stamp);
- `status`: an index into `statuses` (HTTP statuses, `None` for no response), `outcome`: into `outcomes`;
- `duration_ms`, `cpu_ms` (float64; NaN where the record has none — JSON has no NaN, so it cannot be a value);
- D1 queries, one entry per query, in record order: `d1_record` (the record's index), `d1_write` (a write, else a
  read), `d1_connection_failed`, `d1_duration_ms`, `d1_rows_read`, `d1_rows_written`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.pane_records import Records, fields_of
from pipeline.panes import CONNECTION_FAILED

NO_MARK = np.iinfo(np.int64).min  # a record without a watermark stamp

Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class D1Columns:
    record: Ints
    write: Flags
    connection_failed: Flags
    duration_ms: Floats
    rows_read: Ints
    rows_written: Ints

    def __len__(self) -> int:
        return len(self.record)

    def take(self, keep: Flags, new_index: Ints) -> D1Columns:
        """The queries of the kept records, their record indexes renumbered (`new_index[old]`)."""
        mine = keep[self.record]
        return D1Columns(new_index[self.record[mine]], self.write[mine], self.connection_failed[mine],
                         self.duration_ms[mine], self.rows_read[mine], self.rows_written[mine])


NO_D1 = D1Columns(np.zeros(0, np.int64), np.zeros(0, np.bool_), np.zeros(0, np.bool_), np.zeros(0, np.float64),
                  np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass(frozen=True, slots=True)
class LogColumns:
    endpoints: list[tuple[str, str]]
    statuses: list[int | None]
    outcomes: list[str]
    endpoint: Codes
    event_time_ms: Ints
    watermark_ms: Ints
    status: Codes
    outcome: Codes
    duration_ms: Floats
    cpu_ms: Floats
    d1: D1Columns

    def __len__(self) -> int:
        return len(self.event_time_ms)

    def take(self, keep: Flags) -> LogColumns:
        """The records where `keep` is true, in order (the dictionaries stay as they are)."""
        new_index = np.cumsum(keep, dtype=np.int64) - 1
        return LogColumns(self.endpoints, self.statuses, self.outcomes, self.endpoint[keep], self.event_time_ms[keep],
                          self.watermark_ms[keep], self.status[keep], self.outcome[keep], self.duration_ms[keep],
                          self.cpu_ms[keep], self.d1.take(keep, new_index) if len(self.d1) else NO_D1)


EMPTY = LogColumns([], [], [], np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64), np.zeros(0, np.float64),
                   NO_D1)


def encode_values(values: Sequence[K]) -> tuple[list[K], Codes]:
    """A dictionary of the distinct values in first-seen order, and each value's index into it."""
    distinct = list(dict.fromkeys(values))
    index = {value: code for code, value in enumerate(distinct)}
    return distinct, np.array(list(map(index.__getitem__, values)), dtype=np.int32)


def _floats(values: list[Any]) -> Floats:
    return np.array(values, dtype=np.float64)  # None becomes NaN


def as_columns(records: Records | LogColumns) -> LogColumns:
    return records if isinstance(records, LogColumns) else from_records(records)


def from_records(records: Records) -> LogColumns:
    """Columns of parsed record dicts or decoded `PaneRecord`s (all of one shape), in their order."""
    if not records:
        return EMPTY
    fields = fields_of(records)
    endpoints, endpoint = encode_values(list(zip(map(fields.service, records), map(fields.endpoint, records),
                                                 strict=True)))
    statuses, status = encode_values(list(map(fields.status, records)))
    outcomes, outcome = encode_values(list(map(fields.outcome, records)))
    marks = list(map(fields.watermark_ms, records))
    if None in marks:
        marks = [NO_MARK if mark is None else mark for mark in marks]
    return LogColumns(endpoints, statuses, outcomes, endpoint, np.array(list(map(fields.event_time_ms, records)),
                                                                         dtype=np.int64),
                      np.array(marks, dtype=np.int64), status, outcome, _floats(list(map(fields.duration_ms, records))),
                      _floats(list(map(fields.cpu_ms, records))), d1_columns(list(map(fields.d1, records))))


def d1_columns(per_record: list[Sequence[dict[str, Any]]]) -> D1Columns:
    """The D1 queries of each record (most have none), flattened in record order."""
    if not any(per_record):
        return NO_D1
    rows = [(i, query) for i, queries in enumerate(per_record) if queries for query in queries]
    queries = [query for _i, query in rows]

    def column(get: Callable[[dict[str, Any]], Any], dtype: type[np.generic]) -> npt.NDArray[Any]:
        return np.array(list(map(get, queries)), dtype=dtype)

    return D1Columns(np.array([i for i, _query in rows], dtype=np.int64),
                     column(lambda q: q["query_type"] != "read", np.bool_),
                     column(lambda q: q.get("error_code") == CONNECTION_FAILED, np.bool_),
                     column(lambda q: q["duration_ms"], np.float64), column(lambda q: q["rows_read"], np.int64),
                     column(lambda q: q["rows_written"], np.int64))
