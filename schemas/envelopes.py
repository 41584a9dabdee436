"""Versioned envelopes: the value of every message tailwatch puts on Kafka."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.record import LogRecord


class LogBatch(BaseModel):
    """The value on the logs topic written by version 1 (rows): a batch of records that all belong to `partition`.
    Ingest now writes `ColumnarLogBatch`; workers and `replay --topic` read both.

    A batch with no records is a watermark heartbeat: it advances event time on a partition with no traffic.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    producer: str = Field(description="id of the ingest process that produced the batch")
    source: str = Field(description="the input the records came from")
    seq: int = Field(ge=0, description="the producer's batch counter for this partition")
    partition: int = Field(ge=0)
    watermark_ms: int | None = Field(
        description="the producer's event-time watermark when it sent the batch: max event time seen − lateness"
    )
    final: bool = Field(default=False, description="the producer's input has ended: it sends nothing more")
    records: list[LogRecord]


def _column(description: str) -> Any:
    return Field(description=description, json_schema_extra={"contentEncoding": "base64"})


class LogColumns(BaseModel):
    """A columnar batch's records as columns (`pipeline/columnar_batches.py`): each numeric column is the base64 of
    its values' little-endian bytes, one value per record (or per D1 query for the `d1_` columns)."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[tuple[str, str]] = Field(description="the batch's (service, endpoint) pairs")
    statuses: list[int | None] = Field(description="the batch's HTTP statuses (null: no response)")
    outcomes: list[str] = Field(description="the batch's runtime outcomes")
    endpoint: str = _column("int32: the record's index into `endpoints`")
    event_time_ms: str = _column("int64: event time, epoch ms")
    watermark_ms: str = _column("int64: the ingest watermark stamped on the record; -2**63 when none")
    status: str = _column("int32: index into `statuses`")
    outcome: str = _column("int32: index into `outcomes`")
    duration_ms: str = _column("float64: the record's duration; NaN when none")
    cpu_ms: str = _column("float64: the record's CPU time; NaN when none")
    cpu_ms_int: str = _column("uint8: 1 when the record's CPU time was a JSON integer")
    d1_record: str = _column("int32: the index of the query's record (queries in record order)")
    d1_write: str = _column("uint8: 1 for a write query, 0 for a read")
    d1_connection_failed: str = _column("uint8: 1 when the query's error_code is connection_failed")
    d1_duration_ms: str = _column("float64: the query's duration")
    d1_rows_read: str = _column("int64")
    d1_rows_written: str = _column("int64")


class CodedField(BaseModel):
    """A dictionary-coded field of a version 3 batch's `other` or `d1_other`: each value is `values[code]`."""

    model_config = ConfigDict(extra="forbid")

    values: list[str | None] = Field(min_length=1, max_length=1 << 16,
                                     description="the field's distinct values, in first-seen order")
    codes: str = _column("each record's (or query's) index into `values`: uint8 when `values` has at most 256 "
                         "entries, else little-endian uint16")


class ColumnarLogBatch(BaseModel):
    """The value on the logs topic written by ingest since version 2: a `LogBatch` whose records are columns.

    `columns` holds what panes and rules read; `other` every other `LogRecord` field (a value per record),
    `d1_other` the D1 queries' `database`, `table` and `error_code` (a value per query). Each such field is a list
    of its values or, from version 3 on (what ingest writes), a `CodedField` when its values are all strings or
    null and at most half of them distinct. Workers read every version: topics written by older versions keep
    their batches.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[2, 3] = Field(description="required (a batch without `v` is a version 1 row batch): 3 is what ingest "
                             "writes; coded fields only in version 3")
    producer: str = Field(description="id of the ingest process that produced the batch")
    source: str = Field(description="the input the records came from")
    seq: int = Field(ge=0, description="the producer's batch counter for this partition")
    partition: int = Field(ge=0)
    watermark_ms: int | None = Field(
        description="the producer's event-time watermark when it sent the batch: max event time seen − lateness"
    )
    final: bool = Field(default=False, description="the producer's input has ended: it sends nothing more")
    columns: LogColumns
    other: dict[str, list[Any] | CodedField] = Field(
        description="the other LogRecord fields: field name -> a value per record, or (version 3) coded")
    d1_other: dict[str, list[Any] | CodedField] = Field(
        description="`database`, `table`, `error_code` -> a value per D1 query, or (version 3) coded")

    @model_validator(mode="after")
    def _coded_from_version_3(self) -> ColumnarLogBatch:
        if self.v < 3 and any(isinstance(field, CodedField)
                              for field in (*self.other.values(), *self.d1_other.values())):
            raise ValueError("coded fields are version 3: a version 2 batch has lists only")
        return self
