"""TraceItems written as Workers Trace Events Logpush lines (the inverse of `pipeline.logpush.trace_item`), for
tests and bench: only the dataset's fields, PascalCase as Logpush writes them."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from pipeline.logpush import KEEP_KEYS_UNDER, SPECIAL_KEYS, TOP_FIELDS

TO_LOGPUSH = {value: key for key, value in TOP_FIELDS.items()}
PASCAL_SPECIAL = {value: key for key, value in SPECIAL_KEYS.items() if key != "CPUTimeMs"}


def pascal(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            name = PASCAL_SPECIAL.get(key, key[:1].upper() + key[1:])
            out[name] = inner if key in KEEP_KEYS_UNDER else pascal(inner)
        return out
    if isinstance(value, list):
        return [pascal(item) for item in value]
    return value


def logpush_line(item: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {}
    for key, value in item.items():
        name = TO_LOGPUSH.get(key)
        if name is None:
            continue  # not a dataset field (truncated, executionModel, diagnosticsChannelEvents)
        line[name] = pascal(value) if key in ("event", "logs", "exceptions", "scriptVersion") else value
    line["EventType"] = "fetch" if "request" in item.get("event", {}) else "scheduled"
    return line


def logpush_body(items: list[dict[str, Any]]) -> bytes:
    """A gzip NDJSON body as Logpush's HTTP destination receives it."""
    return gzip.compress(b"".join(orjson.dumps(logpush_line(item)) + b"\n" for item in items), compresslevel=1)
