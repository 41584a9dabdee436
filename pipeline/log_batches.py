"""Decoding a logs-topic message (a `LogBatch`) for the panes: typed, in one pass, keeping only what they read.

The stream worker and `replay --topic` decode every message with `decode_pane_batch`, into the columns panes count
(`pipeline.log_columns`). A columnar batch (versions 2 and 3, what ingest writes: `pipeline.columnar_batches`) becomes
arrays straight from its base64 columns; msgspec skips the fields panes never read (`other`, `d1_other`) without
building them. A row batch (version 1, topics written by older versions) is decoded by msgspec into `PaneRecord`
structs (`pipeline.pane_records`: the record fields panes read, the rest skipped), which become columns as replay's
parsed dicts do.

A message that is not a valid batch raises `InvalidLogBatch` with the reason: the caller dead-letters it and goes
on, so a foreign or corrupted message costs only itself.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pipeline.columnar_batches import COLUMNAR_VERSIONS, InvalidColumns, WireColumns
from pipeline.log_columns import LogColumns, from_records
from pipeline.pane_records import PaneRecord
from pipeline.parsing import dead_letter
from pipeline.pieces import excerpt_of


class PaneBatch(msgspec.Struct, frozen=True, gc=False):
    """A `LogBatch` of either version as the panes read it (`source`, `seq`, `partition` are not needed there)."""

    producer: str
    watermark_ms: int | None
    records: list[PaneRecord] | None = None  # version 1
    columns: WireColumns | None = None  # versions 2 and 3
    final: bool = False
    v: Literal[1, 2, 3] = 1

    def pane_columns(self) -> LogColumns:
        """The records as columns; raises `InvalidLogBatch` when the columns do not fit together."""
        if self.columns is not None:
            try:
                return self.columns.to_columns()
            except InvalidColumns as error:
                raise InvalidLogBatch(f"not a LogBatch: {error}") from None
        assert self.records is not None  # decode_pane_batch checked
        return from_records(self.records)


class InvalidLogBatch(ValueError):
    """A logs-topic message that is not a `LogBatch`; the message says why."""


_DECODER = msgspec.json.Decoder(PaneBatch)


def decode_pane_batch(value: bytes | None) -> PaneBatch:
    if value is None:
        raise InvalidLogBatch("empty message (a tombstone)")
    try:
        batch = _DECODER.decode(value)
    except msgspec.ValidationError as error:
        raise InvalidLogBatch(f"not a LogBatch: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidLogBatch(f"not JSON: {error}") from None
    if batch.v in COLUMNAR_VERSIONS and batch.columns is None:
        raise InvalidLogBatch(f"not a LogBatch: version {batch.v} without `columns`")
    if batch.v not in COLUMNAR_VERSIONS and batch.records is None:
        raise InvalidLogBatch("not a LogBatch: Object missing required field `records`")
    return batch


def invalid_batch_letter(topic: str, partition: int, offset: int, value: bytes | None, reason: str) -> dict[str, Any]:
    """The dead letter of an invalid logs-topic message: `source` names the topic and partition, `offset` is the
    message's offset there."""
    return dead_letter(f"kafka:{topic}/{partition}", None, offset, "invalid_log_batch", reason,
                       excerpt_of(value or b""))
