"""The extraction fast path: every event it accepts gets exactly the record the general path gives (same keys in
the same order, same values, no field problems); everything else is left to the general path."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.extract import Extractor
from pipeline.fast_record import request_record
from pipeline.synthetic import DEMO_START_MS, TrafficMix, generate_events
from tests.captures import sample_events

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-tail-sample.json"


def generated(count: int, seed: int = 3) -> list[dict[str, Any]]:
    events = []
    for event in generate_events(seed, DEMO_START_MS, 10, 600, disorder_ms=2_000, mix=TrafficMix()):
        events.append(orjson.loads(orjson.dumps(event)))  # as the framer hands them over: plain JSON types
        if len(events) == count:
            break
    return events


def log_of(event: dict[str, Any]) -> dict[str, Any] | None:
    for entry in event.get("logs") or ():
        for arg in entry.get("message") or ():
            if isinstance(arg, str) and arg.startswith("{"):
                log: dict[str, Any] = orjson.loads(arg)
                return log
    return None


def with_log(event: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
    """The event with its FactoryLog string changed by `change` (None when it has none)."""
    log = log_of(event)
    if log is None:
        return None
    change(log)
    out = copy.deepcopy(event)
    for entry in out["logs"]:
        message = entry.get("message") or []
        for i, arg in enumerate(message):
            if isinstance(arg, str) and arg.startswith("{"):
                message[i] = orjson.dumps(log).decode()
                return out
    return None


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(log: dict[str, Any]) -> None:
        log[key] = value
    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(log: dict[str, Any]) -> None:
        log.pop(key, None)
    return change


LOG_CHANGES: list[Callable[[dict[str, Any]], None]] = [
    _set("status", "200"), _set("status", 42), _set("status", True), _set("status", 200.0), _drop("status"),
    _set("duration_ms", -1), _set("duration_ms", "12"), _set("duration_ms", 7), _drop("duration_ms"),
    _set("timestamp", 1_767_700_800), _set("timestamp", "yesterday"), _set("timestamp", "2026-01-06T12:00:00Z"),
    _set("timestamp", "2026-01-06T12:00:00.5+01:00"), _drop("timestamp"), _set("level", "warn"),
    _set("level", "loud"), _set("level", 3), _drop("level"), _set("service", 5), _set("service", ""),
    _drop("service"), _set("path", "/api/public/factory/templates/tpl_99?x=1#f"), _set("path", ""), _drop("path"),
    _set("method", None), _set("method", "post"), _set("method", []), _set("endpoint", "/a/123"),
    _drop("endpoint"), _set("tenant_id", ""), _drop("request_id"), _set("user_agent", 1),
    _set("error", {"message": "boom", "code": "E1"}), _set("error", {"message": 1}), _set("error", "boom"),
    _set("error", 5), _set("metadata", {"d1": {"query_type": "read", "duration_ms": 1, "rows_read": 2}}),
    _set("metadata", {"d1": [{"query_type": "scan"}]}), _set("metadata", {"d1": [{"query_type": "read",
                                                                                    "rows_read": -1}]}),
    _set("metadata", {"d1": [1]}), _set("metadata", {"d1": []}), _set("metadata", []),
    _set("metadata", {"d1": [{"query_type": "write", "duration_ms": 2.5, "rows_written": 1, "table": 7,
                              "error_code": "connection_failed"}]}),
]


def event_changes(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Variants of a whole event: other shapes of logs, request, times and runtime fields."""
    out = []
    for key, value in (("wallTime", "80"), ("wallTime", 1.5), ("cpuTime", None), ("scriptName", 7),
                       ("scriptName", ""), ("outcome", 1), ("truncated", "yes"), ("eventTimestamp", None),
                       ("exceptions", [{"name": "Error", "message": "x"}]), ("exceptions", ["x"]),
                       ("exceptions", {}), ("logs", []), ("logs", {}), ("logs", [1]), ("logs", [{"message": "x"}]),
                       ("event", None), ("event", {"request": "x"}), ("event", {"cron": "* * * * *"})):
        variant = copy.deepcopy(event)
        variant[key] = value
        out.append(variant)
    variant = copy.deepcopy(event)
    variant.pop("eventTimestamp", None)
    out.append(variant)
    for change in ("no_url", "headers", "cf", "response", "second_log", "object_arg", "bad_json"):
        variant = copy.deepcopy(event)
        request = (variant.get("event") or {}).get("request")
        if not isinstance(request, dict):
            continue
        if change == "no_url":
            request.pop("url", None)
        elif change == "headers":
            request["headers"] = []
        elif change == "cf":
            request["cf"] = {"colo": 5, "country": ""}
        elif change == "response":
            variant["event"]["response"] = {"status": 503.0}
        elif change == "second_log" and log_of(event) is not None:
            variant["logs"].append({"message": [orjson.dumps(log_of(event)).decode()]})
        elif change == "object_arg" and log_of(event) is not None:
            variant["logs"].append({"message": [log_of(event)]})
        elif change == "bad_json":
            variant["logs"].append({"message": ["{not json", 3, None]})
        out.append(variant)
    return out


def check(event: dict[str, Any], extractor: Extractor) -> bool:
    """Whether the fast path took the event; when it did, its record is the general path's, key for key."""
    fast = request_record(extractor.routes, copy.deepcopy(event))
    general = extractor.extract(copy.deepcopy(event))
    if fast is None:
        return False
    assert general.record is not None and not general.problems, event
    assert list(fast.items()) == list(general.record.items())
    assert orjson.dumps(fast) == orjson.dumps(general.record)
    return True


def test_fast_path_takes_nearly_every_generated_event_and_agrees() -> None:
    extractor = Extractor()
    events = generated(3000)
    taken = sum(check(event, extractor) for event in events)
    assert taken >= 0.9 * len(events)


def test_fast_path_takes_the_sample_capture_and_agrees() -> None:
    extractor = Extractor()
    events = sample_events(SAMPLE_PATH)
    assert sum(check(event, extractor) for event in events) >= 10


@pytest.mark.parametrize("seed", range(4))
def test_changed_fields_give_the_general_paths_record_or_fall_back(seed: int) -> None:
    extractor = Extractor()
    rng = random.Random(seed)
    events = [event for event in generated(400, seed) if log_of(event) is not None]
    fell_back = taken = 0
    for event in rng.sample(events, 40):
        variants = [with_log(event, change) for change in LOG_CHANGES] + event_changes(event)
        for variant in variants:
            if variant is None:
                continue
            if check(variant, extractor):
                taken += 1
            else:
                fell_back += 1
    assert taken and fell_back  # both sides exercised
