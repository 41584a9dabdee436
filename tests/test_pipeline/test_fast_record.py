"""The extraction fast path: every event it accepts gets exactly the record the general path gives (same keys in
the same order, same values, no field problems); everything else is left to the general path."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import Extractor
from pipeline.factory_logs import REQUIRED_KEYS
from pipeline.fast_log import FactoryLog
from pipeline.fast_record import record_of_json, request_record
from pipeline.pieces import decode_object
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
                       ("event", None), ("event", {"request": "x"}), ("event", {"cron": "* * * * *"}),
                       ("cpuTime", 0.25), ("wallTime", 1e300), ("cpuTime", float("nan")),
                       ("exceptions", [{"name": "Error", "message": {"code": 1}}]),
                       ("entrypoint", "ChatRoom"), ("entrypoint", "default"), ("entrypoint", 7),
                       ("executionModel", "durableObject"), ("executionModel", None), ("executionModel", 1)):
        variant = copy.deepcopy(event)
        variant[key] = value
        out.append(variant)
    variant = copy.deepcopy(event)
    variant.pop("eventTimestamp", None)
    out.append(variant)
    variant = copy.deepcopy(event)  # a Durable Object invocation of the same request
    variant.update(entrypoint="ChatRoom", executionModel="durableObject", durableObjectId="a" * 64)
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
    """Whether the fast path took the event; when it did, its record is the general path's, key for key. The same
    holds for the event's JSON text, pretty (as wrangler prints it) and compact: read by `record_of_json`, it gives
    the general path's record of orjson's decode of that text, or declines."""
    fast = request_record(extractor.routes, copy.deepcopy(event))
    general = extractor.extract(copy.deepcopy(event))
    for text in (json.dumps(event, indent=4, ensure_ascii=False), json.dumps(event, separators=(",", ":"))):
        check_json(text.encode("utf-8", "surrogatepass"), extractor)
    if fast is None:
        return False
    assert general.record is not None and not general.problems, event
    assert list(fast.items()) == list(general.record.items())
    assert orjson.dumps(fast) == orjson.dumps(general.record)
    return True


def check_json(raw: bytes, extractor: Extractor) -> bool:
    """Whether `record_of_json` took the text; when it did, the general path reads the text (orjson, no repair) to
    the same record, key for key."""
    ascii_text = raw.isascii()
    fast = record_of_json(extractor.routes, memoryview(raw), ascii_text)
    assert orjson.dumps(record_of_json(extractor.routes, raw)) == orjson.dumps(fast)  # the check on its own
    if fast is None:
        return False
    obj, repaired, error = decode_object(raw)
    assert obj is not None and not repaired, (raw[:300], error)
    general = extractor.extract(obj)
    assert general.record is not None and not general.problems, raw[:300]
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


# -- the typed FactoryLog decoder (msgspec, pipeline/fast_log.py): where its coercions differ from orjson ----------

def with_log_text(event: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The event with its FactoryLog string replaced by `text` as is (duplicate keys, literals orjson would change)."""
    out = copy.deepcopy(event)
    for entry in out.get("logs") or ():
        message = entry.get("message") or []
        for i, arg in enumerate(message):
            if isinstance(arg, str) and arg.startswith("{"):
                message[i] = text
                return out
    return None


def _raw(log: dict[str, Any], key: str, literal: str) -> str:
    """The log's JSON text with `key` set to the JSON `literal` (appended last: a duplicate when it is there)."""
    body = orjson.dumps(log).decode()
    return body[:-1] + ("," if len(log) else "") + f'"{key}":{literal}' + "}"


LITERALS = [
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
    "123456789012345678901234567890", "-9223372036854775809", "1e400", "-1e400", "1e-400", "-0", "-0.0", "0.0",
    "5e2", "5E+2", "2.5e-3", "200.0", "2e2", "true", "false", "null", '"200"', "[]", "{}", '{"a":1}', "[200]",
    '"\\u0041\\u00e9"', '"\\ud83d\\ude00"', '"INFO"', '"warn"', '"2026-01-06T12:00:00.5+01:00"', "404", "99",
    "1000", "0.5", "1.7976931348623157e308", "4.9e-324", "0.30000000000000004", "12.340000000000001",
]
RAW_KEYS = ["status", "duration_ms", "timestamp", "level", "service", "user_agent", "error", "metadata", "extra"]
D1_KEYS = ["duration_ms", "rows_read", "rows_written", "query_type", "table", "database", "error_code", "extra"]


def raw_log_variants(event: dict[str, Any]) -> list[dict[str, Any]]:
    log = log_of(event)
    if log is None:
        return []
    texts = [_raw(log, key, literal) for key in RAW_KEYS for literal in LITERALS]
    for key in D1_KEYS:
        for literal in LITERALS:
            item = '{"query_type":"read","rows_read":1,' + f'"{key}":{literal}' + "}"
            texts.append(_raw({k: v for k, v in log.items() if k != "metadata"}, "metadata", '{"d1":' + item + "}"))
            texts.append(_raw({k: v for k, v in log.items() if k != "metadata"}, "metadata",
                              '{"d1":[' + item + "," + item + "]}"))
    texts += [
        _raw(log, "status", '"x"'),  # a duplicate key: orjson keeps the last value
        orjson.dumps(log).decode().replace('"status":', '"status":"x","status":', 1),
        orjson.dumps(log).decode().replace('"status":', '"status":500,"status":', 1),
        _raw({k: v for k, v in log.items() if k not in ("status", "path", "method", "level", "service", "endpoint",
                                                         "tenant_id")}, "extra", "1"),  # three required keys
        orjson.dumps({k: v for k, v in log.items() if k != "request_id"}).decode(),  # nine required keys
        orjson.dumps(log).decode() + " ", " " + orjson.dumps(log).decode(), orjson.dumps(log).decode() + "x",
        orjson.dumps(log).decode()[:-1], '{"status":200' + ',"a":[' * 600 + "]" * 600 + "}",
        _raw(log, "extra", "[" * 1100 + "]" * 1100), _raw(log, "service", '"\\ud800"'),
        _raw(log, "service", '"\\udc00"'), _raw(log, "service", '"\\x41"'), _raw(log, "service", '"\x01"'),
        _raw(log, "service", "NaN"), _raw(log, "duration_ms", "Infinity"), _raw(log, "status", "0200"),
        _raw(log, "error", '{"message":"boom","code":7}'), _raw(log, "error", '{"message":"boom","stack":"s"}'),
        _raw(log, "metadata", '{"d1":[]}'), _raw(log, "metadata", '{"other":1}'), _raw(log, "metadata", "[]"),
    ]
    out = []
    for text in texts:
        variant = with_log_text(event, text)
        if variant is not None:
            out.append(variant)
    return out


def test_typed_log_decoding_agrees_with_the_general_path_on_every_coercion_difference() -> None:
    extractor = Extractor()
    events = [event for event in generated(200, seed=11) if log_of(event) is not None]
    taken = fell_back = 0
    for event in events[:6]:
        for variant in raw_log_variants(event):
            if check(variant, extractor):
                taken += 1
            else:
                fell_back += 1
    assert taken > 100 and fell_back > 100  # both sides exercised


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(["INFO", "warn", "read", "write", "2026-01-06T12:00:00.123Z", "/a/1?q#f", ""]),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["d1", "message", "code", "query_type", "rows_read",
                                                              "duration_ms", "x"]), inner, max_size=4), max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(sorted(REQUIRED_KEYS | {"user_agent", "error", "metadata", "x"})),
                               JSON_VALUES, max_size=4),
       drop=st.sets(st.sampled_from(sorted(REQUIRED_KEYS)), max_size=2), index=st.integers(0, 49),
       ascii_only=st.booleans())
def test_any_log_field_values_give_the_general_paths_record_or_fall_back(
        changes: dict[str, Any], drop: set[str], index: int, ascii_only: bool) -> None:
    event = LOG_EVENTS[index % len(LOG_EVENTS)]
    log = log_of(event)
    assert log is not None
    for key in drop:
        log.pop(key, None)
    log.update(changes)
    variant = with_log_text(event, json.dumps(log, ensure_ascii=ascii_only))  # big ints too, unlike orjson
    assert variant is not None
    check(variant, Extractor())


LOG_EVENTS = [event for event in generated(300, seed=5) if log_of(event) is not None][:50]


def test_the_typed_log_requires_exactly_the_spec_keys() -> None:
    fields = FactoryLog.__struct_fields__
    assert set(fields[:len(fields) - len(FactoryLog.__struct_defaults__)]) == REQUIRED_KEYS


# -- the event's JSON text (record_of_json): msgspec skips what no record reads; it must not accept what orjson
# would read differently ---------------------------------------------------------------------------------------

PRETTY_EVENTS = [json.dumps(event, indent=4, ensure_ascii=False).encode()
                 for event in sample_events(SAMPLE_PATH) + generated(40, seed=9)]
FUZZ_BYTES = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"e", b"E", b"9", b"0", b"-", b".", b"e999",
              b"\xff", b"\xc3", b"\x00", b"\x01", b"\n", b" ", b"\\u", b"\\ud800", b"null", b"1e400", b"\xe9"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 10_000), edits=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 3), st.sampled_from(FUZZ_BYTES)),
    min_size=1, max_size=3))
def test_mutated_event_text_gives_the_general_paths_record_or_falls_back(
        index: int, edits: list[tuple[float, int, bytes]]) -> None:
    raw = PRETTY_EVENTS[index % len(PRETTY_EVENTS)]
    for where, cut, insert in edits:
        at = int(where * len(raw))
        raw = raw[:at] + insert + raw[at + cut:]
    check_json(raw, Extractor())


def _in_cf(event: bytes, value: bytes) -> bytes:
    """The event's text with `value` (raw JSON) as a field of `request.cf`, which no record reads."""
    return event.replace(b'"cf": {', b'"cf": {"bench": ' + value + b", ", 1)


@pytest.mark.parametrize(("value", "taken"), [
    (b"1e999", True),  # past the double range: read as an infinity by both paths (decode_object), never used
    (b"-1" + b"0" * 400, True),
    (b'"caf\xc3\xa9"', True),  # valid UTF-8
    (b'"caf\xe9"', False),  # not UTF-8: the framer repairs it and counts the repair
    (b'"\\ud800"', False),  # a lone surrogate escape: repaired likewise
    (b"[" * 1010 + b"]" * 1010, False),  # deeper than msgspec goes, within orjson's limit
    (b"NaN", False), (b"01", False), (b'"\\x41"', False),
])
def test_unread_fields_do_not_change_what_is_accepted(value: bytes, taken: bool) -> None:
    extractor = Extractor()
    event = next(text for text in PRETTY_EVENTS if b'"cf": {' in text and record_of_json(extractor.routes, text))
    assert check_json(_in_cf(event, value), extractor) is taken
