"""Typed reads of decoded JSON values: a number as an int, a time in range, a string — or None."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.timestamps import MAX_MS, MIN_MS

_INT64 = 2**63


def int_or_none(value: Any) -> int | None:
    """A number as an int; None for anything else, NaN, infinities and numbers beyond 64 bits."""
    if type(value) is int:  # the usual case first: no conversion needed
        return value if abs(value) < _INT64 else None
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < _INT64:
        return int(value)
    return None


def number_or_none(value: Any) -> int | float | None:
    """A number as it came (`12` an int, `12.75` a float); None for anything else, NaN, infinities and
    numbers beyond 64 bits. The runtime's `wallTime`/`cpuTime` can be fractional."""
    kind = type(value)
    if kind is int or kind is float:
        return value if abs(value) < _INT64 else None  # NaN compares false: None
    return None


def text_or_none(value: Any) -> str | None:
    """A message as text: a string as is, None as None, anything else (an exception whose `message` is an object)
    as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:  # not JSON-shaped (only objects built in Python, never a decoded event)
        return str(value)


def time_or_none(value: Any) -> int | None:
    ms = int_or_none(value)
    return ms if ms is not None and MIN_MS <= ms <= MAX_MS else None


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


LEVELS = frozenset(("INFO", "WARN", "ERROR", "DEBUG"))


def level_or_none(value: Any) -> str | None:
    """A FactoryLog `level` in upper case (`info` → `INFO`); None when it is not one of the spec's four."""
    if type(value) is not str:
        return None
    if value in LEVELS:
        return value
    upper = value.upper()
    return upper if upper in LEVELS else None


def d1_fact(query_type: str, duration_ms: float, rows_read: int, rows_written: int, database: Any, table: Any,
            error_code: Any) -> dict[str, Any]:
    """One checked `metadata.d1` entry as the record carries it (names and codes that are not strings: None)."""
    return {
        "database": database if isinstance(database, str) else None,
        "table": table if isinstance(table, str) else None,
        "query_type": query_type,
        "duration_ms": float(duration_ms),
        "rows_read": rows_read,
        "rows_written": rows_written,
        "error_code": error_code if isinstance(error_code, str) else None,
    }
