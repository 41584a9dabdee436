"""Test captures made from the real-layout sample: more traffic, over several minutes, arriving out of order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson

from pipeline.timestamps import iso_to_ms, ms_to_iso


def sample_events(sample: Path) -> list[dict[str, Any]]:
    text = sample.read_text()
    decoder = json.JSONDecoder()
    events, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return events
        event, i = decoder.raw_decode(text, i)
        events.append(event)


def shifted(event: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    """The event moved `shift_ms` later, FactoryLog timestamps inside its log strings included."""
    out = json.loads(json.dumps(event))
    if out.get("eventTimestamp") is not None:
        out["eventTimestamp"] += shift_ms
    for log in out.get("logs", []):
        if log.get("timestamp") is not None:
            log["timestamp"] += shift_ms
        for i, arg in enumerate(log.get("message", [])):
            if isinstance(arg, str) and arg.startswith("{"):
                inner = json.loads(arg)
                if isinstance(inner.get("timestamp"), str):
                    inner["timestamp"] = ms_to_iso(iso_to_ms(inner["timestamp"]) + shift_ms)
                    log["message"][i] = json.dumps(inner, separators=(",", ":"))
    return out


def event_time(event: dict[str, Any]) -> int:
    for log in event.get("logs", []):
        for arg in log.get("message", []):
            if isinstance(arg, str) and arg.startswith("{"):
                inner = json.loads(arg)
                if isinstance(inner.get("timestamp"), str):
                    return iso_to_ms(inner["timestamp"])
    return int(event["eventTimestamp"])


def disordered_capture(sample: Path, path: Path, copies: int = 60, step_ms: int = 7_000,
                       disorder_ms: int = 25_000, seed: int = 5) -> Path:
    """`copies` shifted copies of the sample's events, in an arrival order that runs up to `disorder_ms` late
    (some beyond the default 10 s lateness), printed in wrangler's 4-space layout."""
    rng = random.Random(seed)
    base = sample_events(sample)
    events = [shifted(event, copy * step_ms) for copy in range(copies) for event in base]
    arrival = sorted(events, key=lambda e: event_time(e) + rng.randrange(disorder_ms))
    with path.open("wb") as out:
        for event in arrival:
            out.write(json.dumps(event, indent=4, ensure_ascii=False).encode() + b"\n")
    return path


def canonical(snapshot: dict[str, Any]) -> bytes:
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)
