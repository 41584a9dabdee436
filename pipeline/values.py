"""Typed reads of decoded JSON values: a number as an int, a time in range, a string — or None."""

from __future__ import annotations

from typing import Any

from pipeline.timestamps import MAX_MS, MIN_MS

_INT64 = 2**63


def int_or_none(value: Any) -> int | None:
    """A number as an int; None for anything else, NaN, infinities and numbers beyond 64 bits."""
    if type(value) is int:  # the usual case first: no conversion needed
        return value if abs(value) < _INT64 else None
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < _INT64:
        return int(value)
    return None


def time_or_none(value: Any) -> int | None:
    ms = int_or_none(value)
    return ms if ms is not None and MIN_MS <= ms <= MAX_MS else None


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
