"""The columnar logs-topic batch (version 3): what ingest writes, and its records back as rows for other readers.

A columnar `LogBatch` (`schemas.envelopes.ColumnarLogBatch`) has the row batch's header and, instead of `records`:
- `columns`: what panes read (`pipeline.log_columns`), each numeric column the base64 of its little-endian bytes
  (`endpoint`, `status`, `outcome` int32 indexes into the JSON lists `endpoints`, `statuses`, `outcomes`;
  `event_time_ms`, `watermark_ms` int64, `NO_MARK` for no stamp; `duration_ms`, `cpu_ms` float64, NaN for none,
  and `cpu_ms_int` uint8, 1 where the CPU time was a JSON integer, so the rows come back as they were;
  the D1 queries flattened: `d1_record` int32, `d1_write`, `d1_connection_failed` uint8, `d1_duration_ms` float64,
  `d1_rows_read`, `d1_rows_written` int64). The worker turns them into arrays without a step per record.
- `other`: every other `LogRecord` field, one value per record, and `d1_other` the D1 fields panes do not read
  (`database`, `table`, `error_code`), one value per query. The worker skips both unread. Each field is a JSON
  list of its values or, in version 3, when its values are all strings or null and at most half of them distinct
  (method, colo, level, ...), dictionary coded (`coded_field`): `{"values": [the distinct values, in first-seen
  order], "codes": base64 of each value's index}`, the codes uint8 when there are at most 256 distinct values,
  else little-endian uint16. Version 2 (written before) has lists only; both are read.

Version 3 exists for what the worker skips: with every field a list, `other` was two thirds of a batch's bytes
(92 kB of 500 records in `bench live`), all of it fetched and scanned; coded, the batch is half that size.

`records_of_batch` gives the records of a batch of any version as `LogRecord` dicts (the report's record
sections, tests), equal to the records ingest batched, value and type (numbers exact below 2**53).
"""

from __future__ import annotations

import math
from functools import cache
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np

from pipeline.log_columns import NO_MARK, D1Columns, LogColumns, from_records

COLUMNAR_VERSION = 3  # what ingest writes
COLUMNAR_VERSIONS = (2, 3)  # what readers read as columns (version 1 is rows)
CODED_MAX_VALUES = 1 << 16  # distinct values a coded field can index (uint16 codes)
PANE_FIELDS = ("service", "endpoint", "event_time_ms", "status", "outcome", "duration_ms", "cpu_ms", "d1",
               "watermark_ms")
D1_OTHER_FIELDS = ("database", "table", "error_code")


@cache
def record_fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`LogRecord`'s fields in order, and those of them not in the columns (the `other` lists). Read from the schema
    on first use: a file replay, which never encodes or decodes a batch, starts without pydantic."""
    from schemas.record import LogRecord  # noqa: PLC0415

    names = tuple(LogRecord.model_fields)
    return names, tuple(name for name in names if name not in PANE_FIELDS)

# column name -> little-endian dtype, per record then per D1 query
RECORD_COLUMNS = {"endpoint": "<i4", "event_time_ms": "<i8", "watermark_ms": "<i8", "status": "<i4",
                  "outcome": "<i4", "duration_ms": "<f8", "cpu_ms": "<f8", "cpu_ms_int": "u1"}
D1_COLUMNS = {"d1_record": "<i4", "d1_write": "u1", "d1_connection_failed": "u1", "d1_duration_ms": "<f8",
              "d1_rows_read": "<i8", "d1_rows_written": "<i8"}


class InvalidColumns(ValueError):
    """Columns that do not fit together; the message says why."""


def encode_columnar(batch: dict[str, Any]) -> bytes:
    """A row batch (`pipeline.batching`'s dict) as the version 3 message value."""
    records = batch["records"]
    columns = from_records(records)
    d1 = columns.d1
    arrays: dict[str, np.ndarray] = {"endpoint": columns.endpoint, "event_time_ms": columns.event_time_ms,
              "watermark_ms": columns.watermark_ms, "status": columns.status, "outcome": columns.outcome,
              "duration_ms": columns.duration_ms, "cpu_ms": columns.cpu_ms,
              "cpu_ms_int": np.array([type(record["cpu_ms"]) is int for record in records], dtype=np.bool_),
              "d1_record": d1.record,
              "d1_write": d1.write, "d1_connection_failed": d1.connection_failed, "d1_duration_ms": d1.duration_ms,
              "d1_rows_read": d1.rows_read, "d1_rows_written": d1.rows_written}
    dtypes = RECORD_COLUMNS | D1_COLUMNS
    queries = [query for record in records for query in record["d1"]]
    value = {key: batch[key] for key in ("producer", "source", "seq", "partition", "watermark_ms", "final")}
    value |= {
        "v": COLUMNAR_VERSION,
        "columns": {"endpoints": columns.endpoints, "statuses": columns.statuses, "outcomes": columns.outcomes,
                    **{name: array.astype(dtypes[name]).tobytes() for name, array in arrays.items()}},
        "other": {name: coded_field(values) for name, values in _per_field(records, record_fields()[1]).items()},
        "d1_other": {name: coded_field(values) for name, values in _per_field(queries, D1_OTHER_FIELDS).items()},
    }
    return msgspec.json.encode(value)


def _per_field(items: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """One list per field, a value per item (None where an item lacks the field); transposed in C when every item
    has every field, as parsed records do."""
    if not items:
        return {name: [] for name in names}
    try:
        columns = list(zip(*map(itemgetter(*names), items), strict=True))
    except KeyError:
        return {name: [item.get(name) for item in items] for name in names}
    return {name: list(column) for name, column in zip(names, columns, strict=True)}


def coded_field(values: list[Any]) -> list[Any] | dict[str, Any]:
    """A field's values as written: dictionary coded when they are all strings or null and at most half of them
    distinct (at most `CODED_MAX_VALUES`), else the list itself (an empty one too). No Python step per value: the
    distinct values by `dict.fromkeys`, the codes by `map` (a non-string value shows among the distinct ones)."""
    try:
        distinct = dict.fromkeys(values)
    except TypeError:  # unhashable values: not strings
        return values
    if (not values or 2 * len(distinct) > len(values) or len(distinct) > CODED_MAX_VALUES
            or any(value is not None and type(value) is not str for value in distinct)):
        return values
    if len(distinct) == 1:  # a constant field (all null, one colo...): every code 0
        return {"values": list(distinct), "codes": bytes(len(values))}
    code = {value: index for index, value in enumerate(distinct)}
    codes = map(code.__getitem__, values)
    data = bytes(codes) if len(code) <= 256 else np.fromiter(codes, _code_dtype(len(code)), len(values)).tobytes()
    return {"values": list(code), "codes": data}


def _code_dtype(distinct: int) -> str:
    return "u1" if distinct <= 256 else "<u2"


def field_values(name: str, field: Any, size: int, version: int) -> list[Any]:
    """A field of `other` or `d1_other` as its list of `size` values; raises `InvalidColumns` when it is neither a
    list of `size` values nor (version 3) a coded field of `size` codes within its dictionary."""
    if isinstance(field, list):
        if len(field) != size:
            raise InvalidColumns(f"`{name}` is not a list of {size} values")
        return field
    if version < 3 or not isinstance(field, dict) or set(field) != {"values", "codes"}:
        raise InvalidColumns(f"`{name}` is not a list of {size} values" +
                             (" nor a coded field ({values, codes})" if version >= 3 else ""))
    values, text = field["values"], field["codes"]
    if (not isinstance(values, list) or not 0 < len(values) <= CODED_MAX_VALUES
            or any(value is not None and type(value) is not str for value in values)):
        raise InvalidColumns(f"`{name}`: `values` is not a list of 1 to {CODED_MAX_VALUES} strings or nulls")
    try:
        codes = _array(f"{name}.codes", msgspec.convert(text, bytes), _code_dtype(len(values)))
    except msgspec.ValidationError:
        raise InvalidColumns(f"`{name}`: `codes` is not base64") from None
    if len(codes) != size:
        raise InvalidColumns(f"`{name}` has {len(codes)} codes, not {size}")
    _within(f"{name}.codes", codes, len(values))
    return [values[code] for code in codes.tolist()]


class WireColumns(msgspec.Struct, frozen=True, gc=False):
    """The `columns` of a columnar batch as decoded (the numeric columns still bytes)."""

    endpoints: list[tuple[str, str]]
    statuses: list[int | None]
    outcomes: list[str]
    endpoint: bytes
    event_time_ms: bytes
    watermark_ms: bytes
    status: bytes
    outcome: bytes
    duration_ms: bytes
    cpu_ms: bytes
    cpu_ms_int: bytes
    d1_record: bytes
    d1_write: bytes
    d1_connection_failed: bytes
    d1_duration_ms: bytes
    d1_rows_read: bytes
    d1_rows_written: bytes

    def to_columns(self) -> LogColumns:
        """The arrays, checked to fit together (lengths, indexes within their dictionaries, finite values)."""
        record = {name: _array(name, getattr(self, name), dtype) for name, dtype in RECORD_COLUMNS.items()}
        query = {name: _array(name, getattr(self, name), dtype) for name, dtype in D1_COLUMNS.items()}
        _same_length(record)
        _same_length(query)
        size = len(record["event_time_ms"])
        for name, dictionary in (("endpoint", self.endpoints), ("status", self.statuses),
                                 ("outcome", self.outcomes)):
            _within(name, record[name], len(dictionary))
        if len(query["d1_record"]):
            _check_queries(query, size)
        for name in ("duration_ms", "cpu_ms"):
            if np.isinf(record[name]).any():
                raise InvalidColumns(f"{name} holds an infinite value")
        d1 = D1Columns(query["d1_record"].astype(np.int64), query["d1_write"].astype(np.bool_),
                       query["d1_connection_failed"].astype(np.bool_), query["d1_duration_ms"],
                       query["d1_rows_read"], query["d1_rows_written"])
        return LogColumns(self.endpoints, self.statuses, self.outcomes, record["endpoint"], record["event_time_ms"],
                          record["watermark_ms"], record["status"], record["outcome"], record["duration_ms"],
                          record["cpu_ms"], d1)


def _array(name: str, data: bytes, dtype: str) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    if len(data) % width:
        raise InvalidColumns(f"{name} is {len(data)} bytes, not a multiple of {width}")
    return np.frombuffer(data, dtype=dtype)


def _same_length(columns: dict[str, np.ndarray]) -> None:
    lengths = {name: len(array) for name, array in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidColumns(f"columns of different lengths: {lengths}")


def _within(name: str, codes: np.ndarray, size: int) -> None:
    """Codes in 0..size-1: one reduction, a negative (signed) code being a large one read unsigned."""
    unsigned = codes if codes.dtype.kind == "u" else codes.view(f"u{codes.dtype.itemsize}")
    if len(codes) and int(unsigned.max()) >= size:
        raise InvalidColumns(f"{name} indexes outside 0..{size - 1}")


def _check_queries(query: dict[str, np.ndarray], size: int) -> None:
    """A batch's D1 columns (when it has queries): in record order, finite durations, no negative counts."""
    _within("d1_record", query["d1_record"], size)
    if (np.diff(query["d1_record"]) < 0).any():
        raise InvalidColumns("d1_record is not in record order")
    durations = query["d1_duration_ms"]
    if np.isinf(durations).any():
        raise InvalidColumns("d1_duration_ms holds an infinite value")
    if (durations < 0).any() or np.isnan(durations).any():
        raise InvalidColumns("d1_duration_ms holds a negative or missing value")
    if (query["d1_rows_read"] < 0).any() or (query["d1_rows_written"] < 0).any():
        raise InvalidColumns("d1 rows are negative")


def records_of_batch(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a decoded logs-topic value of any version, as `LogRecord` dicts in batch order."""
    version = value.get("v", 1)
    if version not in COLUMNAR_VERSIONS:
        records: list[dict[str, Any]] = value["records"]
        return records
    wire = msgspec.convert(value["columns"], WireColumns)  # base64 strings become bytes
    columns = wire.to_columns()
    d1 = columns.d1
    all_fields, other_fields = record_fields()
    if not isinstance(value.get("other"), dict) or not isinstance(value.get("d1_other"), dict):
        raise InvalidColumns("`other` or `d1_other` is not an object")
    other = {name: field_values(name, value["other"].get(name), len(columns), version) for name in other_fields}
    d1_other = {name: field_values(name, value["d1_other"].get(name), len(d1), version) for name in D1_OTHER_FIELDS}
    queries: list[list[dict[str, Any]]] = [[] for _ in range(len(columns))]
    for index, (record, write, duration, rows_read, rows_written) in enumerate(zip(
            d1.record.tolist(), d1.write.tolist(), d1.duration_ms.tolist(), d1.rows_read.tolist(),
            d1.rows_written.tolist(), strict=True)):
        queries[record].append({"database": d1_other["database"][index], "table": d1_other["table"][index],
                                "query_type": "write" if write else "read", "duration_ms": duration,
                                "rows_read": rows_read, "rows_written": rows_written,
                                "error_code": d1_other["error_code"][index]})
    rows = []
    cpu_int = np.frombuffer(wire.cpu_ms_int, dtype="u1").tolist()
    for index, (endpoint, stamp, mark, status, outcome, duration, cpu) in enumerate(zip(
            columns.endpoint.tolist(), columns.event_time_ms.tolist(), columns.watermark_ms.tolist(),
            columns.status.tolist(), columns.outcome.tolist(), columns.duration_ms.tolist(),
            columns.cpu_ms.tolist(), strict=True)):
        service, route = columns.endpoints[endpoint]
        pane = {"service": service, "endpoint": route, "event_time_ms": stamp, "status": columns.statuses[status],
                "outcome": columns.outcomes[outcome], "duration_ms": None if math.isnan(duration) else duration,
                "cpu_ms": None if math.isnan(cpu) else int(cpu) if cpu_int[index] else cpu, "d1": queries[index],
                "watermark_ms": None if mark == NO_MARK else mark}
        rest = {name: other[name][index] for name in other_fields}
        rows.append({name: pane[name] if name in pane else rest[name] for name in all_fields})
    return rows

