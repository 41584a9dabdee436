"""Decoding metrics and alerts topic values for reports: a value that is not JSON or not the topic's schema costs
only itself (the caller counts and logs it)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from pydantic import BaseModel, ValidationError

from pipeline.columnar_batches import records_of_batch
from schemas.alerts import AlertEvent
from schemas.metrics import PaneSnapshot


def decode_value(raw: bytes | None, model: type[BaseModel]) -> dict[str, Any] | None:
    """The value as a dict when it is valid JSON of `model`'s shape, else None."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        model.model_validate(data)
    except (orjson.JSONDecodeError, ValidationError):
        return None
    return data if isinstance(data, dict) else None


def decode_snapshot(raw: bytes | None) -> dict[str, Any] | None:
    return decode_value(raw, PaneSnapshot)


def decode_alert(raw: bytes | None) -> dict[str, Any] | None:
    return decode_value(raw, AlertEvent)


_RECORD_KEYS = frozenset(("endpoint", "path", "status", "error_message"))


def decode_log_batch(raw: bytes | None) -> tuple[tuple[str, int, int], list[dict[str, Any]]] | None:
    """A logs-topic batch of either version as ((producer, partition, seq), records), with the record fields the
    report reads checked (a full LogRecord validation per record would cost more than the report); else None."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    producer, partition, seq = (data.get(key) for key in ("producer", "partition", "seq"))
    try:
        records = records_of_batch(data)
    except (KeyError, TypeError, ValueError, msgspec.ValidationError):  # InvalidColumns is a ValueError
        return None
    if not (isinstance(records, list) and isinstance(producer, str) and isinstance(partition, int)
            and isinstance(seq, int)):
        return None
    if not all(isinstance(record, dict) and record.keys() >= _RECORD_KEYS for record in records):
        return None
    return (producer, partition, seq), records
