"""Workers Trace Events Logpush lines → the `TraceItem` shape the reader takes (what wrangler prints).

Logpush's HTTP destination receives gzip NDJSON, one `workers_trace_events` record a line, with the fields of
Cloudflare's dataset reference: `CPUTimeMs`, `DispatchNamespace`, `Entrypoint`, `Event`, `EventTimestampMs`,
`EventType`, `Exceptions`, `Logs`, `Outcome`, `ScriptName`, `ScriptTags`, `ScriptVersion`, `WallTimeMs`. Each is
renamed to the TraceItem key; inside `Event`, `Logs` and `Exceptions` the PascalCase keys become camelCase
(`RayID` → `rayId`, `URL` → `url`, `TimestampMs` → `timestamp`), header names are kept as they are. A field the
job did not select is simply absent, as in a TraceItem without it.

When a job is created Logpush sends a test upload (`{"content":"tests"}`, gzipped) and, for ownership, a body with
a challenge token: both are recognised (`is_validation_line`) and answered without producing an event.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pipeline.pieces import loads_json

TOP_FIELDS = {
    "CPUTimeMs": "cpuTime",
    "DispatchNamespace": "dispatchNamespace",
    "Entrypoint": "entrypoint",
    "Event": "event",
    "EventTimestampMs": "eventTimestamp",
    "Exceptions": "exceptions",
    "Logs": "logs",
    "Outcome": "outcome",
    "ScriptName": "scriptName",
    "ScriptTags": "scriptTags",
    "ScriptVersion": "scriptVersion",
    "WallTimeMs": "wallTime",
}
DROPPED_FIELDS = frozenset({"EventType"})  # a TraceItem says what ran by the shape of `event`
ABSENT_WHEN_EMPTY = frozenset({"Entrypoint", "DispatchNamespace"})  # Logpush writes "" where a TraceItem has none
SPECIAL_KEYS = {"RayID": "rayId", "URL": "url", "ID": "id", "TimestampMs": "timestamp", "CPUTimeMs": "cpuTime"}
KEEP_KEYS_UNDER = frozenset({"headers", "cf"})  # header names and cf properties are data, not field names
CHALLENGE_LINE = re.compile(rb"[A-Za-z0-9+/=._:-]{16,4096}")


def camel_key(key: str) -> str:
    if key in SPECIAL_KEYS:
        return SPECIAL_KEYS[key]
    return key[:1].lower() + key[1:] if key[:1].isupper() else key


def camel(value: Any) -> Any:
    """PascalCase keys to camelCase, all the way down, except under `headers` and `cf`."""
    if isinstance(value, dict):
        return {(new := camel_key(key)): value_ if new in KEEP_KEYS_UNDER else camel(value_)
                for key, value_ in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def trace_item(line: dict[str, Any]) -> dict[str, Any]:
    """One Logpush record as a TraceItem. Keys that are not dataset fields are kept as they are (the reader ignores
    what it does not know)."""
    item: dict[str, Any] = {}
    for key, value in line.items():
        if key in DROPPED_FIELDS or (key in ABSENT_WHEN_EMPTY and value in ("", None)):
            continue
        name = TOP_FIELDS.get(key)
        if name is None:
            item[key] = value
        elif name in ("event", "logs", "exceptions", "scriptVersion"):
            item[name] = camel(value)
        else:
            item[name] = value
    return item


def is_validation_line(line: Any) -> bool:
    """Logpush's test upload when a job is created: `{"content":"tests"}`."""
    return isinstance(line, dict) and set(line) == {"content"} and line["content"] == "tests"


def trace_items_of_ndjson(body: bytes) -> list[Any]:
    """The TraceItems of a Logpush body. Validation lines give nothing; a body that is one challenge token gives
    nothing; a line that is not JSON raises ValueError (the whole body is refused: Logpush retries it whole)."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) == 1 and CHALLENGE_LINE.fullmatch(lines[0].strip()):
        return []
    items: list[Any] = []
    for number, raw in enumerate(lines, 1):
        try:
            line = loads_json(raw)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON: {error}") from None
        if is_validation_line(line):
            continue
        items.append(trace_item(line) if isinstance(line, dict) else line)
    return items
