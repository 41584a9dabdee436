"""Decoding a logs-topic message (a `LogBatch`) for the panes: typed, in one pass, keeping only what they read.

The stream worker and `replay --topic` decode every message with `decode_pane_batch`. msgspec checks the types in C
and skips the record fields the panes never read (method, path, colo, error texts, …) without building them, which
costs about half of decoding the whole batch into dicts with orjson. Records become `PaneRecord` structs
(`pipeline.pane_records`), which the pane code reads as it reads replay's parsed dicts. Numbers keep their JSON
type (`1` an int, `1.0` a float), as with orjson, so live and replay give the same snapshots.

A message that is not a valid batch raises `InvalidLogBatch` with the reason: the caller dead-letters it and goes
on, so a foreign or corrupted message costs only itself.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pipeline.pane_records import PaneRecord
from pipeline.parsing import dead_letter
from pipeline.pieces import excerpt_of


class PaneBatch(msgspec.Struct, frozen=True, gc=False):
    """A `LogBatch` as the panes read it (`source`, `seq` and `partition` are not needed there)."""

    producer: str
    watermark_ms: int | None
    records: list[PaneRecord]
    final: bool = False
    v: Literal[1] = 1


class InvalidLogBatch(ValueError):
    """A logs-topic message that is not a `LogBatch`; the message says why."""


_DECODER = msgspec.json.Decoder(PaneBatch)


def decode_pane_batch(value: bytes | None) -> PaneBatch:
    if value is None:
        raise InvalidLogBatch("empty message (a tombstone)")
    try:
        return _DECODER.decode(value)
    except msgspec.ValidationError as error:
        raise InvalidLogBatch(f"not a LogBatch: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidLogBatch(f"not JSON: {error}") from None


def invalid_batch_letter(topic: str, partition: int, offset: int, value: bytes | None, reason: str) -> dict[str, Any]:
    """The dead letter of an invalid logs-topic message: `source` names the topic and partition, `offset` is the
    message's offset there."""
    return dead_letter(f"kafka:{topic}/{partition}", None, offset, "invalid_log_batch", reason,
                       excerpt_of(value or b""))
