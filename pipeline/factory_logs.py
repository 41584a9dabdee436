"""Finding the app's structured `FactoryLog` records inside a tail event's `logs[].message[]`.

A message argument is a FactoryLog when it is a JSON object — a string from `console.log(JSON.stringify(...))`
or an object logged as is — that has at least four of the spec's ten required keys. Its fields are checked one
by one: a bad field is dropped and reported, the rest of the log is still used.

D1 convention: `metadata.d1` is one object or a list of them, each
`{database, table, query_type: "read"|"write", duration_ms, rows_read, rows_written, error_code?}`;
`error_code: "connection_failed"` marks a D1 connection failure.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from pipeline.pieces import has_surrogate_escape, repair_surrogate_escapes
from pipeline.timestamps import iso_to_ms, number_to_ms
from pipeline.values import d1_fact, level_or_none, text_or_none

REQUIRED_KEYS = frozenset(
    ("timestamp", "level", "service", "endpoint", "request_id", "tenant_id", "method", "path", "status",
     "duration_ms")
)
MIN_SHARED_KEYS = 4
_STR_FIELDS = ("service", "endpoint", "request_id", "tenant_id", "method", "path", "user_agent")


def is_factory_log(value: dict[str, Any]) -> bool:
    return len(REQUIRED_KEYS.intersection(value)) >= MIN_SHARED_KEYS  # one C-level pass over the keys


def factory_logs_in(logs: Any, repaired: list[str] | None = None) -> list[dict[str, Any]]:
    """Every FactoryLog-shaped object among the console arguments of `logs`, in order. A string whose only fault is
    a lone UTF-16 surrogate escape (an emoji cut in half by the app) is read with U+FFFD in its place, and noted in
    `repaired`."""
    found: list[dict[str, Any]] = []
    if not isinstance(logs, list):
        return found
    for entry in logs:
        if not isinstance(entry, dict):
            continue
        message = entry.get("message")
        if not isinstance(message, list):
            continue
        for arg in message:
            value = arg
            if isinstance(arg, str):
                if not arg.startswith("{"):
                    continue
                try:
                    value = orjson.loads(arg)
                except orjson.JSONDecodeError:
                    if not has_surrogate_escape(arg):
                        continue
                    try:
                        value = orjson.loads(repair_surrogate_escapes(arg.encode("utf-8", "surrogatepass")))
                    except orjson.JSONDecodeError:
                        continue
                    if repaired is not None:
                        repaired.append("lone surrogate escape in a FactoryLog string")
            if isinstance(value, dict) and is_factory_log(value):
                found.append(value)
    return found


def _is_number(value: Any) -> bool:
    """A finite JSON number (not a bool, NaN or infinity)."""
    kind = type(value)
    return (kind is int or kind is float) and -math.inf < value < math.inf


def clean_factory_fields(log: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The usable fields of one FactoryLog, typed; each bad field is left out and described in `problems`."""
    out = _clean_well_formed(log, problems)
    if out is None:
        out = _clean_field_by_field(log, problems)
    return out


def _clean_well_formed(log: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """The fast path for the common case: every field present has its expected exact type and a valid value.

    Checks types with `type(x) is ...` and builds the result in one go; returns None at the first field that is
    off (without touching `problems`), so that `_clean_field_by_field` reports the problems exactly as always.
    Gives the same result as the field-by-field path for every log it accepts.
    """
    get = log.get
    out: dict[str, Any] = {}
    for key in _STR_FIELDS:
        value = get(key)
        if value is not None:
            if type(value) is not str:
                return None
            out[key] = value
    stamp = get("timestamp")
    if stamp is not None:
        if type(stamp) is not str:
            return None
        try:
            out["event_time_ms"] = iso_to_ms(stamp)
        except (ValueError, OverflowError):
            return None
    level = get("level")
    if level is not None:
        level = level_or_none(level)
        if level is None:
            return None
        out["level"] = level
    status = get("status")
    if status is not None:
        if not (type(status) is int and 100 <= status <= 999):
            return None
        out["status"] = status
    duration = get("duration_ms")
    if duration is not None:
        kind = type(duration)
        if not ((kind is float or kind is int) and 0 <= duration < math.inf):
            return None
        out["duration_ms"] = float(duration)
    error = get("error")
    if error is not None:
        if type(error) is dict:
            message, code = error.get("message"), error.get("code")
            if message is not None:  # an object or a number: kept as compact JSON
                out["error_message"] = text_or_none(message)
            if isinstance(code, str):
                out["error_code"] = code
        elif type(error) is str:
            out["error_message"] = error
        else:
            return None
    metadata = get("metadata")
    if isinstance(metadata, dict) and "d1" in metadata:  # last: its problems are the only ones, as field by field
        out["d1"] = d1_facts(metadata["d1"], problems)
    return out


def _clean_field_by_field(log: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The general path: each field checked on its own; a bad one is left out and described in `problems`."""
    out: dict[str, Any] = {}
    get = log.get
    for key in _STR_FIELDS:
        value = get(key)
        if value is None:
            continue
        if type(value) is str or isinstance(value, str):
            out[key] = value
        else:
            problems.append(f"{key}: expected a string, got {type(value).__name__}")
    stamp = log.get("timestamp")
    if stamp is not None:
        try:
            if isinstance(stamp, str):
                out["event_time_ms"] = iso_to_ms(stamp)
            elif _is_number(stamp):
                out["event_time_ms"] = number_to_ms(stamp)
            else:
                raise ValueError(type(stamp).__name__)
        except (ValueError, OverflowError):
            problems.append(f"timestamp: not an ISO 8601 time: {str(stamp)[:40]!r}")
    level = log.get("level")
    if level is not None:
        if level_or_none(level) is not None:
            out["level"] = level.upper()
        else:
            problems.append(f"level: not one of INFO, WARN, ERROR, DEBUG: {str(level)[:20]!r}")
    status = log.get("status")
    if status is not None:
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 999:
            out["status"] = status
        else:
            problems.append(f"status: not an HTTP status code: {str(status)[:20]!r}")
    duration = log.get("duration_ms")
    if duration is not None:
        if _is_number(duration) and duration >= 0:
            out["duration_ms"] = float(duration)
        else:
            problems.append(f"duration_ms: not a non-negative number: {str(duration)[:20]!r}")
    error = log.get("error")
    if isinstance(error, dict):
        if error.get("message") is not None:  # an object or a number: kept as compact JSON
            out["error_message"] = text_or_none(error["message"])
        if isinstance(error.get("code"), str):
            out["error_code"] = error["code"]
    elif isinstance(error, str):  # apps often log `error: String(e)`; the spec's object form is preferred
        out["error_message"] = error
    elif error is not None:
        problems.append("error: expected an object or a string")
    metadata = log.get("metadata")
    if isinstance(metadata, dict) and "d1" in metadata:
        out["d1"] = d1_facts(metadata["d1"], problems)
    return out


def d1_facts(raw: Any, problems: list[str]) -> list[dict[str, Any]]:
    """Validated D1 query facts from `metadata.d1`."""
    items = raw if isinstance(raw, list) else [raw]
    facts: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"metadata.d1[{index}]: expected an object")
            continue
        get = item.get
        query_type = get("query_type")
        duration = get("duration_ms", 0)
        rows_read = get("rows_read", 0)
        rows_written = get("rows_written", 0)
        error_code = get("error_code")
        if query_type != "read" and query_type != "write":  # noqa: PLR1714 - faster than a tuple here
            problems.append(f"metadata.d1[{index}].query_type: must be 'read' or 'write'")
            continue
        if not (_is_number(duration) and duration >= 0):
            problems.append(f"metadata.d1[{index}].duration_ms: not a non-negative number")
            continue
        if not (type(rows_read) is int and rows_read >= 0 and type(rows_written) is int and rows_written >= 0):
            problems.append(f"metadata.d1[{index}].rows_read/rows_written: not non-negative integers")
            continue
        facts.append(d1_fact(query_type, duration, rows_read, rows_written, item.get("database"),
                             item.get("table"), error_code))
    return facts
