"""Decoding metrics and alerts topic values for reports: a value that is not JSON or not the topic's schema costs
only itself (the caller counts and logs it). The metrics topic also carries the service stage's records (a `kind`:
`progress`, `held_alert`): a report skips them, and they are not invalid."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from pydantic import BaseModel, ValidationError

from pipeline.columnar_batches import records_of_batch
from schemas.alerts import AlertEvent
from schemas.metrics import PaneSnapshot, ServicePaneSnapshot


def _loads(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _valid(data: Any, model: type[BaseModel]) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    try:
        model.model_validate(data)
    except ValidationError:
        return None
    return data


def decode_value(raw: bytes | None, model: type[BaseModel]) -> dict[str, Any] | None:
    """The value as a dict when it is valid JSON of `model`'s shape, else None."""
    return _valid(_loads(raw), model)


def decode_endpoint_snapshot(raw: bytes | None) -> dict[str, Any] | str | None:
    """A `<prefix>.metrics` value for a report: a `PaneSnapshot` dict; the `kind` of a record for the service stage
    (a str: `progress`, `held_alert`, or a kind added later), which a report skips as the schema tells subscribers
    to; None when it is neither (invalid). Stage 2 checks those records itself (`pipeline.service
    .decode_metrics_value`, which also re-dumps each value: three times this one's cost per snapshot)."""
    data = _loads(raw)
    if isinstance(data, dict) and isinstance(data.get("kind"), str):
        return str(data["kind"])
    return _valid(data, PaneSnapshot)


def decode_service_snapshot(raw: bytes | None) -> dict[str, Any] | None:
    """A `<prefix>.metrics.service` value (`ServicePaneSnapshot`) as a dict, else None."""
    return decode_value(raw, ServicePaneSnapshot)


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
